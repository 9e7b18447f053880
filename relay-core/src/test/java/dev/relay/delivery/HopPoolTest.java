package dev.relay.delivery;

import dev.relay.Relay;
import dev.relay.config.RelayConfig;
import dev.relay.config.TlsLevel;
import dev.relay.delivery.client.ClientTlsContext;
import dev.relay.metrics.RelayMetrics;
import dev.relay.net.BufferPool;
import dev.relay.net.ConnectionLimiter;
import dev.relay.net.SelectorLoop;
import dev.relay.net.ServerTlsContext;
import dev.relay.spool.SpooledMessage;
import dev.relay.testing.TestCertificates;
import dev.relay.testing.TestCertificates.KeyType;
import dev.relay.testing.TestSmtpSink;
import io.netty.handler.ssl.OpenSsl;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hop pools of one {@link DeliveryLoop} on a real {@link SelectorLoop} thread, over loopback to
 * {@link TestSmtpSink}s: jobs go in through the loop's {@link DeliveryLoopProxy} as the queue manager sends them,
 * and results come back through a {@link QueueManagerProxy}, as they do in the relay. Limits per hop, connection
 * reuse and its limit, back-off of a failing address, the one probe when a back-off ends, and idle connections
 * closed with QUIT. TLS levels against a sink that offers STARTTLS with a test certificate: may's fallback to
 * plaintext and its end, encrypt without STARTTLS, verify's checks, and sessions resumed across pooled connections,
 * on the JDK's engine and BoringSSL's. The loop's share of {@code delivery.max_connections} over all its hops (idle
 * connections closed for a hop that waits), and pools of idle hops dropped.
 */
@Timeout(60)
class HopPoolTest
{
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final String SENDER = "alice@client.test";

    @TempDir
    Path dir;

    private TestSpool spool;
    private TestSmtpSink sink;
    private SelectorLoop selectorLoop;
    private DeliveryLoop loop;
    private Thread thread;
    private HopResolver resolver;
    private final QueueManagerProxy queueManager = QueueManagerProxy.create();
    private DeliveryLoopProxy jobs;
    private final List<DeliveryJob> done = new ArrayList<>();
    private final RelayMetrics metrics = new RelayMetrics();
    private ServerTlsContext.Provider provider = ServerTlsContext.Provider.JDK;
    private long plaintextFallbackMs = Hop.PLAINTEXT_FALLBACK_MS;

    @AfterEach
    void stopAll() throws Exception
    {
        try
        {
            if (selectorLoop != null)
            {
                selectorLoop.stop();
                thread.join(10_000);
                assertTrue(!thread.isAlive(), "the loop thread stopped");
                resolver.close();
            }
        }
        finally
        {
            if (sink != null)
            {
                sink.close();
            }
            if (spool != null)
            {
                spool.close();
            }
        }
    }

    @Test
    void connectionsPerHopStayWithinTheLimit() throws Exception
    {
        sink = TestSmtpSink.start().replyDelay(Duration.ofMillis(100));
        start("delivery.max_connections_per_hop", "2");
        for (int i = 0; i < 6; i++)
        {
            offer(job("bob" + i + "@dest.test"));
        }
        awaitResults(6);
        assertAll(DeliveryJob.DELIVERED);
        assertEquals(2, sink.maxConcurrentConnections(), "two connections at once, never more");
    }

    @Test
    void aConnectionIsReusedUpToItsTransactionLimit() throws Exception
    {
        sink = TestSmtpSink.start();
        start("delivery.max_connections_per_hop", "1", "delivery.max_messages_per_connection", "2");
        for (int i = 0; i < 5; i++)
        {
            offer(job("bob" + i + "@dest.test"));
        }
        awaitResults(5);
        assertAll(DeliveryJob.DELIVERED);
        assertEquals(3, sink.connectionsAccepted(), "five transactions, two per connection: " + sink.commands());
        await("the used-up connections closed", () -> sink.activeConnections() <= 1, sink::commands);
    }

    @Test
    void aFailingAddressIsBackedOffAndItsMailDeferredWithoutAnotherConnect() throws Exception
    {
        sink = TestSmtpSink.start().greeting("554 5.7.1 go away");
        start();
        offer(job("bob@dest.test"));
        awaitResults(1);
        assertEquals(DeliveryJob.DEFERRED, done.get(0).outcome(0));
        assertEquals("4.4.1", done.get(0).statusCode(0));
        assertTrue(done.get(0).reply(0).contains("greeting refused: 554 5.7.1 go away"), done.get(0).reply(0));

        offer(job("carol@dest.test"));
        awaitResults(2);
        assertEquals(DeliveryJob.DEFERRED, done.get(1).outcome(0));
        assertTrue(done.get(1).reply(0).startsWith("delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]"),
            done.get(1).reply(0));
        assertEquals(1, sink.connectionsAccepted(), "no connection while the address is backed off");
    }

    @Test
    void whenTheBackOffEndsOneProbeGoesFirstThenThePoolOpensUp() throws Exception
    {
        sink = TestSmtpSink.start().greeting("421 4.3.2 not now");
        start("delivery.max_connections_per_hop", "3");
        offer(job("bob@dest.test"));
        awaitResults(1);
        assertEquals(DeliveryJob.DEFERRED, done.get(0).outcome(0));

        sink.greeting("220 sink.test ESMTP back again").replyDelay(Duration.ofMillis(200));
        Thread.sleep(Hop.BACKOFF_MIN_MS + 200); // the first back-off is one second: let it pass
        for (int i = 0; i < 3; i++)
        {
            offer(job("carol" + i + "@dest.test"));
        }
        awaitResults(4);
        for (int i = 1; i < 4; i++)
        {
            assertEquals(DeliveryJob.DELIVERED, done.get(i).outcome(0), done.get(i).reply(0));
        }
        // the probe is alone until its first transaction ends; then one more connection takes the last job
        assertTrue(sink.maxConcurrentConnections() <= 2, "max concurrent " + sink.maxConcurrentConnections());
        assertTrue(sink.connectionsAccepted() <= 3, "one failed, one probe, at most one more");
    }

    @Test
    void aRefusedConnectDefersAtOnce() throws Exception
    {
        final int closedPort;
        try (ServerSocket socket = new ServerSocket(0))
        {
            closedPort = socket.getLocalPort();
        }
        sink = TestSmtpSink.start();
        start();
        offer(job("bob@dest.test", NextHop.direct("127.0.0.1", closedPort, TlsLevel.MAY)));
        awaitResults(1);
        assertEquals(DeliveryJob.DEFERRED, done.get(0).outcome(0));
        assertEquals("none", done.get(0).relay());
        assertTrue(done.get(0).reply(0).startsWith("connect to 127.0.0.1[127.0.0.1]:" + closedPort),
            done.get(0).reply(0));
    }

    @Test
    void aFailedHandshakeAtMayFallsBackToPlaintextForAWhileThenTlsIsTriedAgain() throws Exception
    {
        sink = TestSmtpSink.start().tls(TestCertificates.get().serverContext(KeyType.EC))
            .fault(TestSmtpSink.Step.STARTTLS, TestSmtpSink.Fault.TLS_BROKEN);
        plaintextFallbackMs = 2_000;
        start("delivery.max_messages_per_connection", "1");
        final long startedMs = System.currentTimeMillis();
        final DeliveryJob first = deliver(job("bob@dest.test"));
        assertEquals(DeliveryJob.DELIVERED, first.outcome(0), first.reply(0));
        assertNull(first.tls(), "delivered in plaintext");
        final Map<Integer, List<String>> commands = sink.commands();
        assertEquals(List.of(1, 2), List.copyOf(commands.keySet()), commands.toString());
        assertTrue(commands.get(1).contains("STARTTLS"), commands.toString());
        assertFalse(commands.get(2).contains("STARTTLS"), "the next connection at once, without TLS: " + commands);
        assertEquals(1, metrics.tlsOutFailures());

        // while the fallback lasts, the address gets plaintext, and it was never backed off
        final DeliveryJob second = deliver(job("carol@dest.test"));
        assertEquals(DeliveryJob.DELIVERED, second.outcome(0), second.reply(0));
        assertFalse(sink.commands().get(3).contains("STARTTLS"), sink.commands().toString());

        // the peer is mended and the fallback runs out: TLS again
        sink.fault(TestSmtpSink.Step.STARTTLS, TestSmtpSink.Fault.NONE);
        final long waitMs = startedMs + plaintextFallbackMs + 100 - System.currentTimeMillis();
        if (waitMs > 0)
        {
            Thread.sleep(waitMs); // the fallback is an interval of time: let it pass
        }
        final DeliveryJob third = deliver(job("dave@dest.test"));
        assertEquals(DeliveryJob.DELIVERED, third.outcome(0), third.reply(0));
        assertEquals("TLSv1.3", third.tls());
        assertEquals(Map.of(4, "TLSv1.3"), sink.tlsProtocols());
        assertEquals(1, metrics.connectionsOutTls());
    }

    @Test
    void encryptDefersWithoutStartTlsAndVerifyWithoutTheRightCertificate() throws Exception
    {
        sink = TestSmtpSink.start();
        start("delivery.max_messages_per_connection", "1");
        final DeliveryJob plain = deliver(job("bob@dest.test", TlsLevel.ENCRYPT));
        assertEquals(DeliveryJob.DEFERRED, plain.outcome(0));
        assertEquals("4.7.4", plain.statusCode(0));
        assertTrue(plain.reply(0).endsWith("TLS is required, but was not offered by host 127.0.0.1"),
            plain.reply(0));
        assertFalse(sink.commands().get(1).contains("MAIL FROM:<" + SENDER + ">"), sink.commands().toString());
        sink.close();

        final TestCertificates certificates = TestCertificates.get();
        sink = TestSmtpSink.start().tls(certificates.serverContext(KeyType.EC, certificates.wrongHost(KeyType.EC)));
        final DeliveryJob wrongHost = deliver(job("carol@dest.test", TlsLevel.VERIFY));
        assertEquals(DeliveryJob.DEFERRED, wrongHost.outcome(0));
        assertEquals("4.7.5", wrongHost.statusCode(0));
        assertTrue(wrongHost.reply(0).contains("Cannot start TLS: handshake failure (server certificate not " +
            "verified"), wrongHost.reply(0));
        sink.close();

        sink = TestSmtpSink.start().tls(certificates.serverContext(KeyType.EC, certificates.expired(KeyType.EC)));
        final DeliveryJob expired = deliver(job("dave@dest.test", TlsLevel.VERIFY));
        assertEquals("4.7.5", expired.statusCode(0), expired.reply(0));
        final DeliveryJob encrypted = deliver(job("erin@dest.test", TlsLevel.ENCRYPT));
        assertEquals(DeliveryJob.DELIVERED, encrypted.outcome(0), "encrypt takes the expired certificate: " +
            encrypted.reply(0));
        assertEquals(2, metrics.tlsOutFailures());
        assertTrue(sink.messages().size() == 1 && !sink.tlsProtocols().isEmpty());
    }

    @Test
    void verifiedSessionsAreResumedAcrossPooledConnections() throws Exception
    {
        resumesSessions(ServerTlsContext.Provider.JDK);
    }

    @Test
    void boringSslResumesSessionsToo() throws Exception
    {
        Assumptions.assumeTrue(OpenSsl.isAvailable(), "BoringSSL does not load here");
        resumesSessions(ServerTlsContext.Provider.OPENSSL);
    }

    private void resumesSessions(final ServerTlsContext.Provider engines) throws Exception
    {
        final AtomicInteger fullHandshakes = new AtomicInteger();
        sink = TestSmtpSink.start().tls(TestCertificates.get().countingServerContext(KeyType.EC, fullHandshakes));
        provider = engines;
        start("delivery.max_messages_per_connection", "1");
        for (int i = 0; i < 3; i++)
        {
            final DeliveryJob job = deliver(job("bob" + i + "@dest.test", TlsLevel.VERIFY));
            assertEquals(DeliveryJob.DELIVERED, job.outcome(0), job.reply(0));
            assertEquals("TLSv1.3", job.tls());
        }
        assertEquals(3, sink.tlsProtocols().size(), sink.tlsProtocols().toString());
        assertEquals(3, sink.connectionsAccepted(), "a connection per message");
        assertEquals(1, fullHandshakes.get(), "the second and third connections resumed the first one's session");
        assertEquals(3, metrics.connectionsOutTls());
    }

    @Test
    void anIdleConnectionIsClosedWithQuitAfterTheIdleTimeout() throws Exception
    {
        sink = TestSmtpSink.start();
        start("delivery.idle_timeout", "1s");
        offer(job("bob@dest.test"));
        awaitResults(1);
        assertAll(DeliveryJob.DELIVERED);
        await("the idle connection closed", () -> sink.activeConnections() == 0, sink::commands);
        final List<String> lines = sink.commands().values().iterator().next();
        assertEquals("QUIT", lines.get(lines.size() - 1), lines.toString());
        assertEquals(1, sink.connectionsAccepted());
    }

    @Test
    void theLoopsShareOfMaxConnectionsBoundsAllItsHopsAndTheirMailWaitsInsteadOfBeingDeferred() throws Exception
    {
        sink = TestSmtpSink.start().replyDelay(Duration.ofMillis(50));
        start("delivery.io_threads", "1", "delivery.max_connections", "2", "delivery.max_connections_per_hop", "2");
        for (int i = 0; i < 12; i++)
        {
            offer(job("bob" + i + "@dest" + (i % 6) + ".test", hop(i % 6)));
        }
        awaitResults(12);
        assertAll(DeliveryJob.DELIVERED);
        // counted by the loop: the sink still counts a connection while it answers the QUIT of one already closed
        assertEquals(2, loop.peakOpenConnections(), "two at once, never more");
        assertTrue(sink.connectionsAccepted() >= 6, "every hop had its own connection: " + sink.connectionsAccepted());
    }

    @Test
    void anIdleConnectionIsClosedForAHopThatWaitsForOne() throws Exception
    {
        sink = TestSmtpSink.start();
        start("delivery.io_threads", "1", "delivery.max_connections", "1", "delivery.idle_timeout", "60s");
        offer(job("bob@first.test", hop(1)));
        awaitResults(1);
        await("the first hop's connection idle", () -> sink.activeConnections() == 1, sink::commands);

        final long startNs = System.nanoTime();
        offer(job("carol@second.test", hop(2)));
        awaitResults(2);
        final long waitedMs = (System.nanoTime() - startNs) / 1_000_000;

        assertAll(DeliveryJob.DELIVERED);
        assertTrue(waitedMs < 10_000, "the second hop waited " + waitedMs + " ms, not the idle timeout");
        assertEquals(2, sink.connectionsAccepted());
        final List<String> first = sink.commands().get(1);
        assertEquals("QUIT", first.get(first.size() - 1), "the idle connection said QUIT: " + first);
    }

    @Test
    void poolsOfHopsIdleForTheIdleTimeoutAreDropped() throws Exception
    {
        sink = TestSmtpSink.start();
        start("delivery.idle_timeout", "1s");
        for (int i = 0; i < 5; i++)
        {
            offer(job("bob@dest" + i + ".test", hop(i)));
        }
        awaitResults(5);
        assertAll(DeliveryJob.DELIVERED);
        assertEquals(5, loop.hopCount());

        await("the idle hops dropped", () -> loop.hopCount() == 0, () -> "hops " + loop.hopCount());
        assertEquals(5, loop.hopsReclaimed());
        assertEquals(0, sink.activeConnections(), "their connections closed first");

        // mail for a dropped hop makes a new pool
        offer(job("carol@dest0.test", hop(0)));
        awaitResults(6);
        assertAll(DeliveryJob.DELIVERED);
    }

    @Test
    void aBackedOffHopIsKeptUntilItsBackOffEnds() throws Exception
    {
        final int closedPort;
        try (ServerSocket socket = new ServerSocket(0))
        {
            closedPort = socket.getLocalPort();
        }
        sink = TestSmtpSink.start();
        start("delivery.idle_timeout", "1s");
        offer(job("bob@down.test", NextHop.direct("127.0.0.1", closedPort, TlsLevel.NONE)));
        awaitResults(1);
        assertEquals(DeliveryJob.DEFERRED, done.get(0).outcome(0));

        // one failure backs the address off for a second: the pool outlives the idle timeout by that much at most
        Thread.sleep(1_200);
        assertTrue(loop.hopCount() <= 1);
        await("the hop dropped once its back-off ended", () -> loop.hopCount() == 0, () -> "hops " + loop.hopCount());
    }

    private NextHop hop(final int index)
    {
        return new NextHop("dest" + index + ".test", "127.0.0.1", sink.port(), false, TlsLevel.NONE);
    }

    private void start(final String... keyValues) throws Exception
    {
        spool = TestSpool.open(dir.resolve("spool"));
        final Map<String, String> values = new LinkedHashMap<>();
        values.put("smtp.hostname", "relay.test");
        values.put("queue.dir", dir.resolve("spool").toString());
        values.put("delivery.timeout.connect", "2s");
        for (int i = 0; i + 1 < keyValues.length; i += 2)
        {
            values.put(keyValues[i], keyValues[i + 1]);
        }
        final RelayConfig config = RelayConfig.fromMap(values);
        selectorLoop = new SelectorLoop(0, List.of(), new BufferPool(Relay.DELIVERY_READ_BUFFER_BYTES, 16),
            new BufferPool(Relay.DELIVERY_WRITE_BUFFER_BYTES, 16), new ConnectionLimiter(100, 0, address -> false));
        resolver = new SystemHopResolver(MxHopResolver.create(config.dns()));
        jobs = new DeliveryLoopProxy(selectorLoop::wakeup);
        final ClientTlsContext tls = ClientTlsContext.load(TestCertificates.get().writeCa(dir), provider);
        loop = new DeliveryLoop(config.delivery(), selectorLoop, spool.spool(), resolver, jobs, queueManager, metrics,
            tls);
        loop.plaintextFallbackMs(plaintextFallbackMs);
        selectorLoop.addHook(loop);
        thread = new Thread(selectorLoop, "smtp-out-test");
        thread.start();
    }

    private DeliveryJob job(final String recipient)
    {
        return job(recipient, TlsLevel.MAY);
    }

    private DeliveryJob job(final String recipient, final TlsLevel tls)
    {
        return job(recipient, NextHop.direct("127.0.0.1", sink.port(), tls));
    }

    private DeliveryJob job(final String recipient, final NextHop nextHop)
    {
        final SpooledMessage message = spool.writeAndRead(SENDER, recipient);
        return new DeliveryJob(null, message, nextHop, new int[] {0});
    }

    private void offer(final DeliveryJob job)
    {
        jobs.send(job);
        assertEquals(0, jobs.backlogSize(), "the job queue took it");
    }

    /** Offers one job and waits for its result: each transaction on a connection of its own, one after another. */
    private DeliveryJob deliver(final DeliveryJob job)
    {
        offer(job);
        awaitResults(done.size() + 1);
        return done.get(done.size() - 1);
    }

    private void awaitResults(final int count)
    {
        await(count + " results", () ->
        {
            queueManager.drainResults(done::add, Integer.MAX_VALUE);
            return done.size() >= count;
        }, () -> "results " + done.size() + ", sink " + sink.commands());
    }

    private void assertAll(final byte outcome)
    {
        for (final DeliveryJob job : done)
        {
            assertEquals(outcome, job.outcome(0), job.reply(0));
        }
    }

    private static void await(final String what, final BooleanSupplier condition, final Supplier<?> state)
    {
        final long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() - deadline > 0)
            {
                throw new AssertionError("timed out waiting for " + what + "; " + state.get());
            }
            try
            {
                Thread.sleep(10);
            }
            catch (final InterruptedException ex)
            {
                Thread.currentThread().interrupt();
                throw new AssertionError(ex);
            }
        }
    }
}
