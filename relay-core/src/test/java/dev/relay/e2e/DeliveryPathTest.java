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
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The mail's path through a real relay to real destinations: the body arrives byte-exact with one Received header
 * prepended, recipients of one domain share one transaction, and routes pick the right next hop.
 */
@Timeout(30)
class DeliveryPathTest
{
    private static final Duration WAIT = Duration.ofSeconds(15);

    @TempDir
    Path spool;

    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void closeAll()
    {
        // relays first (they hold connections to the sinks), then the sinks
        for (int i = open.size() - 1; i >= 0; i--)
        {
            Await.closeQuietly(open.get(i));
        }
    }

    private TestSmtpSink sink() throws Exception
    {
        final TestSmtpSink sink = TestSmtpSink.start();
        open.add(sink);
        return sink;
    }

    private Relay relay(final Map<String, String> config) throws Exception
    {
        final Relay relay = E2e.start(config);
        open.add(relay);
        return relay;
    }

    @Test
    void bodyArrivesByteExactWithOneReceivedHeaderAndRecipientsShareOneTransaction() throws Exception
    {
        final TestSmtpSink sink = sink();
        final Relay relay = relay(E2e.config(spool, "delivery.routes", "*=127.0.0.1:" + sink.port()));
        // dot-stuffed lines, a line of just "..", 8-bit-free but odd whitespace, a long line, no trailing blank
        final StringBuilder body = new StringBuilder()
            .append("From: <alice@client.test>\r\n")
            .append("To: <a@example.test>, <b@example.test>, <c@example.test>\r\n")
            .append("Subject: byte exact\r\n")
            .append("Message-ID: <exact-1@client.test>\r\n")
            .append("\r\n")
            .append("..leading dot (stuffed)\r\n")
            .append("..\r\n")
            .append(" \t trailing space \r\n")
            .append("x".repeat(900)).append("\r\n")
            .append("\r\n")
            .append("last line\r\n");
        final byte[] wire = body.toString().getBytes(StandardCharsets.US_ASCII);
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            client.send("alice@client.test", List.of("a@example.test", "b@example.test", "c@example.test"), wire);
        }

        final TestSmtpSink.Received got = sink.awaitMessages(1, WAIT).get(0);
        assertEquals(List.of("a@example.test", "b@example.test", "c@example.test"), got.recipients());
        assertEquals("alice@client.test", got.mailFrom());
        final byte[] raw = got.raw();
        assertTrue(raw.length > wire.length, "payload shorter than what was sent");
        final byte[] prefix = Arrays.copyOfRange(raw, 0, raw.length - wire.length);
        final byte[] rest = Arrays.copyOfRange(raw, raw.length - wire.length, raw.length);
        assertArrayEquals(wire, rest, () -> "body not byte-exact; got:\n" + E2e.text(raw));
        final String received = E2e.text(prefix);
        assertTrue(received.startsWith("Received: "), () -> "prepended header: " + received);
        assertTrue(received.endsWith("\r\n"), () -> "prepended header: " + received);
        for (final String line : received.substring(0, received.length() - 2).split("\r\n", -1))
        {
            assertTrue(line.startsWith("Received: ") || line.startsWith(" ") || line.startsWith("\t"),
                () -> "more than one header prepended: " + received);
        }
        assertTrue(received.contains("relay.test"), () -> "Received names the relay: " + received);

        // one connection, one MAIL, three RCPT
        final List<String> commands = sink.commands().values().iterator().next();
        assertEquals(1, commands.stream().filter(c -> c.startsWith("MAIL FROM:")).count(), commands::toString);
        assertEquals(3, commands.stream().filter(c -> c.startsWith("RCPT TO:")).count(), commands::toString);
        assertEquals(1, sink.messageCount());
        Await.until("delivered count", WAIT, () -> relay.metrics().messagesDelivered() == 3 &&
            relay.queuedMessages() == 0, () -> "delivered " + relay.metrics().messagesDelivered());
    }

    @Test
    void routesPickExactDomainSubdomainsAndCatchAll() throws Exception
    {
        final TestSmtpSink exact = sink();
        final TestSmtpSink sub = sink();
        final TestSmtpSink any = sink();
        final Relay relay = relay(E2e.config(spool, "delivery.routes",
            "example.test=127.0.0.1:" + exact.port() + ",.sub.test=127.0.0.1:" + sub.port() +
                ",*=127.0.0.1:" + any.port()));
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            client.send("s@client.test", List.of("u@example.test"), E2e.message("s@client.test", "u", "r1"));
            client.send("s@client.test", List.of("u@a.sub.test"), E2e.message("s@client.test", "u", "r2"));
            client.send("s@client.test", List.of("u@deep.b.sub.test"), E2e.message("s@client.test", "u", "r3"));
            // the parent domain itself is not covered by ".sub.test", nor is a sibling of example.test
            client.send("s@client.test", List.of("u@sub.test"), E2e.message("s@client.test", "u", "r4"));
            client.send("s@client.test", List.of("u@x.example.test"), E2e.message("s@client.test", "u", "r5"));
        }
        Await.until("all five delivered", WAIT,
            () -> exact.messageCount() + sub.messageCount() + any.messageCount() >= 5,
            () -> "exact " + exact.messages().size() + ", sub " + sub.messageCount() + ", * " + any.messageCount());
        assertEquals(List.of("r1"), ids(exact));
        assertEquals(List.of("r2", "r3"), sorted(ids(sub)));
        assertEquals(List.of("r4", "r5"), sorted(ids(any)));
        assertEquals(List.of("u@example.test"), exact.messages().get(0).recipients());
    }

    @Test
    void hopsSpreadOverSeveralDeliveryLoopsEachGetTheirMailOnce() throws Exception
    {
        final int hops = 6;
        final List<TestSmtpSink> sinks = new ArrayList<>();
        final StringBuilder routes = new StringBuilder();
        for (int i = 0; i < hops; i++)
        {
            sinks.add(sink());
            routes.append(i == 0 ? "" : ",").append("d").append(i).append(".test=127.0.0.1:")
                .append(sinks.get(i).port());
        }
        final Relay relay = relay(E2e.config(spool, "delivery.io_threads", "3", "delivery.routes", routes.toString()));
        final List<String> everyHop = new ArrayList<>();
        for (int i = 0; i < hops; i++)
        {
            everyHop.add("u@d" + i + ".test");
        }
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            client.send("s@client.test", everyHop, E2e.message("s@client.test", "u", "all"));
            for (int m = 0; m < 5; m++)
            {
                for (int i = 0; i < hops; i++)
                {
                    client.send("s@client.test", List.of("u@d" + i + ".test"),
                        E2e.message("s@client.test", "u", "m" + m + "-" + i));
                }
            }
        }
        Await.until("every message at its hop", WAIT, () -> sinks.stream().mapToInt(TestSmtpSink::messageCount).sum()
            >= hops * 6, () -> "delivered " + sinks.stream().mapToInt(TestSmtpSink::messageCount).sum());
        Await.until("all finished", WAIT, () -> relay.queuedMessages() == 0, () -> "queued " + relay.queuedMessages());
        for (int i = 0; i < hops; i++)
        {
            final List<String> expected = new ArrayList<>(List.of("all"));
            for (int m = 0; m < 5; m++)
            {
                expected.add("m" + m + "-" + i);
            }
            assertEquals(sorted(expected), sorted(ids(sinks.get(i))), "hop " + i + " got its mail once");
            assertEquals(List.of("u@d" + i + ".test"), sinks.get(i).messages().get(0).recipients());
        }
        final List<String> threads = new ArrayList<>();
        for (final Thread thread : Thread.getAllStackTraces().keySet())
        {
            threads.add(thread.getName());
        }
        assertTrue(threads.containsAll(List.of("smtp-out-0", "smtp-out-1", "smtp-out-2", "queue-manager")),
            threads::toString);
    }

    private static List<String> ids(final TestSmtpSink sink)
    {
        final List<String> ids = new ArrayList<>();
        for (final TestSmtpSink.Received message : sink.messages())
        {
            final String id = E2e.messageId(message.content());
            ids.add(id.substring(0, id.indexOf('@')));
        }
        return ids;
    }

    private static List<String> sorted(final List<String> list)
    {
        final List<String> copy = new ArrayList<>(list);
        copy.sort(null);
        return copy;
    }
}
