package dev.relay.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a short system command from a test (mount, umount, stat, du): bounded in time, failing loudly. */
public final class Commands
{
    private Commands()
    {
    }

    /**
     * @return the command's output (stdout and stderr).
     * @throws IOException when it exits non-zero (with its output) or takes more than 10 s (then it is killed).
     */
    public static String run(final List<String> command) throws IOException, InterruptedException
    {
        final Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        if (!process.waitFor(10, TimeUnit.SECONDS))
        {
            process.destroyForcibly();
            throw new IOException(command + " timed out");
        }
        final String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (process.exitValue() != 0)
        {
            throw new IOException(command + " exited " + process.exitValue() + ": " + out.trim());
        }
        return out;
    }
}
