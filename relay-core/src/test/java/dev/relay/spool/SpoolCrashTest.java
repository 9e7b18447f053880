package dev.relay.spool;

import dev.relay.config.SyncMode;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** kill -9 of a BATCH-mode writer after N acks: every acked message must be in the spool (lost = 0). */
@Tag("slow")
@Timeout(120)
class SpoolCrashTest
{
    private static final int ACKS_BEFORE_KILL = 400;

    @TempDir
    Path dir;

    @Test
    void noAckedMessageIsLostOnKill9() throws Exception
    {
        killAndCount(1);
    }

    /** Two loops, each appending to its own lane, synced by the one syncer: lost 0 and duplicated 0 over both. */
    @Test
    void noAckedMessageOfTwoLoopsIsLostOrDuplicatedOnKill9() throws Exception
    {
        killAndCount(2);
        assertTrue(java.nio.file.Files.isDirectory(dir.resolve(SpoolLanes.DIR_PREFIX + 1)), "loop 1 wrote lane 1");
    }

    private void killAndCount(final int loops) throws Exception
    {
        final List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (final String arg : ManagementFactory.getRuntimeMXBean().getInputArguments())
        {
            if (arg.startsWith("--add-") || arg.startsWith("-Dchronicle"))
            {
                command.add(arg);
            }
        }
        command.add("-Xmx256m");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(SpoolCrashChild.class.getName());
        command.add(dir.toString());
        command.add(Integer.toString(loops));
        final Process child = new ProcessBuilder(command)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
        final List<Long> acked = new ArrayList<>();
        try (BufferedReader lines = new BufferedReader(
            new InputStreamReader(child.getInputStream(), StandardCharsets.US_ASCII)))
        {
            String line;
            while (acked.size() < ACKS_BEFORE_KILL && (line = lines.readLine()) != null)
            {
                if (line.startsWith("ACK "))
                {
                    acked.add(Long.parseLong(line.substring(4).trim()));
                }
            }
            child.destroyForcibly();
            child.waitFor();
            // acks printed before the kill landed are promises too (the JDK may close the pipe on exit)
            try
            {
                while ((line = lines.readLine()) != null)
                {
                    if (line.startsWith("ACK ") && line.length() > 4)
                    {
                        acked.add(Long.parseLong(line.substring(4).trim()));
                    }
                }
            }
            catch (final java.io.IOException | NumberFormatException ignore)
            {
                // a partial last line, or the stream was closed: what was read is enough
            }
        }
        assertTrue(acked.size() >= ACKS_BEFORE_KILL, "child acked only " + acked.size());

        final Map<Long, SpooledMessage> found = new HashMap<>();
        final int[] duplicated = new int[1];
        final boolean[] lanesSeen = new boolean[loops];
        try (SpoolReader reader = SpoolReader.open(dir))
        {
            while (reader.poll(m ->
            {
                duplicated[0] += found.put(m.queueId(), m) == null ? 0 : 1;
                lanesSeen[m.lane()] = true;
            }, 1000) > 0)
            {
                // all
            }
            assertEquals(0, duplicated[0], "read twice");
            for (int lane = 0; lane < loops; lane++)
            {
                assertTrue(lanesSeen[lane], "mail of lane " + lane);
            }
            int lost = 0;
            for (final long id : acked)
            {
                final SpooledMessage m = found.get(id);
                if (m == null)
                {
                    lost++;
                    continue;
                }
                assertArrayEquals(SpoolTestSupport.body(id, SpoolCrashChild.bodyLength(id)), reader.readBodyToArray(m));
            }
            assertEquals(0, lost, "acked but lost, of " + acked.size());
        }
        // and a writer can take over the spool after the crash
        try (Spool spool = Spool.open(dir, SyncMode.BATCH, "secondly", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final var message = SpoolTestSupport.message(1L << 40, "after@x", "r@y");
            assertTrue(writer.begin(message));
            assertTrue(writer.complete(message, (m, d) -> { }));
        }
    }
}
