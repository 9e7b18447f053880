package dev.relay.it;

import org.junit.jupiter.api.Assumptions;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * An external program the tests drive (swaks, curl, python3, smtp-source, and the receivers in dev.relay.testing).
 * When it is missing the test fails under CI (env CI=true, where .ci/run installs it) and is skipped with a clear
 * message elsewhere.
 */
public final class ExternalTool
{
    private ExternalTool()
    {
    }

    /** The absolute path of {@code name} on PATH (or in /usr/sbin, where Postfix puts its tools). */
    public static Path require(final String name)
    {
        final List<String> dirs = new ArrayList<>(List.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)));
        dirs.add("/usr/sbin");
        dirs.add("/usr/local/bin");
        for (final String dir : dirs)
        {
            if (dir.isEmpty())
            {
                continue;
            }
            final Path candidate = Path.of(dir, name);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate))
            {
                return candidate;
            }
        }
        return missing(name + " is not installed (not on PATH " + System.getenv("PATH") +
            "); install it (.ci/run does: apt-get install swaks curl python3 postfix) to run this test");
    }

    /** Fails the test under CI (CI=true), skips it elsewhere, saying what is missing. */
    public static <T> T missing(final String message)
    {
        if ("true".equalsIgnoreCase(System.getenv("CI")))
        {
            fail("CI=true: " + message);
        }
        Assumptions.abort(message);
        return null;
    }

    /** What a finished program left behind. */
    public record Result(int exitCode, String stdout, String stderr)
    {
        @Override
        public String toString()
        {
            return "exit " + exitCode + "\n--- stdout:\n" + stdout + "\n--- stderr:\n" + stderr;
        }
    }

    /**
     * Runs {@code command} to its end with output in files under {@code workDir} (no pipe can fill up); the
     * process is killed if it outlives {@code timeout}.
     */
    public static Result run(final List<String> command, final Path workDir, final Duration timeout) throws IOException,
        InterruptedException
    {
        final Path out = Files.createTempFile(workDir, "out", ".txt");
        final Path err = Files.createTempFile(workDir, "err", ".txt");
        final Process process = new ProcessBuilder(command)
            .directory(workDir.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(out.toFile())
            .redirectError(err.toFile())
            .start();
        try
        {
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS))
            {
                fail("timed out after " + timeout + ": " + command + "\n" + Files.readString(err, StandardCharsets.ISO_8859_1));
            }
            return new Result(process.exitValue(), Files.readString(out, StandardCharsets.ISO_8859_1),
                Files.readString(err, StandardCharsets.ISO_8859_1));
        }
        finally
        {
            stop(process);
        }
    }

    /** Kills a process and waits for it to be gone (no-op when it already exited). */
    public static void stop(final Process process) throws InterruptedException
    {
        if (process.isAlive())
        {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
