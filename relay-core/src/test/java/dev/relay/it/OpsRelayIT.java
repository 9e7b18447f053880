package dev.relay.it;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@code ops/relay}, the launcher operators use, against the packaged {@code relay.jar}. An integration test
 * (failsafe, after {@code package}), so the jar exists and the script never has to build it mid-test.
 */
@Timeout(120)
class OpsRelayIT
{
    @TempDir
    Path tmp;

    @Test
    void opsRelayWithImpossibleQueueDirExitsTwo() throws Exception
    {
        final Path root = repositoryRoot();
        final Path plainFile = tmp.resolve("not-a-directory");
        Files.writeString(plainFile, "a regular file\n");
        final Path spoolUnderFile = plainFile.resolve("spool");
        final Path file = ChildRelay.writeConfig(tmp, InProcessRelay.config(spoolUnderFile));
        final ExternalTool.Result result = ExternalTool.run(
            List.of("bash", root.resolve("ops/relay").toString(), "--config", file.toString()), tmp,
            Duration.ofSeconds(110));
        assertEquals(2, result.exitCode(), result::toString);
        assertTrue(result.stderr().contains("queue.dir") || result.stderr().contains(spoolUnderFile.toString()),
            result::toString);
        assertTrue(result.stderr().lines().filter(l -> l.startsWith("relay:") || l.contains("queue.dir")).count() > 0,
            result::toString);
    }

    private static Path repositoryRoot()
    {
        Path dir = Path.of(System.getProperty("basedir", System.getProperty("user.dir"))).toAbsolutePath();
        while (dir != null)
        {
            if (Files.isRegularFile(dir.resolve("ops/relay")) && Files.isRegularFile(dir.resolve("ops/jvm.options")))
            {
                return dir;
            }
            dir = dir.getParent();
        }
        return fail("ops/relay not found above " + System.getProperty("user.dir"));
    }
}
