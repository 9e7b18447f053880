package dev.relay.it;

import dev.relay.testing.Await;
import dev.relay.testing.CycleFiles;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The relay as a child JVM with {@code queue.roll_cycle=secondly}, its destination down, under a steady load: stopped
 * with SIGTERM after several rolls and started again, then killed with SIGKILL a few times at a cycle boundary (a
 * few ms before and after it, when the spool and the journal roll) and started again each time. No start reports
 * damage (no ERROR line at all, no {@code damaged-*} directory: a process kill leaves the page cache whole, so there
 * is none) or rewrites a cycle file; when the destination comes up every acknowledged message is delivered once
 * (lost 0, duplicated 0).
 */
@Timeout(120)
class RollRestartProcessTest
{
    /** Kill times relative to a whole second, when every secondly cycle begins. */
    private static final int[] KILL_OFFSETS_MS = {-3, 1, 4, 12};
    private static final int PER_SECOND = 40;

    @TempDir
    Path tmp;

    private final List<ChildRelay> children = new ArrayList<>();
    private TestSmtpSink sink;
    private Thread loadThread;
    private final AtomicBoolean stopLoad = new AtomicBoolean();
    private final AtomicInteger nextId = new AtomicInteger();
    private final Set<String> acked = ConcurrentHashMap.newKeySet();
    private final ConcurrentLinkedQueue<String> loadProblems = new ConcurrentLinkedQueue<>();

    @AfterEach
    void cleanUp() throws Exception
    {
        stopLoad();
        for (final ChildRelay child : children)
        {
            child.close();
        }
        if (sink != null)
        {
            sink.close();
        }
    }

    @Test
    void sigtermAndKillNineAtRollsReportNoDamageAndLoseNothing() throws Exception
    {
        sink = TestSmtpSink.start();
        sink.stop();
        final Path spool = tmp.resolve("spool");
        final Path journal = spool.resolve("journal");
        final Map<String, String> config = InProcessRelay.config(spool, "queue.roll_cycle", "secondly",
            "smtp.io_threads", "1", "smtp.drain_timeout", "2s", "delivery.routes", "*=127.0.0.1:" + sink.port(),
            "delivery.retry.schedule", "2s", "delivery.timeout.connect", "1s");

        // SIGTERM after a few rolls
        ChildRelay relay = start(config);
        startLoad(relay.port());
        awaitRolls(3);
        stopLoad();
        relay.sigterm();
        assertEquals(0, relay.awaitExit(Duration.ofSeconds(20)), relay::output);
        TreeMap<String, CycleFiles.State> spoolFiles = CycleFiles.snapshot(spool);
        TreeMap<String, CycleFiles.State> journalFiles = CycleFiles.snapshot(journal);
        relay = start(config);
        assertNothingRepaired("after SIGTERM", relay, spool, spoolFiles, journalFiles);

        // SIGKILL around cycle boundaries, under load
        final List<String> cleared = new ArrayList<>();
        for (final int offsetMs : KILL_OFFSETS_MS)
        {
            startLoad(relay.port());
            awaitRolls(1);
            killAtBoundary(relay, offsetMs);
            stopLoad();
            spoolFiles = CycleFiles.snapshot(spool);
            journalFiles = CycleFiles.snapshot(journal);
            if (offsetMs == KILL_OFFSETS_MS[KILL_OFFSETS_MS.length - 1])
            {
                // the destination comes up for the last start (a fresh process has no hop backoff to wait out)
                sink.restart();
            }
            relay = start(config);
            // the newest file of each may lose a record a killed writer left unfinished; older ones are untouched (the
            // journal may have none yet: mail retried within seconds waits in memory and is journaled when delivered)
            assertNothingRepaired("after kill -9 at " + offsetMs + " ms", relay, spool, allButNewest(spoolFiles),
                allButNewest(journalFiles));
            relay.stdout().lines().filter(line -> line.contains(" WARN ") && line.contains("QueueRepair"))
                .forEach(cleared::add);
        }
        assertTrue(loadProblems.isEmpty(), () -> "load failed: " + loadProblems);

        // every acknowledged message arrives, once
        final ChildRelay last = relay;
        Await.until(() -> delivered().keySet().containsAll(acked), Duration.ofSeconds(30),
            () -> "delivery of " + acked.size() + " acknowledged messages; delivered " + delivered().size()
                + "\n" + last.output());
        final long quietUntil = System.nanoTime() + Duration.ofSeconds(1).toNanos();
        Await.until(() -> System.nanoTime() - quietUntil > 0, Duration.ofSeconds(5), () -> "a quiet second");
        final Map<String, Integer> delivered = delivered();
        final List<String> duplicated = delivered.entrySet().stream().filter(entry -> entry.getValue() > 1)
            .map(Map.Entry::getKey).toList();
        assertEquals(List.of(), duplicated, "duplicated");
        relay.sigterm();
        assertEquals(0, relay.awaitExit(Duration.ofSeconds(20)), relay::output);
        assertEquals(List.of(), damagedDirs(spool));
        assertEquals(List.of(), damagedDirs(journal));
        System.out.printf("roll restarts: %d acknowledged, %d delivered (lost 0, duplicated 0) after 1 SIGTERM and %d"
            + " kill -9 at cycle boundaries; repair lines: %s%n", acked.size(), delivered.size(),
            KILL_OFFSETS_MS.length, cleared);
    }

    private ChildRelay start(final Map<String, String> config) throws IOException
    {
        final ChildRelay child = ChildRelay.start(tmp, config);
        children.add(child);
        return child;
    }

    /**
     * Once {@code relay} listens (the repair runs before it binds): no ERROR line, no {@code damaged-*} directory,
     * and the cycle files of {@code spoolFiles} and {@code journalFiles} still there are the same files, unchanged
     * but for the newest (see {@link CycleFiles#rewritten}).
     */
    private static void assertNothingRepaired(final String when, final ChildRelay relay, final Path spool,
        final Map<String, CycleFiles.State> spoolFiles, final Map<String, CycleFiles.State> journalFiles)
        throws IOException
    {
        final Path journal = spool.resolve("journal");
        assertEquals(List.of(), CycleFiles.rewritten(new TreeMap<>(spoolFiles), CycleFiles.snapshot(spool)),
            when + ": spool files");
        assertEquals(List.of(), CycleFiles.rewritten(new TreeMap<>(journalFiles), CycleFiles.snapshot(journal)),
            when + ": journal files");
        assertEquals(List.of(), damagedDirs(spool), when);
        assertEquals(List.of(), damagedDirs(journal), when);
        final List<String> errors = relay.stdout().lines().filter(line -> line.contains(" ERROR ")).toList();
        assertEquals(List.of(), errors, () -> when + ": no ERROR\n" + relay.output());
    }

    private static Map<String, CycleFiles.State> allButNewest(final TreeMap<String, CycleFiles.State> files)
    {
        return files.isEmpty() ? files : files.headMap(files.lastKey());
    }

    /** Lets the wall clock pass {@code rolls} whole seconds (secondly cycles begin at each). */
    private static void awaitRolls(final int rolls)
    {
        final long target = (System.currentTimeMillis() / 1000 + rolls) * 1000 + 100;
        Await.until(() -> System.currentTimeMillis() >= target, Duration.ofSeconds(rolls + 5), () -> "the roll");
    }

    /** SIGKILL at {@code offsetMs} from the next whole second (at least 200 ms from now). */
    private static void killAtBoundary(final ChildRelay relay, final int offsetMs) throws InterruptedException
    {
        final long target = ((System.currentTimeMillis() + 200) / 1000 + 1) * 1000 + offsetMs;
        Await.until(() -> System.currentTimeMillis() >= target - 20, Duration.ofSeconds(5), () -> "the boundary");
        while (System.currentTimeMillis() < target)
        {
            Thread.onSpinWait();
        }
        relay.kill9();
    }

    private void startLoad(final int port)
    {
        stopLoad.set(false);
        loadThread = new Thread(() -> load(port), "load");
        loadThread.setDaemon(true);
        loadThread.start();
    }

    private void stopLoad() throws InterruptedException
    {
        stopLoad.set(true);
        if (loadThread != null)
        {
            loadThread.join(15_000);
            assertTrue(!loadThread.isAlive(), "the load thread ended");
            loadThread = null;
        }
    }

    /** One connection, {@value #PER_SECOND} messages a second, until stopped or the relay goes away. */
    private void load(final int port)
    {
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(port))
        {
            long second = System.currentTimeMillis() / 1000;
            int inSecond = 0;
            while (!stopLoad.get())
            {
                final long now = System.currentTimeMillis() / 1000;
                if (now != second)
                {
                    second = now;
                    inSecond = 0;
                }
                if (inSecond >= PER_SECOND)
                {
                    Await.pause();
                    continue;
                }
                final String id = "roll-" + nextId.incrementAndGet();
                final byte[] body = ("Subject: " + id + "\r\nMessage-ID: <" + id + "@client.test>\r\n\r\nbody of " + id
                    + "\r\n").getBytes(StandardCharsets.US_ASCII);
                client.sendMessage("load@client.test", List.of("r@dest.test"), body);
                acked.add(id + "@client.test");
                inSecond++;
            }
        }
        catch (final IOException killed)
        {
            // the relay was killed: the message in flight got no 250 and is not counted
        }
        catch (final RuntimeException | AssertionError ex)
        {
            loadProblems.add(ex.toString());
        }
    }

    /** Message-ID to how many times the destination got it. */
    private Map<String, Integer> delivered()
    {
        final Map<String, Integer> seen = new HashMap<>();
        for (final TestSmtpSink.Received got : sink.messages())
        {
            final String text = new String(got.content(), StandardCharsets.UTF_8);
            final int at = text.indexOf("\r\nMessage-ID: <");
            if (at >= 0)
            {
                final int start = at + "\r\nMessage-ID: <".length();
                seen.merge(text.substring(start, text.indexOf('>', start)), 1, Integer::sum);
            }
        }
        return seen;
    }

    private static List<Path> damagedDirs(final Path dir) throws IOException
    {
        if (!Files.isDirectory(dir))
        {
            return List.of();
        }
        try (Stream<Path> files = Files.list(dir))
        {
            return files.filter(path -> path.getFileName().toString().startsWith("damaged-")).toList();
        }
    }
}
