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
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * One 300 KiB message (bigger than the 64 KiB write buffer and a 256 KiB spool chunk) to 100 recipients in three
 * domains, each routed to its own next hop: each hop gets the body once per transaction, byte-exact, with exactly
 * its recipients, split in transactions of at most {@code delivery.max_recipients_per_transaction}.
 */
@Timeout(60)
class DeliveryManyRecipientsTest
{
    private static final Duration WAIT = Duration.ofSeconds(30);

    @TempDir
    Path spool;

    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void closeAll()
    {
        for (int i = open.size() - 1; i >= 0; i--)
        {
            Await.closeQuietly(open.get(i));
        }
    }

    @Test
    void aBigMessageToAHundredRecipientsOverThreeHops() throws Exception
    {
        final String[] domains = {"one.test", "two.test", "three.test"};
        final TestSmtpSink[] sinks = new TestSmtpSink[domains.length];
        final StringBuilder routes = new StringBuilder();
        for (int d = 0; d < domains.length; d++)
        {
            sinks[d] = TestSmtpSink.start();
            open.add(sinks[d]);
            routes.append(d == 0 ? "" : ",").append(domains[d]).append("=127.0.0.1:").append(sinks[d].port());
        }
        // two.test offers no CHUNKING: DATA there, BDAT nowhere (the body came in with DATA)
        sinks[1].disableExtension("CHUNKING");
        final Relay relay = E2e.start(E2e.config(spool, "delivery.routes", routes.toString(),
            "delivery.max_recipients_per_transaction", "20"));
        open.add(relay);

        final List<String> recipients = new ArrayList<>();
        for (int i = 0; i < 100; i++)
        {
            recipients.add("user" + i + "@" + domains[i % domains.length]);
        }
        final byte[] wire = body(300 * 1024);
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            client.send("alice@client.test", recipients, wire);
        }

        for (int d = 0; d < domains.length; d++)
        {
            final TestSmtpSink sink = sinks[d];
            final String domain = domains[d];
            final long expected = recipients.stream().filter(r -> r.endsWith("@" + domain)).count();
            final int transactions = (int)((expected + 19) / 20);
            sink.awaitMessages(transactions, WAIT);
            final TreeSet<String> got = new TreeSet<>();
            for (final TestSmtpSink.Received message : sink.messages())
            {
                final byte[] raw = message.raw();
                assertArrayEquals(wire, Arrays.copyOfRange(raw, raw.length - wire.length, raw.length),
                    "body at " + domain);
                got.addAll(message.recipients());
            }
            final TreeSet<String> want = new TreeSet<>();
            recipients.stream().filter(r -> r.endsWith("@" + domain)).forEach(want::add);
            assertEquals(want, got, "recipients at " + domain);
            assertEquals(transactions, sink.messageCount(), "transactions at " + domain);
        }
        Await.until("every recipient delivered", WAIT,
            () -> relay.metrics().messagesDelivered() == 100 && relay.queuedMessages() == 0,
            () -> "delivered " + relay.metrics().messagesDelivered());
    }

    private static byte[] body(final int size)
    {
        final StringBuilder text = new StringBuilder(size + 100).append("Subject: many\r\n\r\n");
        int line = 0;
        while (text.length() < size)
        {
            text.append(line % 5 == 0 ? "..dot " : "line ").append(line++).append(' ').append("w".repeat(50))
                .append("\r\n");
        }
        return text.toString().getBytes(StandardCharsets.US_ASCII);
    }
}
