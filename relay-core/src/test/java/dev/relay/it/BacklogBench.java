package dev.relay.it;

import dev.relay.spool.BacklogBuilder;
import dev.relay.testing.DigestingSink;

import java.io.File;
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
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static dev.relay.it.MetricsEndpoint.sample;
import static dev.relay.it.MetricsEndpoint.sampleQuietly;

/**
 * The backlog benchmark of the README ("Backlogs"): not a test. Runs the relay as a user does ({@code ops/relay},
 * the default {@code ops/jvm.options}: 1 GiB heap, G1) on a spool that {@link BacklogBuilder} filled with N deferred
 * messages (1 KiB bodies, due in an hour, destination refusing connections) and prints one line per figure:
 * <pre>
 * java -cp relay-core/target/relay.jar:relay-core/target/test-classes dev.relay.it.BacklogBench \
 *     --messages N [--work DIR] [--drain] [--probe-rate R] [--standing-minutes M] [--fresh F] [--restarts K]
 * </pre>
 * <ul>
 * <li>start: ms from starting {@code ops/relay} to a fresh message delivered to a healthy destination;</li>
 * <li>{@code --restarts K}: then K more starts, after SIGTERM and kill -9 in turn, each timed the same way;</li>
 * <li>heap: used heap after a full GC ({@code jcmd GC.run}, then {@code GC.heap_info}), and the deferred count;</li>
 * <li>{@code --standing-minutes M}: with {@code queue.roll_cycle=minutely}, the backlog's due times spread over an
 * hour from a minute after the build and {@code delivery.retry.schedule=1h} (each message retried once an hour,
 * refused, parked again), the bytes the relay process writes to storage ({@code /proc/PID/io} write_bytes) in M
 * minutes, and that times 60 / M for an hour;</li>
 * <li>without {@code --drain}: {@code ops/relay spool list} on the stopped relay's spool, the time to its first line
 * and to its end;</li>
 * <li>{@code --drain}: the destination comes up and the backlog is flushed: seconds until the sink has all of it,
 * then F fresh messages (relay-bench's LoadGenerator, 50 connections; 16 plain ones where it is not built) to another
 * destination, seconds until delivered; lost and
 * duplicated counted by Message-ID at the sinks. Around the flush a {@link LatencyProbe} sends R (default 50, 0 for
 * none) messages a second over one kept connection to a third destination with its own sink: first on the idle relay
 * (warmed up by 5,000 messages, the backlog not yet due) for {@value #IDLE_PROBE_SECONDS} s, then from the flush
 * until the backlog is delivered, then idle again; the end-to-end p50, p99, max of each, and the ratio of the
 * p99s.</li>
 * </ul>
 * Everything it starts (the relay, sinks) it stops; the work directory (default: a new one under
 * {@code java.io.tmpdir}) is deleted at the end.
 */
public final class BacklogBench
{
    private static final Pattern HEAP_USED = Pattern.compile(
        "(?m)^\\s*(?:garbage-first heap|def new generation|tenured generation)\\s+total \\d+K, used (\\d+)K");
    private static final Duration WAIT = Duration.ofMinutes(30);
    private static final int IDLE_PROBE_SECONDS = 20;

    private final Path root;
    private final Path work;
    private Process relay;

    private BacklogBench(final Path root, final Path work)
    {
        this.root = root;
        this.work = work;
    }

    public static void main(final String[] args) throws Exception
    {
        long messages = 0;
        Path work = null;
        boolean drain = false;
        int standingMinutes = 0;
        int fresh = 100_000;
        int restarts = 0;
        int probeRate = 50;
        for (int i = 0; i < args.length; i++)
        {
            switch (args[i])
            {
                case "--messages" -> messages = Long.parseLong(args[++i]);
                case "--work" -> work = Path.of(args[++i]);
                case "--drain" -> drain = true;
                case "--standing-minutes" -> standingMinutes = Integer.parseInt(args[++i]);
                case "--fresh" -> fresh = Integer.parseInt(args[++i]);
                case "--restarts" -> restarts = Integer.parseInt(args[++i]);
                case "--probe-rate" -> probeRate = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Path root = Path.of("").toAbsolutePath();
        while (root != null && !Files.isExecutable(root.resolve("ops/relay")))
        {
            root = root.getParent();
        }
        if (root == null)
        {
            throw new IllegalStateException("run it from the repository (ops/relay not found)");
        }
        final Path dir = work == null ? Files.createTempDirectory("backlog-bench") : Files.createDirectories(work);
        final BacklogBench bench = new BacklogBench(root, dir);
        try
        {
            bench.run(messages, drain, standingMinutes, fresh, restarts, probeRate);
        }
        finally
        {
            bench.stopRelay();
            deleteTree(dir);
        }
    }

    private void run(final long messages, final boolean drain, final int standingMinutes, final int fresh,
        final int restarts, final int probeRate) throws Exception
    {
        final Path spool = work.resolve("spool");
        final String rollCycle = standingMinutes > 0 ? "minutely" : "hourly";
        final long nowMs = System.currentTimeMillis();
        if (messages > 0)
        {
            final long dueInMs = standingMinutes > 0 ? 60_000 : 3_600_000;
            final long spreadMs = standingMinutes > 0 ? 3_600_000 : 600_000;
            final long buildMs = BacklogBuilder.build(spool, messages, 1024, nowMs + dueInMs, spreadMs,
                "backlog.test", rollCycle);
            System.out.printf("build: %d deferred messages in %.1f s, spool %d MiB%n", messages, buildMs / 1000.0,
                treeBytes(spool) >> 20);
        }
        final DigestingSink freshSink = DigestingSink.start();
        final int downPort = freePort();
        final int smtpPort = freePort();
        final LatencyProbe probe = drain && probeRate > 0 ?
            new LatencyProbe(smtpPort, "someone@probe.test", probeRate) : null;
        final DigestingSink probeSink = probe == null ? null : DigestingSink.start(probe::onArrival);
        final int metricsPort = freePort();
        final List<String> config = new ArrayList<>(List.of(
            "smtp.listen=127.0.0.1:" + smtpPort,
            "smtp.hostname=relay.bench",
            "queue.dir=" + spool,
            "queue.roll_cycle=" + rollCycle,
            "metrics.listen=127.0.0.1:" + metricsPort,
            "delivery.routes=backlog.test=127.0.0.1:" + downPort + ",fresh.test=127.0.0.1:" + freshSink.port() +
                (probeSink == null ? "" : ",probe.test=127.0.0.1:" + probeSink.port()),
            "delivery.retry.schedule=" + (standingMinutes > 0 ? "1h" : "1m,5m,1h")));
        try
        {
            final long startNs = System.nanoTime();
            startRelay(config);
            sendFresh(smtpPort, 1, "fresh-start");
            await(() -> !freshSink.received("fresh-start").isEmpty(), "the fresh message");
            System.out.printf("start: fresh mail delivered %d ms after ops/relay started, %d deferred%n",
                (System.nanoTime() - startNs) / 1_000_000, messages);
            await(() -> sampleQuietly(metricsPort, "relay_queue_messages{state=\"deferred\"}") == messages,
                "the deferred count");
            System.out.printf("heap: %d KiB used after a full GC with %d deferred (relay_queue_messages: active %d,"
                + " deferred %d), RSS %d MiB%n", heapAfterFullGc(), messages,
                sample(metricsPort, "relay_queue_messages{state=\"active\"}"),
                sample(metricsPort, "relay_queue_messages{state=\"deferred\"}"), rssKiB() >> 10);
            for (int r = 1; r <= restarts; r++)
            {
                // again after a stop: SIGTERM on odd rounds, kill -9 on even ones
                final boolean kill = r % 2 == 0;
                if (kill)
                {
                    relay.destroyForcibly();
                    relay.waitFor();
                }
                else
                {
                    stopRelay();
                }
                final long againNs = System.nanoTime();
                startRelay(config);
                sendFresh(smtpPort, 1, "fresh-start-" + r);
                final String id = "fresh-start-" + r;
                await(() -> !freshSink.received(id).isEmpty(), "the fresh message after restart " + r);
                System.out.printf("restart %d (after %s): fresh mail delivered %d ms after ops/relay started, %d"
                        + " deferred%n", r, kill ? "kill -9" : "SIGTERM", (System.nanoTime() - againNs) / 1_000_000,
                    messages);
            }
            await(() -> sampleQuietly(metricsPort, "relay_queue_messages{state=\"deferred\"}") == messages,
                "the deferred count after the restarts");
            if (standingMinutes > 0)
            {
                final long before = writeBytes();
                final long t0 = System.nanoTime();
                final long deferredBefore = sample(metricsPort, "relay_messages_deferred_total");
                final long[] areasBefore = {du(spool.resolve("journal")), du(spool.resolve("deferred")),
                    Files.size(work.resolve("relay.out")), du(spool) - du(spool.resolve("journal")) -
                    du(spool.resolve("deferred"))};
                Thread.sleep(standingMinutes * 60_000L);
                final long written = writeBytes() - before;
                final long[] areasAfter = {du(spool.resolve("journal")), du(spool.resolve("deferred")),
                    Files.size(work.resolve("relay.out")), du(spool) - du(spool.resolve("journal")) -
                    du(spool.resolve("deferred"))};
                System.out.printf("standing: grew in the window: journal %d KiB, deferred index %d KiB, log %d KiB,"
                        + " spool cycle files %d KiB (allocated blocks); checkpoint now %d bytes%n",
                    (areasAfter[0] - areasBefore[0]) >> 10, (areasAfter[1] - areasBefore[1]) >> 10,
                    (areasAfter[2] - areasBefore[2]) >> 10, (areasAfter[3] - areasBefore[3]) >> 10,
                    Files.size(spool.resolve("deferred/checkpoint")));
                final double minutes = (System.nanoTime() - t0) / 60e9;
                final long retried = sample(metricsPort, "relay_messages_deferred_total") - deferredBefore;
                System.out.printf("standing: %d bytes written in %.1f min (%d retries refused and parked again,"
                        + " roll minutely); per hour: %.0f MiB; deferred now %d%n", written, minutes, retried,
                    written / minutes * 60 / (1 << 20),
                    sample(metricsPort, "relay_queue_messages{state=\"deferred\"}"));
            }
            if (drain)
            {
                drain(messages, downPort, smtpPort, metricsPort, freshSink, fresh, probe);
            }
            stopRelay();
            if (!drain)
            {
                spoolList();
            }
        }
        finally
        {
            freshSink.close();
            if (probeSink != null)
            {
                probeSink.close();
            }
        }
    }

    private void drain(final long messages, final int downPort, final int smtpPort, final int metricsPort,
        final DigestingSink freshSink, final int fresh, final LatencyProbe probe) throws Exception
    {
        double idleP99Ms = 0;
        if (probe != null)
        {
            // a relay that has been serving is warm: 5,000 messages through the probe's route before its reference
            sendFresh(smtpPort, 5_000, "warm", "someone@probe.test");
            probeIdle(probe, "idle", "idle (backlog not due)");
            idleP99Ms = probe.p99Ms();
        }
        final DigestingSink down = DigestingSink.start(downPort);
        try
        {
            if (probe != null)
            {
                probe.start("drain");
            }
            final long flushNs = System.nanoTime();
            MetricsEndpoint.post(metricsPort, "/admin/flush", "", null);
            await(() -> down.messageCount() >= messages, "the backlog delivered");
            final double drainSeconds = (System.nanoTime() - flushNs) / 1e9;
            if (probe != null)
            {
                probe.stop();
                await(probe::allArrived, "the probe's messages sent during the drain");
                System.out.println(probe.report("during the drain"));
                final double drainP99Ms = probe.p99Ms();
                probeIdle(probe, "idle-after", "idle again (after the drain)");
                System.out.printf("probe: p99 during the drain / idle p99 before it = %.1f / %.1f ms = %.2f%n",
                    drainP99Ms, idleP99Ms, drainP99Ms / idleP99Ms);
            }
            final Map<String, List<DigestingSink.Digest>> got = down.all();
            long lost = 0;
            long duplicated = 0;
            for (long i = 0; i < messages; i++)
            {
                final int copies = got.getOrDefault("backlog-" + i, List.of()).size();
                lost += copies == 0 ? 1 : 0;
                duplicated += Math.max(0, copies - 1);
            }
            System.out.printf("drain: %d deferred delivered in %.1f s after the flush (%.0f msg/s); lost %d,"
                + " duplicated %d%n", messages, drainSeconds, messages / drainSeconds, lost, duplicated);

            final int before = freshSink.messageCount();
            final long sendNs = System.nanoTime();
            final String loadJar = System.getProperty("bench.jar");
            final String how;
            if (loadJar != null)
            {
                // relay-bench's LoadGenerator: 50 pipelining connections, as the README's end-to-end benchmarks
                how = "LoadGenerator, 50 connections";
                final Process load = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java")
                    .toString(), "-cp", loadJar, "dev.relay.bench.e2e.LoadGenerator", "--port",
                    Integer.toString(smtpPort), "-c", "50", "-n", Integer.toString(fresh), "-s", "1024", "--to",
                    "someone@fresh.test", "--quiet")
                    .redirectErrorStream(true).redirectOutput(work.resolve("load.out").toFile()).start();
                if (load.waitFor() != 0)
                {
                    throw new IllegalStateException("LoadGenerator failed:\n" +
                        Files.readString(work.resolve("load.out")));
                }
            }
            else
            {
                how = "16 connections, one transaction at a time";
                sendFresh(smtpPort, fresh, "fresh");
            }
            final double acceptSeconds = (System.nanoTime() - sendNs) / 1e9;
            await(() -> freshSink.messageCount() >= before + fresh, "fresh mail delivered");
            final double freshSeconds = (System.nanoTime() - sendNs) / 1e9;
            long freshCopies = 0;
            long freshDuplicated = 0;
            for (final Map.Entry<String, List<DigestingSink.Digest>> copies : freshSink.all().entrySet())
            {
                if (!copies.getKey().startsWith("fresh-start"))
                {
                    freshCopies += copies.getValue().size();
                    freshDuplicated += copies.getValue().size() - 1;
                }
            }
            System.out.printf("normal: %d fresh messages (%s) accepted in %.1f s, delivered in %.1f s"
                    + " (%.0f msg/s end to end); lost %d, duplicated %d; drain / normal = %.2f%n", fresh, how,
                acceptSeconds, freshSeconds, fresh / freshSeconds, fresh - (freshCopies - freshDuplicated),
                freshDuplicated, (messages / drainSeconds) / (fresh / freshSeconds));
        }
        finally
        {
            down.close();
        }
    }

    /** {@code ops/relay spool list} on the stopped relay's spool: time to its first line and to its end. */
    private void spoolList() throws Exception
    {
        final long startNs = System.nanoTime();
        final Process list = new ProcessBuilder(root.resolve("ops/relay").toString(), "--config",
            work.resolve("relay.properties").toString(), "spool", "list")
            .redirectError(work.resolve("list.err").toFile()).start();
        long firstNs = -1;
        long lines = 0;
        String last = "";
        try (java.io.BufferedReader out = new java.io.BufferedReader(new java.io.InputStreamReader(
            list.getInputStream(), StandardCharsets.UTF_8), 1 << 16))
        {
            for (String line = out.readLine(); line != null; line = out.readLine())
            {
                if (firstNs < 0)
                {
                    firstNs = System.nanoTime() - startNs;
                }
                lines++;
                last = line;
            }
        }
        final int exit = list.waitFor();
        System.out.printf("spool list: first line after %d ms, %d lines in %.1f s, exit %d (%s)%n",
            firstNs / 1_000_000, lines, (System.nanoTime() - startNs) / 1e9, exit, last);
    }

    /** The probe for {@value #IDLE_PROBE_SECONDS} s on a relay with nothing due, then its report. */
    private void probeIdle(final LatencyProbe probe, final String phase, final String what) throws Exception
    {
        probe.start(phase);
        Thread.sleep(IDLE_PROBE_SECONDS * 1000L);
        probe.stop();
        await(probe::allArrived, "the probe's messages on the idle relay");
        System.out.println(probe.report(what));
    }

    /** {@code count} messages to someone@fresh.test, Message-ID {@code <prefix-i@client.test>} (or prefix alone). */
    private static void sendFresh(final int port, final int count, final String prefix) throws Exception
    {
        sendFresh(port, count, prefix, "someone@fresh.test");
    }

    /** {@code count} messages to {@code recipient} over 16 connections, Message-ID as above. */
    private static void sendFresh(final int port, final int count, final String prefix, final String recipient)
        throws Exception
    {
        final int connections = Math.min(16, count);
        final AtomicLong next = new AtomicLong();
        final List<Thread> senders = new ArrayList<>();
        final List<Exception> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
        for (int c = 0; c < connections; c++)
        {
            final Thread sender = new Thread(() ->
            {
                try (SmtpTestClient client = connectWhenListening(port))
                {
                    for (long i = next.getAndIncrement(); i < count; i = next.getAndIncrement())
                    {
                        final String id = count == 1 ? prefix : prefix + "-" + i;
                        client.sendMessage("fresh@client.test", List.of(recipient), ("Message-ID: <" + id
                            + "@client.test>\r\nSubject: fresh\r\n\r\nnew mail\r\n")
                            .getBytes(StandardCharsets.US_ASCII));
                    }
                }
                catch (final Exception ex)
                {
                    failures.add(ex);
                }
            }, "sender-" + c);
            sender.start();
            senders.add(sender);
        }
        for (final Thread sender : senders)
        {
            sender.join();
        }
        if (!failures.isEmpty())
        {
            throw failures.get(0);
        }
    }

    private static SmtpTestClient connectWhenListening(final int port) throws Exception
    {
        final long deadline = System.nanoTime() + WAIT.toNanos();
        while (true)
        {
            try
            {
                return SmtpTestClient.connectEhlo(port);
            }
            catch (final java.net.ConnectException ex)
            {
                if (System.nanoTime() > deadline)
                {
                    throw ex;
                }
                Thread.sleep(20);
            }
        }
    }

    private void startRelay(final List<String> config) throws IOException
    {
        final Path file = work.resolve("relay.properties");
        Files.write(file, config, StandardCharsets.UTF_8);
        relay = new ProcessBuilder(root.resolve("ops/relay").toString(), "--config", file.toString())
            .directory(work.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(work.resolve("relay.out").toFile())
            .redirectErrorStream(true)
            .start();
    }

    private void stopRelay() throws InterruptedException
    {
        if (relay != null && relay.isAlive())
        {
            relay.destroy();
            if (!relay.waitFor(60, java.util.concurrent.TimeUnit.SECONDS))
            {
                relay.destroyForcibly();
                relay.waitFor();
            }
        }
        relay = null;
    }

    private void await(final java.util.function.BooleanSupplier condition, final String what) throws Exception
    {
        final long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() > deadline || relay == null || !relay.isAlive())
            {
                throw new IllegalStateException("gave up waiting for " + what + "; relay output:\n" +
                    Files.readString(work.resolve("relay.out")));
            }
            Thread.sleep(10);
        }
    }

    private long heapAfterFullGc() throws Exception
    {
        jcmd("GC.run");
        final Matcher m = HEAP_USED.matcher(jcmd("GC.heap_info"));
        long used = 0;
        while (m.find())
        {
            used += Long.parseLong(m.group(1));
        }
        return used;
    }

    private String jcmd(final String command) throws Exception
    {
        final Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        final Process process = new ProcessBuilder(jcmd.toString(), Long.toString(relay.pid()), command)
            .redirectErrorStream(true).start();
        final String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        process.waitFor();
        return out;
    }

    private long writeBytes() throws IOException
    {
        return procField("/proc/" + relay.pid() + "/io", "write_bytes:");
    }

    private long rssKiB() throws IOException
    {
        return procField("/proc/" + relay.pid() + "/status", "VmRSS:");
    }

    private static long procField(final String file, final String name) throws IOException
    {
        for (final String line : Files.readAllLines(Path.of(file)))
        {
            if (line.startsWith(name))
            {
                return Long.parseLong(line.substring(name.length()).trim().split("\\s+")[0]);
            }
        }
        throw new IOException("no " + name + " in " + file);
    }

    /** Allocated bytes under {@code dir} ({@code du -sB1}). */
    private static long du(final Path dir) throws Exception
    {
        final Process du = new ProcessBuilder("du", "-sB1", dir.toString())
            .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        final String out = new String(du.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        du.waitFor();
        return Long.parseLong(out.trim().split("\\s+")[0]);
    }

    private static long treeBytes(final Path dir) throws IOException
    {
        try (var files = Files.walk(dir))
        {
            return files.filter(Files::isRegularFile).mapToLong(file -> file.toFile().length()).sum();
        }
    }

    private static void deleteTree(final Path dir) throws IOException
    {
        if (!Files.exists(dir))
        {
            return;
        }
        try (var files = Files.walk(dir))
        {
            for (final Path file : files.sorted(java.util.Comparator.reverseOrder()).toList())
            {
                Files.deleteIfExists(file);
            }
        }
    }

    private static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress()))
        {
            return socket.getLocalPort();
        }
    }
}
