package dev.relay.metrics;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Collections;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

@Timeout(30)
class MetricsServerTest
{
    private static final InetSocketAddress ANY_LOOPBACK_PORT =
        new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);

    private final RelayMetrics metrics = new RelayMetrics();
    private final AtomicLong queueMessages = new AtomicLong();
    private final AtomicLong openConnections = new AtomicLong();
    private final AtomicBoolean healthy = new AtomicBoolean(true);
    private final AtomicInteger flushes = new AtomicInteger();
    private final AtomicReference<String> flushThread = new AtomicReference<>();
    private final AtomicInteger reloads = new AtomicInteger();
    private final AtomicReference<MetricsServer.AdminAnswer> reloadAnswer =
        new AtomicReference<>(new MetricsServer.AdminAnswer(true, "reloaded\napplied: relay.domains=a.test\n"));
    private final HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private MetricsServer server;

    @AfterEach
    void closeServer()
    {
        if (server != null)
        {
            server.close();
        }
    }

    private MetricsServer start(final InetSocketAddress listen) throws IOException
    {
        metrics.queueState(() -> queueMessages.get() - 5, () -> 5, () -> 42);
        server = MetricsServer.start(listen, metrics, openConnections::get, healthy::get,
            () ->
            {
                flushThread.set(Thread.currentThread().getName());
                flushes.incrementAndGet();
            },
            () ->
            {
                reloads.incrementAndGet();
                return reloadAnswer.get();
            });
        return server;
    }

    private HttpResponse<String> send(final String method, final String path) throws Exception
    {
        final InetSocketAddress address = server.address();
        final URI uri = URI.create("http://" + address.getAddress().getHostAddress() + ":" + address.getPort() + path);
        final HttpRequest request = HttpRequest.newBuilder(uri)
            .timeout(Duration.ofSeconds(10))
            .method(method, HttpRequest.BodyPublishers.noBody())
            .build();

        return client.send(request, HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void addressHasTheResolvedPort() throws IOException
    {
        final InetSocketAddress address = start(ANY_LOOPBACK_PORT).address();

        assertNotEquals(0, address.getPort());
        assertTrue(address.getAddress().isLoopbackAddress());
    }

    @Test
    void serverThreadsAreDaemons() throws Exception
    {
        start(ANY_LOOPBACK_PORT);
        assertEquals(200, send("GET", "/health").statusCode());

        int seen = 0;
        for (final Thread thread : Thread.getAllStackTraces().keySet())
        {
            final String name = thread.getName();
            if (name.equals(MetricsServer.THREAD_NAME) || name.equals("HTTP-Dispatcher"))
            {
                assertTrue(thread.isDaemon(), name);
                seen++;
            }
        }
        assertEquals(2, seen);
    }

    @Test
    void metricsReportCountersGaugesAndLatencySummaries() throws Exception
    {
        start(ANY_LOOPBACK_PORT);
        metrics.onMessageAccepted(2_000_000);
        metrics.onMessageAccepted(4_000_000);
        metrics.onMessageAccepted(6_000_000);
        metrics.onMessageRejected();
        metrics.onDelivered(1_000_000_000);
        metrics.onDeferred();
        metrics.onDeferred();
        metrics.onBounced();
        metrics.onConnectionClosed(false);
        metrics.onConnectionClosed(true);
        metrics.onConnectionOut();
        metrics.onConnectionOut();
        metrics.onConnectionOut();
        metrics.onTlsOut(true);
        metrics.onTlsOut(true);
        metrics.onTlsOut(false);
        metrics.spoolDamageCounters(() -> 4, () -> 1);
        metrics.diskFullCounters(() -> 6, () -> 2);
        metrics.spoolRoom(() -> 123_456, () -> 1_000_000, () -> 5_000_000_000L, () -> 268_435_456);
        metrics.destinations(() -> 42, () -> 7, () -> 100, () -> 900, () -> 300, () -> 3, () -> 16);
        queueMessages.set(17);
        openConnections.set(5);

        final HttpResponse<String> response = send("GET", "/metrics");

        assertEquals(200, response.statusCode());
        assertEquals("text/plain; version=0.0.4; charset=utf-8",
            response.headers().firstValue("Content-Type").orElse(""));
        final String body = response.body();
        assertSample(body, "relay_messages_received_total", 3);
        assertSample(body, "relay_messages_rejected_total", 1);
        assertSample(body, "relay_messages_delivered_total", 1);
        assertSample(body, "relay_messages_deferred_total", 2);
        assertSample(body, "relay_messages_bounced_total", 1);
        assertSample(body, "relay_connections_in_total", 2);
        assertSample(body, "relay_connections_in_tls_total", 1);
        assertSample(body, "relay_connections_out_total", 3);
        assertSample(body, "relay_connections_out_tls_total", 2);
        assertSample(body, "relay_tls_out_failures_total", 1);
        assertSample(body, "relay_spool_damaged_records_total", 4);
        assertSample(body, "relay_spool_damaged_messages_total", 1);
        assertSample(body, "relay_spool_allocation_failures_total", 6);
        assertSample(body, "relay_journal_skipped_records_total", 2);
        assertSample(body, "relay_queue_messages{state=\"active\"}", 12);
        assertSample(body, "relay_queue_messages{state=\"deferred\"}", 5);
        assertSample(body, "relay_queue_oldest_message_age_seconds", 42);
        assertSample(body, "relay_connections_in_open", 5);
        assertSample(body, "relay_queue_bytes", 123_456);
        assertSample(body, "relay_queue_max_bytes", 1_000_000);
        assertSample(body, "relay_spool_free_bytes", 5_000_000_000L);
        assertSample(body, "relay_spool_min_free_bytes", 268_435_456);
        assertSample(body, "relay_delivery_hops", 42);
        assertSample(body, "relay_delivery_hops_reclaimed_total", 7);
        assertSample(body, "relay_dns_lookups_total", 100);
        assertSample(body, "relay_dns_cache_hits_total", 900);
        assertSample(body, "relay_dns_queries_total", 300);
        assertSample(body, "relay_dns_queries_in_flight", 3);
        assertTrue(body.contains("# TYPE relay_messages_received_total counter\n"), body);
        assertTrue(body.contains("# TYPE relay_queue_messages gauge\n"), body);
        assertTrue(body.contains("# TYPE relay_accept_latency_seconds summary\n"), body);
        assertTrue(body.contains("# TYPE relay_delivery_latency_seconds summary\n"), body);

        assertSample(body, "relay_accept_latency_seconds_count", 3);
        assertSample(body, "relay_accept_latency_seconds_sum", 0.012, 1e-9);
        assertSample(body, "relay_accept_latency_seconds{quantile=\"0.5\"}", 0.004, 0.004 * 0.002);
        assertSample(body, "relay_accept_latency_seconds{quantile=\"0.9\"}", 0.006, 0.006 * 0.002);
        assertSample(body, "relay_accept_latency_seconds{quantile=\"0.99\"}", 0.006, 0.006 * 0.002);
        assertSample(body, "relay_accept_latency_seconds{quantile=\"0.999\"}", 0.006, 0.006 * 0.002);
        assertSample(body, "relay_delivery_latency_seconds_count", 1);
        assertSample(body, "relay_delivery_latency_seconds_sum", 1.0, 1e-9);
        assertSample(body, "relay_delivery_latency_seconds{quantile=\"0.99\"}", 1.0, 0.002);
    }

    @Test
    void latenciesAccumulateAcrossScrapesAndEmptySummariesReportNaN() throws Exception
    {
        start(ANY_LOOPBACK_PORT);
        final String before = send("GET", "/metrics").body();
        assertSample(before, "relay_delivery_latency_seconds_count", 0);
        assertTrue(before.contains("relay_delivery_latency_seconds{quantile=\"0.5\"} NaN\n"), before);

        metrics.onDelivered(3_000_000);
        send("GET", "/metrics");
        metrics.onDelivered(5_000_000);
        final String after = send("GET", "/metrics").body();

        assertSample(after, "relay_delivery_latency_seconds_count", 2);
        assertSample(after, "relay_delivery_latency_seconds_sum", 0.008, 1e-9);
        assertSample(after, "relay_delivery_latency_seconds{quantile=\"0.999\"}", 0.005, 0.005 * 0.002);
    }

    @Test
    void healthFollowsTheSupplier() throws Exception
    {
        start(ANY_LOOPBACK_PORT);

        final HttpResponse<String> up = send("GET", "/health");
        assertEquals(200, up.statusCode());
        assertEquals("ok\n", up.body());

        healthy.set(false);
        final HttpResponse<String> down = send("GET", "/health");
        assertEquals(503, down.statusCode());
        assertEquals("unavailable\n", down.body());
    }

    @Test
    void flushRunsTheCommandOnTheMetricsThread() throws Exception
    {
        start(ANY_LOOPBACK_PORT);

        final HttpResponse<String> response = send("POST", "/admin/flush");

        assertEquals(200, response.statusCode());
        assertEquals("flushed\n", response.body());
        assertEquals(1, flushes.get());
        assertEquals(MetricsServer.THREAD_NAME, flushThread.get());
    }

    @Test
    void reloadAnswers200WhenTakenAnd422WithTheErrorsWhenRefused() throws Exception
    {
        start(ANY_LOOPBACK_PORT);
        final HttpResponse<String> taken = send("POST", "/admin/reload");
        assertEquals(200, taken.statusCode());
        assertEquals("reloaded\napplied: relay.domains=a.test\n", taken.body());

        reloadAnswer.set(new MetricsServer.AdminAnswer(false, "reload refused; the running configuration stays:\n" +
            "relay.properties:3: smtp.max_errors: \"abc\" is not a positive integer\n"));
        final HttpResponse<String> refused = send("POST", "/admin/reload");
        assertEquals(422, refused.statusCode());
        assertTrue(refused.body().contains("smtp.max_errors: \"abc\""), refused.body());

        assertEquals(405, send("GET", "/admin/reload").statusCode());
        assertEquals(2, reloads.get());
    }

    @Test
    void wrongMethodIs405AndDoesNotFlush() throws Exception
    {
        start(ANY_LOOPBACK_PORT);

        final HttpResponse<String> getFlush = send("GET", "/admin/flush");
        assertEquals(405, getFlush.statusCode());
        assertEquals("POST", getFlush.headers().firstValue("Allow").orElse(""));
        assertEquals(0, flushes.get());

        final HttpResponse<String> postMetrics = send("POST", "/metrics");
        assertEquals(405, postMetrics.statusCode());
        assertEquals("GET", postMetrics.headers().firstValue("Allow").orElse(""));
    }

    @Test
    void unknownPathsAre404() throws Exception
    {
        start(ANY_LOOPBACK_PORT);

        assertEquals(404, send("GET", "/").statusCode());
        assertEquals(404, send("GET", "/nope").statusCode());
        assertEquals(404, send("GET", "/metricsx").statusCode());
        assertEquals(404, send("GET", "/metrics/x").statusCode());
        assertEquals(404, send("POST", "/admin/flushx").statusCode());
        assertEquals(0, flushes.get());
    }

    @Test
    void adminIsForbiddenFromNonLoopbackPeers() throws Exception
    {
        final InetAddress external = firstNonLoopbackIpv4();
        assumeTrue(external != null, "no non-loopback IPv4 address on this host");
        start(new InetSocketAddress(external, 0));

        final HttpResponse<String> flush = send("POST", "/admin/flush");
        assertEquals(403, flush.statusCode());
        assertEquals(0, flushes.get());
        assertEquals(403, send("POST", "/admin/other").statusCode());
        assertEquals(403, send("POST", "/admin/reload").statusCode());
        assertEquals(0, reloads.get());
        assertEquals(200, send("GET", "/health").statusCode());
        assertEquals(200, send("GET", "/metrics").statusCode());
    }

    @Test
    void withATokenEveryAdminRequestNeedsItAndTheRestDoesNot() throws Exception
    {
        final AtomicReference<String> ran = new AtomicReference<>();
        startWithToken(ANY_LOOPBACK_PORT, "s3cret-Token_1", ran);

        assertEquals(401, send("POST", "/admin/flush").statusCode());
        final HttpResponse<String> noToken = sendWith("/admin/queue/hold", null, "all=yes");
        assertEquals(401, noToken.statusCode());
        assertTrue(noToken.headers().firstValue("WWW-Authenticate").orElse("").startsWith("Bearer"));
        assertEquals(401, sendWith("/admin/queue/hold", "Bearer s3cret-Token_2", "all=yes").statusCode());
        assertEquals(401, sendWith("/admin/queue/hold", "Bearer s3cret-Token_1x", "all=yes").statusCode());
        assertEquals(401, sendWith("/admin/queue/hold", "Basic s3cret-Token_1", "all=yes").statusCode());
        assertEquals(0, flushes.get());
        assertEquals(null, ran.get(), "nothing ran without the token");

        final HttpResponse<String> held = sendWith("/admin/queue/hold", "Bearer s3cret-Token_1", "all=yes");
        assertEquals(200, held.statusCode());
        assertEquals("Placed on hold: 0 messages\n", held.body());
        assertEquals("hold all=yes", ran.get());
        assertEquals(200, sendWith("/admin/flush", "bearer s3cret-Token_1", "").statusCode());
        assertEquals(1, flushes.get());
        assertEquals(200, send("GET", "/metrics").statusCode(), "scrapes need no token");
        assertEquals(200, send("GET", "/health").statusCode());
    }

    @Test
    void aNonLoopbackPeerIsRefusedEvenWithTheToken() throws Exception
    {
        final InetAddress external = firstNonLoopbackIpv4();
        assumeTrue(external != null, "no non-loopback IPv4 address on this host");
        final AtomicReference<String> ran = new AtomicReference<>();
        startWithToken(new InetSocketAddress(external, 0), "t0ken", ran);

        assertEquals(403, sendWith("/admin/queue/delete", "Bearer t0ken", "all=yes").statusCode());
        assertEquals(403, sendWith("/admin/flush", "Bearer t0ken", "").statusCode());
        assertEquals(null, ran.get());
        assertEquals(0, flushes.get());
    }

    private void startWithToken(final InetSocketAddress listen, final String token,
        final AtomicReference<String> ran) throws IOException
    {
        server = MetricsServer.start(listen, metrics, openConnections::get, healthy::get, flushes::incrementAndGet,
            token, (verb, body) ->
            {
                ran.set(verb + " " + body);
                return new MetricsServer.AdminReply(200, "Placed on hold: 0 messages");
            });
    }

    private HttpResponse<String> sendWith(final String path, final String authorization, final String body)
        throws Exception
    {
        final InetSocketAddress address = server.address();
        final URI uri = URI.create("http://" + address.getAddress().getHostAddress() + ":" + address.getPort() + path);
        final HttpRequest.Builder request = HttpRequest.newBuilder(uri)
            .timeout(Duration.ofSeconds(10))
            .POST(HttpRequest.BodyPublishers.ofString(body));
        if (authorization != null)
        {
            request.header("Authorization", authorization);
        }
        return client.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void loopbackCheck()
    {
        assertTrue(MetricsServer.isLoopback(new InetSocketAddress("127.0.0.1", 1)));
        assertTrue(MetricsServer.isLoopback(new InetSocketAddress("127.1.2.3", 1)));
        assertTrue(MetricsServer.isLoopback(new InetSocketAddress("::1", 1)));
        assertFalse(MetricsServer.isLoopback(new InetSocketAddress("10.0.0.1", 1)));
        assertFalse(MetricsServer.isLoopback(new InetSocketAddress("::ffff:10.0.0.1", 1)));
        assertFalse(MetricsServer.isLoopback(InetSocketAddress.createUnresolved("localhost", 1)));
        assertFalse(MetricsServer.isLoopback(null));
    }

    @Test
    void closeFreesThePortAndStopsTheThread() throws Exception
    {
        start(ANY_LOOPBACK_PORT);
        final InetSocketAddress address = server.address();
        assertEquals(200, send("GET", "/health").statusCode());

        server.close();
        server.close();
        server = null;

        try (ServerSocket socket = new ServerSocket())
        {
            socket.bind(address);
            assertEquals(address.getPort(), socket.getLocalPort());
        }
        // a pool reports termination just before its worker thread has finished running: allow it a moment
        final long deadline = System.nanoTime() + 5_000_000_000L;
        while ((threadAlive(MetricsServer.THREAD_NAME) || threadAlive("HTTP-Dispatcher")) && System.nanoTime() < deadline)
        {
            Thread.sleep(10);
        }
        assertFalse(threadAlive(MetricsServer.THREAD_NAME));
        assertFalse(threadAlive("HTTP-Dispatcher"));
    }

    private static boolean threadAlive(final String name)
    {
        return Thread.getAllStackTraces().keySet().stream().anyMatch((t) -> t.isAlive() && name.equals(t.getName()));
    }

    private static InetAddress firstNonLoopbackIpv4() throws IOException
    {
        for (final NetworkInterface nif : Collections.list(NetworkInterface.getNetworkInterfaces()))
        {
            if (!nif.isUp() || nif.isLoopback())
            {
                continue;
            }
            for (final InetAddress address : Collections.list(nif.getInetAddresses()))
            {
                if (address instanceof Inet4Address && !address.isLoopbackAddress())
                {
                    return address;
                }
            }
        }
        return null;
    }

    private static void assertSample(final String body, final String series, final double expected)
    {
        assertSample(body, series, expected, 0.0);
    }

    private static void assertSample(final String body, final String series, final double expected, final double delta)
    {
        final String prefix = series + " ";
        for (final String line : body.split("\n"))
        {
            if (line.startsWith(prefix))
            {
                assertEquals(expected, Double.parseDouble(line.substring(prefix.length()).trim()), delta, line);
                return;
            }
        }
        throw new AssertionError("no sample " + series + " in:\n" + body);
    }
}
