package dev.relay.hardening;

import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpooledMessage;
import dev.relay.testing.BlockingSmtpClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static dev.relay.testing.Commands.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The spool's file system fills up: the spool lives on a 96 MiB tmpfs, the relay (a child JVM, so a SIGBUS from a
 * write into a mapped page of a full tmpfs shows up as a dead process, not a dead test run) keeps mail queued
 * (destination down), and a filler file eats the space while a client sends 4 KiB messages.
 * <p>
 * Asserted: new mail gets {@code 452 4.3.1}; the relay still answers; every 250'd queue id is in the spool
 * afterwards (read with {@link SpoolReader}, and again after a restart); after the filler is deleted new mail gets
 * 250 again within seconds. Also probed: a transaction that passed the {@code queue.min_free_bytes} check at DATA
 * and then finds the file system completely full when its records are written (the check is per message, at
 * DATA; the usable-space value is refreshed every 100 ms).
 * <p>
 * <p>
 * {@link #spaceTakenWhileClientsSend}: the race the usable-space estimate alone left open. Two loops, eight
 * clients admitted (354) at once, then a filler grabs every free block while they send bodies of 256-512 KiB, so
 * the relay's estimate (refreshed every 100 ms) is stale while their records are written. Each of those writes
 * either lands in blocks the spool allocated beforehand ({@code fallocate}) or is refused (452): the relay must
 * not fault (SIGBUS, exit 70), must lose no 250'd message, and must take mail again once the filler is gone.
 * <p>
 * Needs root (mount). Without it: skipped, or failed when {@code CI=true}.
 */
@Timeout(90)
class HardeningDiskFullTest
{
    private static final Pattern BOUND = Pattern.compile("smtp on \\[[^\\]]*?:(\\d+)[,\\]]");
    private static final long MIB = 1024 * 1024;
    private static final int BODY_BYTES = 4096;
    private static final String SENDER = "alice@client.test";
    private static final String RCPT = "bob@example.test";
    private static final long NOTICE_MS = 300;
    private static final int RACE_ROUNDS = 4;
    private static final int RACE_CLIENTS = 8;
    private static final int RACE_MORE = 3;

    @TempDir
    Path work;

    private Path mount;
    private boolean mounted;
    private Process child;
    private Path childOut;
    private final List<String> events = new ArrayList<>();

    @BeforeEach
    void mountTmpfs() throws Exception
    {
        mount = Files.createDirectory(work.resolve("tmpfs"));
        final String why = tryMount(mount);
        if (why != null)
        {
            if ("true".equalsIgnoreCase(System.getenv("CI")))
            {
                fail("cannot mount a tmpfs for the disk-full test (CI=true): " + why);
            }
            Assumptions.abort("disk-full test skipped: cannot mount a tmpfs (" + why + "); run as root");
        }
        mounted = true;
    }

    @AfterEach
    void cleanUp() throws Exception
    {
        try
        {
            stopChild(false);
        }
        finally
        {
            if (mounted)
            {
                run(List.of("umount", "-l", mount.toString()));
            }
        }
    }

    @Test
    void spoolFileSystemFills() throws Exception
    {
        withDiagnostics("disk-full test", this::fillUpAndRecover);
    }

    @Test
    void spaceTakenWhileClientsSend() throws Exception
    {
        withDiagnostics("disk-full race", this::raceFillerAgainstClients);
    }

    private interface Scenario
    {
        void run() throws Exception;
    }

    /** Runs {@code scenario}; a failure carries whether the relay lived, the sequence of events and its output. */
    private void withDiagnostics(final String name, final Scenario scenario)
    {
        try
        {
            scenario.run();
        }
        catch (final Exception | AssertionError ex)
        {
            throw new AssertionError(name + " failed; relay alive " + (child != null && child.isAlive())
                + "; sequence so far:\n  " + String.join("\n  ", events) + "\n" + output(), ex);
        }
    }

    private void raceFillerAgainstClients() throws Exception
    {
        final long t0 = System.nanoTime();
        final Path spool = mount.resolve("spool");
        final Path filler = mount.resolve("filler");
        // queue.min_free_bytes 0: only the estimate's slack and the allocation stand between a write and a full disk
        final Map<String, String> config = Hardening.config(spool,
            "smtp.io_threads", "2",
            "queue.roll_cycle", "hourly",
            "delivery.retry.schedule", "1h",
            "delivery.routes", "example.test=127.0.0.1:" + closedPort());
        final Set<String> accepted = java.util.concurrent.ConcurrentHashMap.newKeySet();
        int port = startChild(config);
        awaitAccepted(port, accepted, "race-base");
        note("race: relay up (2 loops) on a %d MiB tmpfs; usable %s", total(mount) / MIB, mib(usable(mount)));
        int refusedTotal = 0;
        for (int round = 0; round < RACE_ROUNDS; round++)
        {
            final int[] counts = raceRound(port, filler, accepted, round);
            refusedTotal += counts[1];
            assertTrue(child.isAlive(), "relay died in round " + round);
            try (BlockingSmtpClient client = client(port))
            {
                BlockingSmtpClient.expect("250", client.command("NOOP"));
            }
            Files.delete(filler);
            final long recoveredMs = awaitAccepted(port, accepted, "race-recover-" + round);
            note("race round %d: 250 %d, 452 %d; filler deleted, 250 again after %d ms; usable %s; spool %s", round,
                counts[0], counts[1], recoveredMs, mib(usable(mount)), spoolFiles(spool));
        }
        assertTrue(refusedTotal > 0, "no 452 in any round: the filler never won");
        note("race: allocation refused (ENOSPC) in %d episode(s) over %d rounds; journal records skipped in %d",
            countInOutput("file system full: no blocks for a record"), RACE_ROUNDS,
            countInOutput("journal: an outcome could not be recorded"));

        stopChild(true);
        assertNoFault();
        final Set<String> lost = new LinkedHashSet<>(accepted);
        lost.removeAll(storedIds(spool));
        note("race after stop: 250'd %d, lost %d %s", accepted.size(), lost.size(), lost.size() > 10 ? "" : lost);
        assertEquals(Set.of(), lost, "250'd but not in the spool");

        port = startChild(config);
        awaitAccepted(port, accepted, "race-after-restart");
        stopChild(true);
        assertNoFault();
        final Set<String> lostAfterRestart = new LinkedHashSet<>(accepted);
        lostAfterRestart.removeAll(storedIds(spool));
        note("race after restart: 250'd %d, lost %d", accepted.size(), lostAfterRestart.size());
        assertEquals(Set.of(), lostAfterRestart, "250'd but not in the spool after a restart");
        System.out.printf("HARDENING disk-full race (%d ms):%n  %s%n", (System.nanoTime() - t0) / 1_000_000,
            String.join("\n  ", events));
    }

    /**
     * {@value #RACE_CLIENTS} clients get 354 at once; then, at the same moment, they send their bodies and a filler
     * starts taking every free block (and keeps taking what appears) until they are done. Each client then sends up
     * to {@value #RACE_MORE} more messages, stopping at the first refusal. @return {250s, 452s}.
     */
    private int[] raceRound(final int port, final Path filler, final Set<String> accepted, final int round)
        throws Exception
    {
        final java.util.concurrent.CountDownLatch admitted = new java.util.concurrent.CountDownLatch(RACE_CLIENTS);
        final java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
        final java.util.concurrent.atomic.AtomicBoolean clientsDone = new java.util.concurrent.atomic.AtomicBoolean();
        final java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(
            RACE_CLIENTS + 1);
        try
        {
            final List<java.util.concurrent.Future<List<String>>> results = new ArrayList<>();
            for (int c = 0; c < RACE_CLIENTS; c++)
            {
                final java.util.Random sizes = new java.util.Random(round * 100L + c);
                final String id = "race-" + round + "-" + c;
                results.add(pool.submit(() ->
                {
                    final List<String> replies = new ArrayList<>();
                    try (BlockingSmtpClient client = client(port))
                    {
                        BlockingSmtpClient.expect("250", client.command("MAIL FROM:<" + SENDER + ">"));
                        BlockingSmtpClient.expect("250", client.command("RCPT TO:<" + RCPT + ">"));
                        BlockingSmtpClient.expect("354", client.command("DATA"));
                        admitted.countDown();
                        go.await();
                        String reply = client.sendBody(bigBody(id, (256 + sizes.nextInt(256)) * 1024));
                        replies.add(reply.startsWith("250") || reply.startsWith("452") ? reply : "END:" + reply);
                        for (int i = 0; i < RACE_MORE && reply.startsWith("250"); i++)
                        {
                            reply = sendOnce(client, bigBody(id + "-" + i, (256 + sizes.nextInt(256)) * 1024));
                            replies.add(reply);
                        }
                    }
                    catch (final IOException ex)
                    {
                        replies.add("IO:" + ex.getMessage());
                    }
                    return replies;
                }));
            }
            assertTrue(admitted.await(20, TimeUnit.SECONDS), "clients not admitted");
            final java.util.concurrent.Future<Long> grab = pool.submit(() -> grabFreeSpace(filler, clientsDone));
            go.countDown();
            int ok = 0;
            int refused = 0;
            final List<String> other = new ArrayList<>();
            for (final java.util.concurrent.Future<List<String>> result : results)
            {
                for (final String reply : result.get(60, TimeUnit.SECONDS))
                {
                    if (reply.startsWith("250"))
                    {
                        accepted.add(BlockingSmtpClient.queueId(reply));
                        ok++;
                    }
                    else if (reply.startsWith("452 4.3.1") || reply.startsWith("END:452 4.3.1")
                        || reply.startsWith("DATA:452 4.3.1"))
                    {
                        refused++;
                    }
                    else
                    {
                        other.add(reply);
                    }
                }
            }
            clientsDone.set(true);
            final long grabbed = grab.get(10, TimeUnit.SECONDS);
            note("race round %d: filler took %s, usable now %s", round, mib(grabbed), mib(usable(mount)));
            assertEquals(List.of(), other, "only 250 or 452 4.3.1 (round " + round + ")");
            return new int[] {ok, refused};
        }
        finally
        {
            clientsDone.set(true);
            pool.shutdownNow();
        }
    }

    /** Appends to {@code filler} whatever the file system will give, until {@code done}. @return bytes taken. */
    private static long grabFreeSpace(final Path filler, final java.util.concurrent.atomic.AtomicBoolean done)
        throws IOException, InterruptedException
    {
        final ByteBuffer zeros = ByteBuffer.allocateDirect(256 * 1024);
        long taken = 0;
        try (FileChannel channel = FileChannel.open(filler, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.APPEND))
        {
            while (!done.get())
            {
                zeros.clear();
                try
                {
                    taken += channel.write(zeros);
                }
                catch (final IOException ex)
                {
                    // ENOSPC: smaller pieces for what is left, then wait for more
                    zeros.clear().limit(4096);
                    try
                    {
                        taken += channel.write(zeros);
                    }
                    catch (final IOException full)
                    {
                        Thread.sleep(1);
                    }
                }
            }
        }
        return taken;
    }

    private long countInOutput(final String text) throws IOException
    {
        return childOut == null ? 0 : Files.readAllLines(childOut, StandardCharsets.ISO_8859_1).stream()
            .filter(line -> line.contains(text)).count();
    }

    /** No fault in the child's output: no InternalError from a store into an unbacked page, no dead stage. */
    private void assertNoFault() throws IOException
    {
        for (final String sign : List.of("InternalError", "SIGBUS", "unsafe memory access", "exiting 70"))
        {
            assertEquals(0, countInOutput(sign), "the relay's output shows a fault (" + sign + ")");
        }
    }

    private void fillUpAndRecover() throws Exception
    {
        final long t0 = System.nanoTime();
        final Path spool = mount.resolve("spool");
        final Path filler = mount.resolve("filler");
        final Map<String, String> config = Hardening.config(spool,
            "queue.min_free_bytes", "16M",
            "queue.roll_cycle", "hourly",
            "delivery.retry.schedule", "1h",
            "delivery.routes", "example.test=127.0.0.1:" + closedPort());
        final Set<String> accepted = new LinkedHashSet<>();
        int refusedAtData = 0;
        int refusedAtEnd = 0;
        int other = 0;
        final Set<String> otherReplies = new LinkedHashSet<>();

        int port = startChild(config);
        note("relay up on a %d MiB tmpfs; usable %s", total(mount) / MIB, mib(usable(mount)));

        // 1. baseline
        try (BlockingSmtpClient client = client(port))
        {
            for (int i = 0; i < 10; i++)
            {
                accepted.add(client.send(SENDER, List.of(RCPT), body("base-" + i)));
            }
        }
        note("baseline: 10 x 250; usable %s; spool files %s", mib(usable(mount)), spoolFiles(spool));

        // 2. fill to ~20 MiB free, then keep sending until the relay refuses
        fillTo(filler, 20 * MIB);
        note("filler %s written: usable %s", mib(Files.size(filler)), mib(usable(mount)));
        String firstRefusal = null;
        int consecutiveRefusals = 0;
        int sent = 0;
        try (BlockingSmtpClient client = client(port))
        {
            // stop below smtp.soft_error_limit (10): every 452 counts as a session error, more would be delayed
            // and, at smtp.max_errors, disconnected
            while (consecutiveRefusals < 5 && sent < 20_000)
            {
                final String reply = sendOnce(client, body("fill-" + sent));
                sent++;
                if (reply.startsWith("250"))
                {
                    accepted.add(BlockingSmtpClient.queueId(reply));
                    consecutiveRefusals = 0;
                }
                else if (reply.startsWith("DATA:452 4.3.1"))
                {
                    refusedAtData++;
                    consecutiveRefusals++;
                }
                else if (reply.startsWith("END:452 4.3.1"))
                {
                    refusedAtEnd++;
                    consecutiveRefusals++;
                }
                else
                {
                    other++;
                    otherReplies.add(reply);
                    consecutiveRefusals++;
                }
                if (firstRefusal == null && !reply.startsWith("250"))
                {
                    firstRefusal = reply + " after " + (sent - 1) + " messages, usable " + mib(usable(mount));
                }
            }
            note("filling: sent %d, 250 %d, 452 at DATA %d, 452 at end of data %d, other %d %s; first refusal: %s",
                sent, accepted.size() - 10, refusedAtData, refusedAtEnd, other, otherReplies, firstRefusal);
            assertTrue(refusedAtData + refusedAtEnd > 0, "no 452 while the disk filled: " + events);
            assertEquals(0, other, "only 250 or 452 4.3.1: " + events);
            // 3. the loops survive: the same connection and a new one are answered
            BlockingSmtpClient.expect("250", client.command("NOOP"));
            BlockingSmtpClient.expect("250", client.command("EHLO client.test"));
        }
        try (BlockingSmtpClient client = client(port))
        {
            BlockingSmtpClient.expect("250", client.command("NOOP"));
        }
        assertTrue(child.isAlive(), "relay died\n" + output());
        note("after refusals: NOOP/EHLO answered; usable %s; spool files %s", mib(usable(mount)), spoolFiles(spool));

        // 4. recovery: delete the filler, new mail is taken again within a few seconds
        Files.delete(filler);
        final long recoveredMs = awaitAccepted(port, accepted, "recover-1");
        note("filler deleted: usable %s; first 250 again after %d ms", mib(usable(mount)), recoveredMs);

        // 5. probe: a transaction past the min_free check (354) meets a file system that another process filled
        //    to the last page before its records are written: 452, not a write into an unbacked mapped page
        final int[] probeRefused = new int[1];
        final String probe = probeFullDuringData(port, filler, accepted, probeRefused);
        note("probe (tmpfs full after 354): %s", probe);
        Files.deleteIfExists(filler);
        assertTrue(child.isAlive(), "relay died when the disk filled under an open transaction: " + probe + "\n"
            + output());
        assertEquals(2, probeRefused[0], "452 4.3.1 for both probe messages: " + probe);
        awaitAccepted(port, accepted, "recover-2");
        note("filler deleted again: mail accepted; usable %s", mib(usable(mount)));

        // 6. stop, read the spool: every 250'd message is there
        stopChild(true);
        final Set<String> stored = storedIds(spool);
        final Set<String> lost = new LinkedHashSet<>(accepted);
        lost.removeAll(stored);
        note("after stop: 250'd %d, in the spool %d, lost %d %s", accepted.size(), stored.size(), lost.size(),
            lost.size() > 10 ? "" : lost);
        assertEquals(Set.of(), lost, "250'd but not in the spool");

        // 7. restart on the same spool: starts, takes mail, and everything is still readable
        port = startChild(config);
        awaitAccepted(port, accepted, "after-restart");
        stopChild(true);
        final Set<String> restored = storedIds(spool);
        final Set<String> lostAfterRestart = new LinkedHashSet<>(accepted);
        lostAfterRestart.removeAll(restored);
        note("after restart: 250'd %d, in the spool %d, lost %d", accepted.size(), restored.size(),
            lostAfterRestart.size());
        assertEquals(Set.of(), lostAfterRestart, "250'd but not in the spool after a restart");
        System.out.printf("HARDENING disk full (%d ms, recovery %d ms):%n  %s%n",
            (System.nanoTime() - t0) / 1_000_000, recoveredMs, String.join("\n  ", events));
    }

    /**
     * MAIL, RCPT, DATA (354) while there is room; then another process fills the tmpfs to the last page (ENOSPC),
     * the relay gets {@value #NOTICE_MS} ms to see it (its usable-space value is refreshed every 100 ms), and the
     * client sends the body: round 0 a 4 KiB message (staged, written as one record at the end of data), round 1
     * a 512 KiB one (streamed into the spool as it arrives). @return what happened; failed rounds are asserted by
     * the caller (relay alive, loop answering).
     */
    private String probeFullDuringData(final int port, final Path filler, final Set<String> accepted,
        final int[] refused) throws Exception
    {
        final StringBuilder out = new StringBuilder();
        for (int round = 0; round < 2; round++)
        {
            try (BlockingSmtpClient client = client(port))
            {
                BlockingSmtpClient.expect("250", client.command("MAIL FROM:<" + SENDER + ">"));
                BlockingSmtpClient.expect("250", client.command("RCPT TO:<" + RCPT + ">"));
                BlockingSmtpClient.expect("354", client.command("DATA"));
                final long left = fillTo(filler, 0);
                Thread.sleep(NOTICE_MS);
                final byte[] body = round == 0 ? body("probe-" + round) : bigBody("probe-" + round, 512 * 1024);
                final String reply;
                try
                {
                    reply = client.sendBody(body);
                }
                catch (final IOException ex)
                {
                    throw new AssertionError("round " + round + " (" + body.length + " B body, usable " + left
                        + " B): connection lost (" + ex.getMessage() + "), relay alive " + child.isAlive()
                        + "; so far: " + out, ex);
                }
                if (reply.startsWith("250"))
                {
                    accepted.add(BlockingSmtpClient.queueId(reply));
                }
                else if (reply.startsWith("452 4.3.1"))
                {
                    refused[0]++;
                }
                out.append("round ").append(round).append(" (").append(body.length / 1024).append(" KiB): usable ")
                    .append(left).append(" B -> ").append(reply).append("; ");
                BlockingSmtpClient.expect("250", client.command("NOOP"));
            }
            Files.deleteIfExists(filler);
            Thread.sleep(NOTICE_MS); // the relay sees the space again
        }
        return out.toString();
    }

    /** Sends until a 250 (new connections; fails after 10 s). @return ms until the 250. */
    private long awaitAccepted(final int port, final Set<String> accepted, final String id) throws Exception
    {
        final long start = System.nanoTime();
        final long deadline = start + TimeUnit.SECONDS.toNanos(10);
        String last = null;
        int attempt = 0;
        while (System.nanoTime() - deadline < 0)
        {
            try (BlockingSmtpClient client = client(port))
            {
                last = sendOnce(client, body(id + "-" + attempt++));
                if (last.startsWith("250"))
                {
                    accepted.add(BlockingSmtpClient.queueId(last));
                    return (System.nanoTime() - start) / 1_000_000;
                }
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no 250 within 10 s for " + id + "; last: " + last + "; usable "
            + usable(mount) + "\n" + output());
    }

    /** One transaction; 250... or DATA:reply / END:reply / MAIL:... for a refusal. */
    private static String sendOnce(final BlockingSmtpClient client, final byte[] body) throws IOException
    {
        String reply = client.command("MAIL FROM:<" + SENDER + ">");
        if (!reply.startsWith("250"))
        {
            return "MAIL:" + reply;
        }
        reply = client.command("RCPT TO:<" + RCPT + ">");
        if (!reply.startsWith("250"))
        {
            client.command("RSET");
            return "RCPT:" + reply;
        }
        reply = client.command("DATA");
        if (!reply.startsWith("354"))
        {
            client.command("RSET"); // a refused DATA leaves the envelope in place (RFC 5321 §4.1.1.4)
            return "DATA:" + reply;
        }
        reply = client.sendBody(body);
        return reply.startsWith("250") ? reply : "END:" + reply;
    }

    private static byte[] body(final String id)
    {
        final StringBuilder text = new StringBuilder(BODY_BYTES + 256)
            .append("From: <").append(SENDER).append(">\r\nTo: <").append(RCPT).append(">\r\n")
            .append("Subject: disk full ").append(id).append("\r\nMessage-ID: <").append(id)
            .append("@client.test>\r\n\r\n");
        while (text.length() < BODY_BYTES - 80)
        {
            text.append("0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n");
        }
        return text.toString().getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] bigBody(final String id, final int size)
    {
        final byte[] head = body(id);
        final byte[] out = Arrays.copyOf(head, size);
        final byte[] line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
            .getBytes(StandardCharsets.US_ASCII);
        int at = head.length;
        while (at + line.length <= size)
        {
            System.arraycopy(line, 0, out, at, line.length);
            at += line.length;
        }
        return Arrays.copyOf(out, at);
    }

    private static BlockingSmtpClient client(final int port) throws IOException
    {
        return new BlockingSmtpClient(new InetSocketAddress("127.0.0.1", port), Duration.ofSeconds(10));
    }

    /**
     * Grows {@code filler} with zeros until the file system has at most {@code targetFree} usable bytes (0: until
     * ENOSPC). @return the usable bytes then.
     */
    private long fillTo(final Path filler, final long targetFree) throws IOException
    {
        final ByteBuffer zeros = ByteBuffer.allocateDirect((int)MIB);
        try (FileChannel channel = FileChannel.open(filler, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.APPEND))
        {
            while (true)
            {
                final long free = usable(mount);
                final long want = targetFree == 0 ? MIB : free - targetFree;
                if (targetFree > 0 && want <= 0)
                {
                    return free;
                }
                zeros.clear().limit((int)Math.min(MIB, want));
                try
                {
                    while (zeros.hasRemaining())
                    {
                        if (channel.write(zeros) == 0)
                        {
                            return usable(mount);
                        }
                    }
                }
                catch (final IOException ex)
                {
                    // ENOSPC: full (a short write may have come before it)
                    return usable(mount);
                }
            }
        }
    }

    private static long usable(final Path dir) throws IOException
    {
        return Files.getFileStore(dir).getUsableSpace();
    }

    private static long total(final Path dir) throws IOException
    {
        return Files.getFileStore(dir).getTotalSpace();
    }

    private static String mib(final long bytes)
    {
        return String.format("%.2f MiB", bytes / (double)MIB);
    }

    /** Cycle files: name, length and allocated size (du), to show Chronicle's sparse preallocation. */
    private String spoolFiles(final Path spool) throws Exception
    {
        final List<String> out = new ArrayList<>();
        try (Stream<Path> list = Files.list(spool))
        {
            for (final Path file : list.filter(p -> p.toString().endsWith(".cq4")).sorted().toList())
            {
                final String du = run(List.of("du", "-k", file.toString())).split("\\s")[0];
                out.add(file.getFileName() + " length " + mib(Files.size(file)) + " allocated " + du + " KiB");
            }
        }
        return out.toString();
    }

    private void note(final String format, final Object... args)
    {
        final String line = String.format(format, args);
        events.add(line);
        System.out.println("HARDENING disk full: " + line);
    }

    private static Set<String> storedIds(final Path spool) throws IOException
    {
        final Set<String> ids = new HashSet<>();
        try (SpoolReader reader = SpoolReader.open(spool))
        {
            final List<SpooledMessage> messages = new ArrayList<>();
            while (reader.poll(messages::add, 1024) > 0)
            {
                // to the end
            }
            for (final SpooledMessage m : messages)
            {
                final byte[] bodyBytes = reader.readBodyToArray(m);
                final String text = new String(bodyBytes, StandardCharsets.US_ASCII);
                assertTrue(text.contains("\r\nMessage-ID: <") && text.endsWith("XYZ\r\n"),
                    () -> "intact body of " + m.queueIdText() + ": " + text.length() + " bytes");
                ids.add(m.queueIdText());
            }
        }
        return ids;
    }

    private int startChild(final Map<String, String> config) throws Exception
    {
        final StringBuilder text = new StringBuilder();
        config.forEach((key, value) -> text.append(key).append('=').append(value).append('\n'));
        final Path file = Files.createTempFile(work, "relay", ".properties");
        Files.writeString(file, text);
        final List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (final String arg : ManagementFactory.getRuntimeMXBean().getInputArguments())
        {
            if (arg.startsWith("--add-") || arg.startsWith("-Dchronicle."))
            {
                command.add(arg);
            }
        }
        command.addAll(Arrays.asList("-Dchronicle.analytics.disable=true", "-Dchronicle.announcer.disable=true",
            "-Xmx256m", "-XX:+UseSerialGC", "-XX:ErrorFile=" + work.resolve("hs_err_%p.log"),
            "-Dlogback.configurationFile=" + opsLogback(), "-cp",
            System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
            "dev.relay.RelayMain", "--config", file.toString()));
        childOut = Files.createTempFile(work, "child", ".out");
        child = new ProcessBuilder(command).directory(work.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectErrorStream(true).redirectOutput(childOut.toFile()).start();
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true)
        {
            final Matcher m = BOUND.matcher(Files.readString(childOut, StandardCharsets.ISO_8859_1));
            if (m.find())
            {
                return Integer.parseInt(m.group(1));
            }
            if (!child.isAlive() || System.nanoTime() - deadline > 0)
            {
                fail("child relay not listening\n" + output());
            }
            Thread.sleep(20);
        }
    }

    /** SIGTERM and wait; with {@code clean}, fail unless it exited 0. */
    private void stopChild(final boolean clean) throws Exception
    {
        final Process process = child;
        if (process == null)
        {
            return;
        }
        child = null;
        process.destroy();
        if (!process.waitFor(15, TimeUnit.SECONDS))
        {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
            if (clean)
            {
                fail("relay did not stop on SIGTERM\n" + output());
            }
        }
        if (clean && process.exitValue() != 0 && process.exitValue() != 143)
        {
            fail("relay exited " + process.exitValue() + "\n" + output());
        }
    }

    private String output()
    {
        try
        {
            final List<String> lines = childOut == null ? List.of() : Files.readAllLines(childOut,
                StandardCharsets.ISO_8859_1).stream().filter(line -> !line.contains(" dev.relay.smtp-out: ")
                && !line.contains(" dev.relay.smtpd: ") || line.contains("WARN") || line.contains("ERROR")).toList();
            final StringBuilder out = new StringBuilder("--- child output (warnings, errors, not per-message lines):\n")
                .append(String.join("\n", lines.subList(Math.max(0, lines.size() - 150), lines.size())));
            try (Stream<Path> list = Files.list(work))
            {
                for (final Path hs : list.filter(p -> p.getFileName().toString().startsWith("hs_err")).toList())
                {
                    final String crash = Files.readString(hs, StandardCharsets.ISO_8859_1);
                    out.append("\n--- ").append(hs).append(":\n").append(crash, 0, Math.min(crash.length(), 6000));
                }
            }
            return out.toString();
        }
        catch (final IOException ex)
        {
            return "(output unreadable: " + ex + ")";
        }
    }

    private static String opsLogback()
    {
        Path dir = Path.of(System.getProperty("basedir", System.getProperty("user.dir"))).toAbsolutePath();
        while (dir != null && !Files.isRegularFile(dir.resolve("ops/logback.xml")))
        {
            dir = dir.getParent();
        }
        return dir == null ? "logback.xml" : dir.resolve("ops/logback.xml").toString();
    }

    private static int closedPort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0))
        {
            return socket.getLocalPort();
        }
    }

    /** null when mounted, else why not. */
    private static String tryMount(final Path dir)
    {
        if (!"root".equals(System.getProperty("user.name")))
        {
            return "not root (user " + System.getProperty("user.name") + ")";
        }
        try
        {
            run(List.of("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", dir.toString()));
            return null;
        }
        catch (final Exception ex)
        {
            return ex.getMessage();
        }
    }
}
