package dev.relay.it;

import dev.relay.spool.BacklogBuilder;
import dev.relay.testing.Await;
import dev.relay.testing.CycleFiles;
import dev.relay.testing.DeliveryCounts;
import dev.relay.testing.DigestingSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import static dev.relay.it.MetricsEndpoint.sample;
import static dev.relay.it.MetricsEndpoint.sampleQuietly;

/**
 * A backlog costs disk, not memory: the relay as a child JVM, as {@code ops/relay} runs it (here with a 256 MiB
 * heap), started on a spool holding {@value #BACKLOG} deferred messages whose destination refuses connections
 * ({@link BacklogBuilder} writes them, as a relay deferring them would have). It serves new mail at once, holds the
 * backlog on disk (the heap after a full GC stays small), keeps it across {@code kill -9} and restarts, leaves it in
 * place while the spool rolls (nothing copied), and delivers all of it when the destination comes up: lost 0,
 * duplicated 0, counted by Message-ID at a real SMTP sink.
 */
@Timeout(120)
class BacklogProcessTest
{
    private static final int BACKLOG = 200_000;
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final Pattern HEAP_USED = Pattern.compile(
        "(?m)^\\s*(?:def new generation|tenured generation|garbage-first heap|PSYoungGen|ParOldGen)\\s+total \\d+K,"
            + " used (\\d+)K");

    @TempDir
    Path tmp;

    private final List<ChildRelay> children = new ArrayList<>();
    private final List<DigestingSink> sinks = new ArrayList<>();

    @AfterEach
    void cleanUp() throws Exception
    {
        for (final ChildRelay child : children)
        {
            child.close();
        }
        for (final DigestingSink sink : sinks)
        {
            sink.close();
        }
    }

    @Test
    void aRestartWithTheBacklogServesNewMailAtOnceAndTheBacklogDrainsOnceWhenTheDestinationReturns() throws Exception
    {
        final Path spool = tmp.resolve("spool");
        final long buildMs = BacklogBuilder.build(spool, BACKLOG, 1024, System.currentTimeMillis() + 3_600_000,
            600_000, "backlog.test", "hourly");
        final DigestingSink fresh = sink(0);
        final int downPort = freePort();
        final int metricsPort = freePort();
        final Map<String, String> config = InProcessRelay.config(spool, "metrics.listen", "127.0.0.1:" + metricsPort,
            "delivery.routes", "backlog.test=127.0.0.1:" + downPort + ",fresh.test=127.0.0.1:" + fresh.port(),
            "delivery.retry.schedule", "1m,5m,1h");

        // a start with the backlog, then kill -9 (nothing is in flight: the destination is down) and a start again
        final long firstMs = startAndDeliverFresh(config, fresh, "fresh-1");
        ChildRelay relay = children.get(children.size() - 1);
        assertEquals(BACKLOG, sample(metricsPort, "relay_queue_messages{state=\"deferred\"}"), "deferred");
        final long heapKiB = heapAfterFullGc(relay);
        relay.kill9();
        final long secondMs = startAndDeliverFresh(config, fresh, "fresh-2");
        relay = children.get(children.size() - 1);
        assertEquals(BACKLOG, sample(metricsPort, "relay_queue_messages{state=\"deferred\"}"), "kept across kill -9");
        assertTrue(sample(metricsPort, "relay_queue_messages{state=\"active\"}") < 100, "nothing of it in memory");
        assertTrue(heapKiB < 96 * 1024, "heap after a full GC with " + BACKLOG + " deferred: " + heapKiB + " KiB");

        // the destination comes up: the backlog drains, each message once
        final DigestingSink down = sink(downPort);
        final long flushNs = System.nanoTime();
        MetricsEndpoint.flush(metricsPort);
        final ChildRelay draining = relay;
        Await.until(() -> down.messageCount() >= BACKLOG, WAIT, () -> "the backlog delivered: " + down.messageCount()
            + "\n" + tail(draining.stdout(), 40));
        final double drainSeconds = (System.nanoTime() - flushNs) / 1e9;
        Await.until(() -> sampleQuietly(metricsPort, "relay_queue_messages{state=\"deferred\"}") == 0 &&
            sampleQuietly(metricsPort, "relay_queue_messages{state=\"active\"}") == 0, WAIT, () -> "queue empty");
        final Map<String, List<DigestingSink.Digest>> got = down.all();
        final DeliveryCounts counts =
            DeliveryCounts.of(backlogIds(BACKLOG), id -> got.getOrDefault(id, List.of()).size());
        System.out.printf("backlog of %d: built in %.1f s; fresh mail delivered %d ms and %d ms (after kill -9) after"
                + " the start; heap after a full GC %d KiB; drained in %.1f s (%.0f msg/s); lost %d, duplicated %d%n",
            BACKLOG, buildMs / 1000.0, firstMs, secondMs, heapKiB, drainSeconds, BACKLOG / drainSeconds, counts.lost(),
            counts.duplicated());
        counts.assertEachOnce("lost");
        assertEquals(BACKLOG, got.size());
        assertTrue(firstMs < 10_000 && secondMs < 10_000, "fresh mail within 10 s of the start: " + firstMs + ", "
            + secondMs);
        relay.sigterm();
        assertEquals(0, relay.awaitExit(Duration.ofSeconds(30)), relay::output);
    }

    @Test
    void aStandingBacklogIsNotCopiedWhenTheSpoolRolls() throws Exception
    {
        final int backlog = BACKLOG / 4;
        final Path spool = tmp.resolve("spool");
        BacklogBuilder.build(spool, backlog, 1024, System.currentTimeMillis() + 3_600_000, 600_000, "backlog.test",
            "secondly");
        final TreeMap<String, CycleFiles.State> before = CycleFiles.snapshot(spool);
        final int downPort = freePort();
        final int metricsPort = freePort();
        final ChildRelay relay = start(InProcessRelay.config(spool, "metrics.listen", "127.0.0.1:" + metricsPort,
            "queue.roll_cycle", "secondly", "delivery.routes", "backlog.test=127.0.0.1:" + downPort));
        final long writtenBefore = writeBytes(relay.pid());
        final long rolls = System.currentTimeMillis() / 1000 + 4;
        Await.until(() -> System.currentTimeMillis() / 1000 > rolls, WAIT, () -> "four rolls");
        final long written = writeBytes(relay.pid()) - writtenBefore;
        assertEquals(List.of(), CycleFiles.rewritten(before, CycleFiles.snapshot(spool)), "the backlog's files stay");
        assertTrue(before.keySet().stream().allMatch(name -> Files.exists(spool.resolve(name))), "none deleted");
        assertTrue(!relay.stdout().contains("moved forward"), "nothing moved forward");
        assertTrue(written < 16L << 20, "bytes written over four rolls with " + backlog + " deferred: " + written);

        final DigestingSink down = sink(downPort);
        MetricsEndpoint.flush(metricsPort);
        Await.until(() -> down.messageCount() >= backlog, WAIT, () -> "the backlog delivered: " + down.messageCount()
            + "; active " + sampleQuietly(metricsPort, "relay_queue_messages{state=\"active\"}") + ", deferred "
            + sampleQuietly(metricsPort, "relay_queue_messages{state=\"deferred\"}") + "; relay log ends:\n"
            + tail(relay.stdout(), 40));
        Await.until(() -> sampleQuietly(metricsPort, "relay_queue_messages{state=\"deferred\"}") == 0, WAIT,
            () -> "nothing deferred");
        final Map<String, List<DigestingSink.Digest>> got = down.all();
        final DeliveryCounts counts =
            DeliveryCounts.of(backlogIds(backlog), id -> got.getOrDefault(id, List.of()).size());
        System.out.printf("standing backlog of %d over four rolls: %d bytes written, nothing moved; drained: lost %d,"
            + " duplicated %d%n", backlog, written, counts.lost(), counts.duplicated());
        counts.assertEachOnce("lost");
        relay.sigterm();
        assertEquals(0, relay.awaitExit(Duration.ofSeconds(30)), relay::output);
    }

    /** Starts the relay on {@code config}, sends one message to the healthy hop; ms from the start to its arrival. */
    private long startAndDeliverFresh(final Map<String, String> config, final DigestingSink fresh, final String id)
        throws Exception
    {
        final long startNs = System.nanoTime();
        final ChildRelay relay = start(config);
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(relay.port()))
        {
            client.sendMessage("fresh@client.test", List.of("someone@fresh.test"), ("Message-ID: <" + id
                + "@client.test>\r\nSubject: fresh\r\n\r\nnew mail\r\n").getBytes(StandardCharsets.US_ASCII));
        }
        Await.until(() -> !fresh.received(id).isEmpty(), WAIT, () -> "fresh mail " + id + "\n" + relay.output());
        return (System.nanoTime() - startNs) / 1_000_000;
    }

    private static String tail(final String text, final int lines)
    {
        final String[] all = text.split("\n");
        return String.join("\n", java.util.Arrays.copyOfRange(all, Math.max(0, all.length - lines), all.length));
    }

    private ChildRelay start(final Map<String, String> config) throws IOException
    {
        final ChildRelay child = ChildRelay.start(tmp, config);
        children.add(child);
        return child;
    }

    private DigestingSink sink(final int port) throws IOException
    {
        final DigestingSink sink = DigestingSink.start(port);
        sinks.add(sink);
        return sink;
    }

    /** Used heap after a full collection, in KiB: {@code jcmd PID GC.run}, then {@code GC.heap_info}. */
    private static long heapAfterFullGc(final ChildRelay relay) throws Exception
    {
        final Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        jcmd(jcmd, relay.pid(), "GC.run");
        final String info = jcmd(jcmd, relay.pid(), "GC.heap_info");
        final Matcher m = HEAP_USED.matcher(info);
        long used = 0;
        boolean found = false;
        while (m.find())
        {
            used += Long.parseLong(m.group(1));
            found = true;
        }
        assertTrue(found, info);
        return used;
    }

    private static String jcmd(final Path jcmd, final long pid, final String command) throws Exception
    {
        final Process process = new ProcessBuilder(jcmd.toString(), Long.toString(pid), command)
            .redirectErrorStream(true).start();
        final String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, process.waitFor(), out);
        return out;
    }

    /** Bytes the process caused to be written to storage ({@code /proc/PID/io}, write_bytes). */
    private static long writeBytes(final long pid) throws IOException
    {
        for (final String line : Files.readAllLines(Path.of("/proc/" + pid + "/io")))
        {
            if (line.startsWith("write_bytes:"))
            {
                return Long.parseLong(line.substring("write_bytes:".length()).trim());
            }
        }
        throw new IOException("no write_bytes in /proc/" + pid + "/io");
    }

    private static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress()))
        {
            return socket.getLocalPort();
        }
    }

    /** The Message-ID keys BacklogBuilder gives a backlog of {@code count}. */
    private static List<String> backlogIds(final int count)
    {
        final List<String> ids = new ArrayList<>(count);
        for (int i = 0; i < count; i++)
        {
            ids.add("backlog-" + i);
        }
        return ids;
    }
}
