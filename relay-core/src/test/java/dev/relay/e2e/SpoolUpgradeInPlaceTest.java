package dev.relay.e2e;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.QueueIds;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolLanes;
import dev.relay.spool.SpoolWriter;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The spool's lanes across runs of a relay: upgrade in place (a spool of the layout before per-loop queues, one
 * Chronicle queue in {@code queue.dir} with mail accepted and never delivered, is read and delivered by a relay with
 * two inbound loops, each message once, and the new mail goes to the loops' own queues) and fewer loops than the
 * last run (a lane nobody writes is still read and its deferred mail delivered).
 */
@Timeout(90)
class SpoolUpgradeInPlaceTest extends RelayWithSenderSink
{
    private static final int OLD = 40;
    private static final int NEW = 6;
    private static final Pattern SUBJECT = Pattern.compile("Subject: e2e (\\S+)");

    @Test
    void aSingleQueueSpoolIsDeliveredOnceAndNewMailGoesToPerLoopQueues() throws Exception
    {
        writeOldLayout(spool);
        try (Stream<Path> entries = Files.list(spool))
        {
            assertTrue(entries.noneMatch(path -> path.getFileName().toString().startsWith(SpoolLanes.DIR_PREFIX)),
                "the old layout has no lane directories");
        }

        start("smtp.io_threads", "2");
        for (int c = 0; c < NEW; c++)
        {
            // one connection each: the listeners hand connections to both loops
            try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
            {
                final String to = "new" + c + "@example.test";
                client.send(SENDER, List.of(to), E2e.message(SENDER, to, "new-" + c));
            }
        }
        dest.awaitMessages(OLD + NEW, WAIT);
        final Map<String, Integer> seen = deliveredSubjects();
        int lost = 0;
        for (int i = 0; i < OLD; i++)
        {
            lost += seen.containsKey("old-" + i) ? 0 : 1;
        }
        for (int c = 0; c < NEW; c++)
        {
            lost += seen.containsKey("new-" + c) ? 0 : 1;
        }
        final long duplicated = seen.values().stream().filter(n -> n > 1).count();
        assertEquals(0, lost, "lost: " + seen.keySet());
        assertEquals(0, duplicated, "duplicated: " + seen);
        assertEquals(OLD + NEW, dest.messages().size());
        assertTrue(Files.isDirectory(spool.resolve(SpoolLanes.DIR_PREFIX + 1)), "loop 1 has a queue of its own");
    }

    /**
     * Fewer inbound loops than the last run: mail deferred while two loops wrote two lanes is delivered, each message
     * once, by a relay with one loop (lane 1 has no writer any more and is still read, its deferred entries too).
     */
    @Test
    void mailOfALaneWithoutWriterIsDeliveredOnceAfterARestartWithFewerLoops() throws Exception
    {
        dest.stop();
        start("smtp.io_threads", "2");
        final int count = 12;
        for (int c = 0; c < count; c++)
        {
            // a connection each: the kernel spreads them over both loops' listeners
            try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
            {
                final String to = "shrink" + c + "@example.test";
                client.send(SENDER, List.of(to), E2e.message(SENDER, to, "shrink-" + c));
            }
        }
        Await.until("every message deferred", WAIT, () -> relay.metrics().messagesDeferred() >= count,
            () -> "deferred " + relay.metrics().messagesDeferred());
        relay.close();
        relay = null;
        final boolean laneOneHasMail;
        try (Stream<Path> files = Files.list(spool.resolve(SpoolLanes.DIR_PREFIX + 1)))
        {
            laneOneHasMail = files.anyMatch(path -> path.toString().endsWith(".cq4"));
        }

        start("smtp.io_threads", "1");
        dest.restart();
        relay.flush();
        dest.awaitMessages(count, WAIT);
        final Map<String, Integer> seen = deliveredSubjects();
        int lost = 0;
        for (int c = 0; c < count; c++)
        {
            lost += seen.containsKey("shrink-" + c) ? 0 : 1;
        }
        assertEquals(0, lost, "lost: " + seen.keySet());
        assertEquals(0, seen.values().stream().filter(n -> n > 1).count(), "duplicated: " + seen);
        assertEquals(count, dest.messages().size());
        assertTrue(laneOneHasMail, "the first run's loop 1 wrote lane 1");
    }

    /** What the relay before per-loop queues left: {@link #OLD} messages in one queue in the spool directory. */
    private static void writeOldLayout(final Path dir) throws Exception
    {
        final QueueIds ids = new QueueIds(0);
        try (Spool old = Spool.open(dir, SyncMode.NONE, "hourly", 0))
        {
            final SpoolWriter writer = old.newWriter(() -> { });
            for (int i = 0; i < OLD; i++)
            {
                final String to = "old" + i + "@example.test";
                final InboundMessage message = new InboundMessage();
                message.queueId(ids.next(System.currentTimeMillis()));
                message.receivedAtMs(System.currentTimeMillis());
                message.clientAddress(ascii("127.0.0.1"));
                message.heloName(ascii("client.test"));
                message.reversePath(ascii(SENDER));
                message.recipients().add(ascii(to));
                message.receivedHeader(ascii("Received: from client.test ([127.0.0.1]) by relay.test; old\r\n"));
                final byte[] body = E2e.message(SENDER, to, "old-" + i);
                final ByteBuffer buffer = ByteBuffer.allocateDirect(body.length);
                buffer.put(body).flip();
                assertTrue(writer.begin(message));
                assertTrue(writer.append(message, buffer, 0, body.length));
                assertTrue(writer.complete(message, (m, durable) -> { }));
            }
        }
    }

    private static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    /** Once the queue is empty: how many times the sink received each message, by the id in its Subject. */
    private Map<String, Integer> deliveredSubjects()
    {
        Await.until("the queue empty", WAIT, () -> relay.queuedMessages() == 0, () -> "queued " +
            relay.queuedMessages());
        final Map<String, Integer> seen = new HashMap<>();
        for (final TestSmtpSink.Received received : dest.messages())
        {
            final Matcher subject = SUBJECT.matcher(new String(received.content(), StandardCharsets.US_ASCII));
            assertTrue(subject.find());
            seen.merge(subject.group(1), 1, Integer::sum);
        }
        return seen;
    }
}
