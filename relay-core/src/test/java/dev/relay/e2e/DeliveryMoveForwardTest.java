package dev.relay.e2e;

import dev.relay.Relay;
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
 * Big deferred messages are moved forward into newer spool cycles (one-second cycles here) a slice per loop pass,
 * so the delivery loop keeps serving other mail while MiBs are copied, the old cycle files go, and once the
 * destination is back every message arrives once, byte-exact.
 */
@Timeout(90)
class DeliveryMoveForwardTest
{
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final String SENDER = "alice@client.test";
    private static final int BIG = 4;
    private static final int BIG_BYTES = 6 << 20;

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
            E2e.closeQuietly(relay);
        }
        finally
        {
            E2e.closeQuietly(down);
            E2e.closeQuietly(healthy);
            E2e.closeQuietly(log);
        }
    }

    @Test
    void bigDeferredMessagesMoveForwardWithoutHoldingTheLoopThenArriveOnce() throws Exception
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
        try (SmtpTestClient client = new SmtpTestClient(E2e.smtp(relay)))
        {
            for (int i = 0; i < BIG; i++)
            {
                final byte[] body = big("big-" + i, BIG_BYTES);
                client.send(SENDER, List.of("bob@dest.test"), body);
                sent.put("big-" + i, sha256(body));
                sizes.put("big-" + i, body.length);
            }
        }
        final List<Path> firstFiles = E2e.cycleFiles(spool);
        E2e.await("the big messages deferred", WAIT, () -> relay.metrics().messagesDeferred() >= BIG, this::state);

        // while the spool rolls each second and the mover copies 24 MiB forward, small mail to a healthy hop flows
        long worstMs = 0;
        int moved = 0;
        final long deadline = System.nanoTime() + WAIT.toNanos();
        int small = 0;
        while ((moved = moves()) < 2 * BIG && System.nanoTime() < deadline)
        {
            final long start = System.nanoTime();
            try (SmtpTestClient client = new SmtpTestClient(E2e.smtp(relay)))
            {
                client.send(SENDER, List.of("carol@healthy.test"), E2e.message(SENDER, "carol", "small-" + small));
            }
            small++;
            final int expected = small;
            E2e.await("small message " + small, WAIT, () -> healthy.messageCount() >= expected, this::state);
            worstMs = Math.max(worstMs, (System.nanoTime() - start) / 1_000_000);
        }
        System.out.printf("move forward: %d moves of %d x %d MiB, %d small messages meanwhile, worst %d ms%n", moved,
            BIG, BIG_BYTES >> 20, small, worstMs);
        assertTrue(moved >= 2 * BIG, "each big message moved forward at least twice; " + state());
        assertTrue(worstMs < 2_000, "a small message took " + worstMs + " ms while big ones were moved");
        E2e.await("the cycle files the big messages were received in deleted", WAIT,
            () -> firstFiles.stream().noneMatch(java.nio.file.Files::exists), this::state);

        down.restart();
        relay.flush();
        final List<TestSmtpSink.Received> got = down.awaitMessages(BIG, WAIT);
        E2e.await("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(BIG, down.messageCount(), "each big message once");
        for (final TestSmtpSink.Received message : got)
        {
            final byte[] raw = message.raw();
            final String id = E2e.messageId(message.content());
            final String name = id.substring(0, id.indexOf('@'));
            final byte[] body = Arrays.copyOfRange(raw, raw.length - sizes.get(name), raw.length);
            assertEquals(sent.get(name), sha256(body), "content of " + id);
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
        return "queued " + relay.queuedMessages() + ", deferred " + relay.metrics().messagesDeferred() + ", moves " +
            moves() + ", healthy " + healthy.messageCount() + ", cycle " + relay.spool().currentCycle();
    }
}
