package dev.relay.e2e;

import dev.relay.Relay;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A cycle whose mail was mostly delivered is moved out of: its big deferred messages are copied into the current
 * spool cycle (one-second cycles here) a slice per loop pass, so the delivery loop keeps serving other mail while
 * MiBs are copied, and the old cycle file goes. A cycle that holds nothing but deferred mail (a standing backlog)
 * stays where it is: nothing is copied for it. Once the destination is back every message arrives once, byte-exact.
 */
@Timeout(90)
class DeliveryMoveForwardTest
{
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final String SENDER = "alice@client.test";
    /** Deferred messages in the mostly delivered cycle, and in the cycle of deferred mail only. */
    private static final int SPARSE_DEFERRED = 2;
    private static final int DENSE_DEFERRED = 2;
    private static final int DEFERRED_BYTES = 1 << 20;
    /** Delivered beside them: four times their bytes, so under a quarter of the cycle stays live. */
    private static final int DELIVERED = 5;
    private static final int DELIVERED_BYTES = 2 << 20;

    @TempDir
    Path spool;

    private TestSmtpSink down;
    private TestSmtpSink healthy;
    private Relay relay;
    private E2e.DeliveryLogCapture log;

    @AfterEach
    void closeAll()
    {
        try
        {
            Await.closeQuietly(relay);
        }
        finally
        {
            Await.closeQuietly(down);
            Await.closeQuietly(healthy);
            Await.closeQuietly(log);
        }
    }

    @Test
    void aMostlyDeliveredCycleIsMovedOutOfWithoutHoldingTheLoopAndAFullOneStays() throws Exception
    {
        log = new E2e.DeliveryLogCapture();
        down = TestSmtpSink.start();
        healthy = TestSmtpSink.start();
        relay = E2e.start(E2e.config(spool,
            "delivery.routes", "healthy.test=127.0.0.1:" + healthy.port() + ",*=127.0.0.1:" + down.port(),
            "delivery.retry.schedule", "1h",
            "queue.roll_cycle", "secondly"));
        down.stop();

        final Map<String, String> sent = new HashMap<>();
        final Map<String, Integer> sizes = new HashMap<>();
        final List<Path> before = E2e.cycleFiles(spool);
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            // one cycle: the deferred ones, then four times their bytes to the healthy hop
            awaitStartOfSecond();
            final long second = System.currentTimeMillis() / 1000;
            for (int i = 0; i < SPARSE_DEFERRED; i++)
            {
                send(client, "sparse-" + i, "bob@dest.test", DEFERRED_BYTES, sent, sizes);
            }
            for (int i = 0; i < DELIVERED; i++)
            {
                send(client, "delivered-" + i, "carol@healthy.test", DELIVERED_BYTES, sent, sizes);
            }
            assertEquals(second, System.currentTimeMillis() / 1000, "the first burst fits in one second");
            // the next: deferred mail only
            awaitStartOfSecond();
            for (int i = 0; i < DENSE_DEFERRED; i++)
            {
                send(client, "dense-" + i, "dave@dest.test", DEFERRED_BYTES, sent, sizes);
            }
        }
        final List<Path> firstFiles = E2e.cycleFiles(spool).stream().filter(path -> !before.contains(path)).sorted()
            .toList();
        Await.until("the big messages deferred and delivered", WAIT,
            () -> relay.metrics().messagesDeferred() >= SPARSE_DEFERRED + DENSE_DEFERRED &&
                healthy.messageCount() >= DELIVERED, this::state);

        // while the spool rolls each second and the mover copies the sparse cycle's MiBs, small mail flows
        long worstMs = 0;
        int small = 0;
        final long deadline = System.nanoTime() + WAIT.toNanos();
        while (moves() < SPARSE_DEFERRED && System.nanoTime() < deadline)
        {
            final long start = System.nanoTime();
            try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
            {
                client.send(SENDER, List.of("erin@healthy.test"), E2e.message(SENDER, "erin", "small-" + small));
            }
            small++;
            final int expected = DELIVERED + small;
            Await.until("small message " + small, WAIT, () -> healthy.messageCount() >= expected, this::state);
            worstMs = Math.max(worstMs, (System.nanoTime() - start) / 1_000_000);
        }
        System.out.printf("move forward: %d moves of %d MiB, %d small messages meanwhile, worst %d ms%n", moves(),
            DEFERRED_BYTES >> 20, small, worstMs);
        assertEquals(SPARSE_DEFERRED, moves(), "the sparse cycle's deferred messages moved; " + state());
        assertTrue(worstMs < 2_000, "a small message took " + worstMs + " ms while big ones were moved");
        final Path sparseFile = firstFiles.get(0);
        final Path denseFile = firstFiles.get(1);
        Await.until("the mostly delivered cycle's file deleted", WAIT, () -> !java.nio.file.Files.exists(sparseFile),
            this::state);
        // a few more rolls: the cycle of deferred mail only is never copied
        final long rolls = System.currentTimeMillis() / 1000 + 3;
        Await.until("three more rolls", WAIT, () -> System.currentTimeMillis() / 1000 > rolls, this::state);
        assertEquals(SPARSE_DEFERRED, moves(), "nothing else moved: a full cycle stays; " + state());
        assertTrue(java.nio.file.Files.exists(denseFile), "the cycle of deferred mail only is kept; " + state());

        down.restart();
        relay.flush();
        final int deferred = SPARSE_DEFERRED + DENSE_DEFERRED;
        final List<TestSmtpSink.Received> got = down.awaitMessages(deferred, WAIT);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(deferred, down.messageCount(), "each deferred message once");
        for (final TestSmtpSink.Received message : got)
        {
            final byte[] raw = message.raw();
            final String id = E2e.messageId(message.content());
            final String name = id.substring(0, id.indexOf('@'));
            final byte[] body = Arrays.copyOfRange(raw, raw.length - sizes.get(name), raw.length);
            assertEquals(sent.get(name), sha256(body), "content of " + id);
        }
    }

    private static void send(final BlockingSmtpClient client, final String id, final String to, final int size,
        final Map<String, String> sent, final Map<String, Integer> sizes) throws Exception
    {
        final byte[] body = big(id, size);
        client.send(SENDER, List.of(to), body);
        sent.put(id, sha256(body));
        sizes.put(id, body.length);
    }

    /** Waits until the wall clock is early in a second, so that a burst lands in one secondly cycle. */
    private static void awaitStartOfSecond() throws InterruptedException
    {
        final long second = System.currentTimeMillis() / 1000;
        while (System.currentTimeMillis() / 1000 == second)
        {
            Thread.sleep(2);
        }
    }

    private int moves()
    {
        int count = 0;
        for (final String line : log.lines())
        {
            if (line.contains("moved forward to the current spool cycle"))
            {
                count++;
            }
        }
        return count;
    }

    /** About {@code size} bytes of wire form (dot-stuffed lines included), every line shorter than 1000 octets. */
    private static byte[] big(final String id, final int size)
    {
        final StringBuilder text = new StringBuilder(size + 200)
            .append("From: <").append(SENDER).append(">\r\nSubject: ").append(id)
            .append("\r\nMessage-ID: <").append(id).append("@client.test>\r\n\r\n");
        int line = 0;
        while (text.length() < size)
        {
            text.append(line % 9 == 0 ? ".." : "").append(id).append(' ').append(line++).append(' ')
                .append("z".repeat(60)).append("\r\n");
        }
        return text.toString().getBytes(StandardCharsets.US_ASCII);
    }

    private static String sha256(final byte[] bytes) throws Exception
    {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    private String state()
    {
        return "queued " + relay.queuedMessages() + ", deferrals " + relay.metrics().messagesDeferred() + ", moves " +
            moves() + ", healthy " + healthy.messageCount() + ", cycle " + relay.spool().currentCycle() + ", files " +
            relay.spool().cycleFiles(0).keySet();
    }
}
