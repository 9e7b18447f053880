package dev.relay.e2e;

import dev.relay.Relay;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Volume through one next hop: the connection pool stays within its bound and reuses connections; the spool
 * shrinks back once mail is delivered (finished cycle files are deleted).
 */
@Tag("slow")
class DeliveryLoadTest
{
    private static final String SENDER = "load@client.test";

    @TempDir
    Path spool;

    private TestSmtpSink sink;
    private Relay relay;
    private ExecutorService senders;

    @AfterEach
    void closeAll()
    {
        try
        {
            if (senders != null)
            {
                senders.shutdownNow();
            }
            Await.closeQuietly(relay);
        }
        finally
        {
            Await.closeQuietly(sink);
        }
    }

    @Test
    @Timeout(60)
    void thousandMessagesUseAtMostFourPooledReusedConnections() throws Exception
    {
        final int threads = 4;
        final int perThread = 250;
        final int total = threads * perThread;
        sink = TestSmtpSink.start();
        relay = E2e.start(E2e.config(spool,
            "delivery.routes", "*=127.0.0.1:" + sink.port(),
            "delivery.max_connections_per_hop", "4",
            // no recycling during the run: the relay frees a pool slot only once its socket is closed, but the
            // sink notices that EOF on its own thread, so it could briefly count a closing connection and its
            // replacement together
            "delivery.max_messages_per_connection", "1000"));
        senders = Executors.newFixedThreadPool(threads);
        final InetSocketAddress smtp = E2e.smtp(relay);
        final List<Future<?>> done = new ArrayList<>();
        for (int t = 0; t < threads; t++)
        {
            final int thread = t;
            done.add(senders.submit(() ->
            {
                try (BlockingSmtpClient client = new BlockingSmtpClient(smtp))
                {
                    for (int i = 0; i < perThread; i++)
                    {
                        final String id = "pool-" + thread + "-" + i;
                        client.send(SENDER, List.of("r" + (i % 7) + "@example.test"),
                            E2e.message(SENDER, "r@example.test", id));
                    }
                }
                return null;
            }));
        }
        for (final Future<?> future : done)
        {
            future.get(40, TimeUnit.SECONDS);
        }
        final List<TestSmtpSink.Received> got = sink.awaitMessages(total, Duration.ofSeconds(30));
        Await.until("queue empty", Duration.ofSeconds(10), () -> relay.queuedMessages() == 0,
            () -> "queued " + relay.queuedMessages());

        final Set<String> ids = new HashSet<>();
        for (final TestSmtpSink.Received message : got)
        {
            ids.add(E2e.messageId(message.content()));
        }
        assertEquals(total, got.size(), "no duplicates");
        assertEquals(total, ids.size(), "every message once");
        assertEquals(total, relay.metrics().messagesDelivered());

        final Map<Integer, Integer> perConnection = sink.transactionsPerConnection();
        final double average = perConnection.values().stream().mapToInt(Integer::intValue).average().orElse(0);
        System.out.printf("pool: %d messages over %d connections (max %d at once), %.1f messages per connection%n",
            total, perConnection.size(), sink.maxConcurrentConnections(), average);
        assertTrue(sink.maxConcurrentConnections() <= 4, "max concurrent " + sink.maxConcurrentConnections());
        assertTrue(average > 10, "messages per connection " + average + ": " + perConnection);
    }

    @Test
    @Timeout(60)
    void spoolShrinksBackAfterDelivery() throws Exception
    {
        final int total = 200;
        final int batches = 4;
        sink = TestSmtpSink.start();
        relay = E2e.start(E2e.config(spool,
            "delivery.routes", "*=127.0.0.1:" + sink.port(),
            "queue.roll_cycle", "secondly"));
        // the destination is down while the mail comes in, so every cycle stays live and the spool grows
        sink.stop();
        int maxFiles = 0;
        long maxBytes = 0;
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            for (int b = 0; b < batches; b++)
            {
                // each batch in its own one-second cycle, so the spool grows several files
                final int cycle = relay.spool().currentCycle();
                Await.until("the next spool cycle", Duration.ofSeconds(3),
                    () -> relay.spool().currentCycle() > cycle, () -> "cycle " + cycle);
                for (int i = 0; i < total / batches; i++)
                {
                    final String id = "disk-" + b + "-" + i;
                    client.send(SENDER, List.of("r@example.test"), E2e.message(SENDER, "r@example.test", id));
                }
                final List<Path> files = E2e.cycleFiles(spool);
                maxFiles = Math.max(maxFiles, files.size());
                maxBytes = Math.max(maxBytes, E2e.bytes(files));
            }
        }
        final List<Path> beforeDelivery = E2e.cycleFiles(spool);
        System.out.printf("disk: %d messages spooled, destination down: %d cycle files (%d bytes)%n", total,
            beforeDelivery.size(), E2e.bytes(beforeDelivery));
        // undelivered mail grows the spool over several cycles; with one-second cycles delivery may already have
        // moved some deferred messages forward (and deleted their old cycle), so "several", not "one per batch"
        assertTrue(maxFiles >= 2, "undelivered mail keeps its cycles: max " + maxFiles + ", now " + list(spool));
        sink.restart();
        relay.flush();
        sink.awaitMessages(total, Duration.ofSeconds(20));
        Await.until("queue empty", Duration.ofSeconds(10), () -> relay.queuedMessages() == 0,
            () -> "queued " + relay.queuedMessages());
        final List<Path> atDelivery = E2e.cycleFiles(spool);
        maxFiles = Math.max(maxFiles, atDelivery.size());
        maxBytes = Math.max(maxBytes, E2e.bytes(atDelivery));
        final long deliveredNs = System.nanoTime();

        Await.until("the spool to shrink to at most 2 cycle files", Duration.ofSeconds(5),
            () -> count(spool) <= 2, () -> "files " + list(spool));
        final List<Path> after = E2e.cycleFiles(spool);
        System.out.printf("disk: %d messages; cycle files before %d (%d bytes), after %d (%d bytes), " +
                "%d ms after the last delivery%n", total, maxFiles, maxBytes, after.size(), E2e.bytes(after),
            (System.nanoTime() - deliveredNs) / 1_000_000);
        assertEquals(total, sink.messageCount());
    }

    private static int count(final Path dir)
    {
        try
        {
            return E2e.cycleFiles(dir).size();
        }
        catch (final java.io.IOException ex)
        {
            throw new AssertionError(ex);
        }
    }

    private static List<String> list(final Path dir)
    {
        try
        {
            final List<String> names = new ArrayList<>();
            for (final Path file : E2e.cycleFiles(dir))
            {
                names.add(file.getFileName().toString());
            }
            return names;
        }
        catch (final java.io.IOException ex)
        {
            throw new AssertionError(ex);
        }
    }
}
