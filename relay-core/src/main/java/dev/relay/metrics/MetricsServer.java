package dev.relay.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.prometheus.metrics.config.EscapingScheme;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.SummaryWithCallback;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.Quantile;
import io.prometheus.metrics.model.snapshots.Quantiles;
import io.prometheus.metrics.model.snapshots.Unit;
import org.HdrHistogram.Histogram;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * The HTTP endpoint on {@code metrics.listen}: Prometheus scrapes, a health probe and the operator's commands.
 * <pre>
 *   GET  /metrics      200, Prometheus text format 0.0.4, read from {@link RelayMetrics} at scrape time
 *   GET  /health       200 "ok\n" while {@code healthy} is true, else 503 "unavailable\n"
 *   POST /admin/flush  200 "flushed\n" after running {@code flush}
 *   POST /admin/reload 200 and the report of {@code reload} when it was accepted, 422 and its errors when refused
 *   POST /admin/queue/VERB   an operator's queue command (hold, release, delete, requeue; the selection in the
 *                      body): the {@link QueueAdmin}'s reply, e.g. 200 "Placed on hold: 3 messages\n"
 *   anything else      404, or 405 with an Allow header for a known path and the wrong method
 * </pre>
 * Every {@code /admin/} request gets 403 unless its peer is a loopback address (whatever {@code metrics.listen}
 * binds), and, when {@code metrics.admin_token} is set, 401 unless it carries {@code Authorization: Bearer TOKEN}
 * (compared in constant time, RFC 6750 §2.1).
 * Quantiles are HdrHistogram's over all values since start (the highest value equivalent to the recorded one,
 * within 0.1%); {@code _sum} is exact.
 * <p>
 * Runs on the JDK's {@link HttpServer}: its dispatcher thread accepts and parses, and every handler runs on one
 * daemon thread, {@value #THREAD_NAME}, the single reader of the latency recorders that
 * {@link RelayMetrics#acceptLatency()} requires. Both threads are daemons. Nothing here touches a selector loop:
 * the suppliers must be safe to call from another thread (volatile reads, {@code LongAdder} sums) and {@code flush}
 * must only hand a command to its owning stage. Allocates per request; scrapes are rare.
 */
public final class MetricsServer implements AutoCloseable
{
    /** Name of the one thread that serves requests. */
    public static final String THREAD_NAME = "relay-metrics";

    static final String METRICS_PATH = "/metrics";
    static final String HEALTH_PATH = "/health";
    static final String FLUSH_PATH = "/admin/flush";
    static final String RELOAD_PATH = "/admin/reload";
    static final String ADMIN_PREFIX = "/admin/";
    static final String QUEUE_PREFIX = "/admin/queue/";

    private static final Logger LOG = LoggerFactory.getLogger(MetricsServer.class);
    private static final String TEXT_PLAIN = "text/plain; charset=utf-8";
    private static final Supplier<AdminAnswer> NO_RELOAD = () -> new AdminAnswer(false, "no configuration to reload\n");
    private static final double[] QUANTILES = { 0.5, 0.9, 0.99, 0.999 };
    private static final double NANOS_PER_SECOND = 1e9;
    /** Largest queue command body: about 60,000 queue ids. */
    private static final int MAX_ADMIN_BODY_BYTES = 1 << 20;

    private final HttpServer server;
    private final ExecutorService executor;
    private final PrometheusRegistry registry;
    private final PrometheusTextFormatWriter textFormat = PrometheusTextFormatWriter.create();
    private final BooleanSupplier healthy;
    private final Runnable flush;
    private final Supplier<AdminAnswer> reload;
    /** SHA-256 of {@code metrics.admin_token}; null when no token is asked for. */
    private final byte[] adminTokenHash;
    private final QueueAdmin queueAdmin;
    private boolean closed;

    /** Runs an operator's queue command; on the metrics thread, so it may wait for the stage that runs it. */
    @FunctionalInterface
    public interface QueueAdmin
    {
        /**
         * @param verb the last part of the path ({@code hold}, ...).
         * @param body the request body: the selection.
         */
        AdminReply run(String verb, String body) throws InterruptedException;
    }

    /** An admin command's HTTP status and text (one line). */
    public record AdminReply(int status, String text)
    {
    }

    /**
     * What a reload answers: whether it did what was asked, and text for the operator (one fact a line).
     */
    public record AdminAnswer(boolean done, String text)
    {
    }

    private MetricsServer(
        final HttpServer server,
        final ExecutorService executor,
        final PrometheusRegistry registry,
        final BooleanSupplier healthy,
        final Runnable flush,
        final String adminToken,
        final QueueAdmin queueAdmin,
        final Supplier<AdminAnswer> reload)
    {
        this.reload = reload;
        this.server = server;
        this.executor = executor;
        this.registry = registry;
        this.healthy = healthy;
        this.flush = flush;
        this.adminTokenHash = adminToken == null || adminToken.isEmpty() ? null : sha256(adminToken);
        this.queueAdmin = queueAdmin;
    }

    /** As the full {@code start}, without a token or queue commands (they answer 404). */
    public static MetricsServer start(
        final InetSocketAddress listen,
        final RelayMetrics metrics,
        final LongSupplier openConnections,
        final BooleanSupplier healthy,
        final Runnable flush) throws IOException
    {
        return start(listen, metrics, openConnections, healthy, flush, null, null, NO_RELOAD);
    }

    /** As the full {@code start}, without a token or queue commands, with {@code reload}. */
    public static MetricsServer start(
        final InetSocketAddress listen,
        final RelayMetrics metrics,
        final LongSupplier openConnections,
        final BooleanSupplier healthy,
        final Runnable flush,
        final Supplier<AdminAnswer> reload) throws IOException
    {
        return start(listen, metrics, openConnections, healthy, flush, null, null, reload);
    }

    /** As the full {@code start}, without a reload. */
    public static MetricsServer start(
        final InetSocketAddress listen,
        final RelayMetrics metrics,
        final LongSupplier openConnections,
        final BooleanSupplier healthy,
        final Runnable flush,
        final String adminToken,
        final QueueAdmin queueAdmin) throws IOException
    {
        return start(listen, metrics, openConnections, healthy, flush, adminToken, queueAdmin, NO_RELOAD);
    }

    /**
     * Binds {@code listen} and starts serving.
     *
     * @param listen          address to bind; port 0 picks a free port, see {@link #address()}.
     * @param metrics         counters and latency recorders, read at scrape time.
     * @param openConnections inbound connections open now, for {@code relay_connections_in_open}.
     * @param healthy         answers {@code /health}.
     * @param flush           makes deferred mail ready now; runs on the metrics thread, so it must not block.
     * @param adminToken      {@code metrics.admin_token}: the bearer token every /admin/ request needs; null or
     *                        empty for none.
     * @param queueAdmin      runs queue commands; null when there are none.
     * @param reload          behind {@code POST /admin/reload}: runs on the metrics thread and may take a moment (it
     *                        reads files); it must not touch a selector loop itself.
     * @return the running server; {@link #close()} it.
     * @throws IOException when the address cannot be bound.
     */
    public static MetricsServer start(
        final InetSocketAddress listen,
        final RelayMetrics metrics,
        final LongSupplier openConnections,
        final BooleanSupplier healthy,
        final Runnable flush,
        final String adminToken,
        final QueueAdmin queueAdmin,
        final Supplier<AdminAnswer> reload) throws IOException
    {
        final PrometheusRegistry registry = newRegistry(metrics, openConnections);
        final HttpServer server = HttpServer.create(listen, 0);
        final ExecutorService executor = Executors.newSingleThreadExecutor(
            (runnable) ->
            {
                final Thread thread = new Thread(runnable, THREAD_NAME);
                thread.setDaemon(true);
                return thread;
            });
        final MetricsServer metricsServer = new MetricsServer(server, executor, registry, healthy, flush, adminToken,
            queueAdmin, reload);
        server.createContext("/", metricsServer::handle);
        server.setExecutor(executor);
        try
        {
            // The dispatcher thread takes its daemon status from the thread that starts the server: start it on ours.
            executor.submit(server::start).get();
        }
        catch (final InterruptedException | ExecutionException ex)
        {
            metricsServer.close();
            if (ex instanceof InterruptedException)
            {
                Thread.currentThread().interrupt();
            }
            throw new IOException("metrics server on " + listen + " did not start", ex);
        }

        return metricsServer;
    }

    /**
     * @return the bound address, with the actual port when {@code listen} asked for port 0.
     */
    public InetSocketAddress address()
    {
        return server.getAddress();
    }

    /**
     * Stops accepting, closes open exchanges and the listening socket, and ends both threads; the port is free on
     * return. Idempotent.
     */
    public synchronized void close()
    {
        if (closed)
        {
            return;
        }
        closed = true;
        server.stop(0);
        executor.shutdownNow();
        try
        {
            if (!executor.awaitTermination(5, TimeUnit.SECONDS))
            {
                LOG.warn("{} thread did not stop within 5s", THREAD_NAME);
            }
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
    }

    static PrometheusRegistry newRegistry(final RelayMetrics metrics, final LongSupplier openConnections)
    {
        final PrometheusRegistry registry = new PrometheusRegistry();
        counter(registry, "relay_messages_received_total", "Messages accepted (250 after DATA).",
            metrics::messagesReceived);
        counter(registry, "relay_messages_rejected_total", "Messages rejected.", metrics::messagesRejected);
        counter(registry, "relay_messages_delivered_total", "Messages delivered (remote 250).",
            metrics::messagesDelivered);
        counter(registry, "relay_messages_deferred_total",
            "Deferrals: temporary delivery failures left for a later retry.", metrics::messagesDeferred);
        counter(registry, "relay_messages_bounced_total", "Messages bounced.", metrics::messagesBounced);
        counter(registry, "relay_connections_in_total", "Inbound connections closed.", metrics::connectionsClosed);
        counter(registry, "relay_connections_in_tls_total", "Inbound connections closed that had TLS.",
            metrics::connectionsInTls);
        counter(registry, "relay_connections_out_total", "Outbound connections opened.", metrics::connectionsOut);
        counter(registry, "relay_connections_out_tls_total", "Outbound connections on which STARTTLS succeeded.",
            metrics::connectionsOutTls);
        counter(registry, "relay_tls_out_failures_total",
            "Outbound TLS handshakes that failed (refused, broken, timed out, certificate not verified).",
            metrics::tlsOutFailures);
        counter(registry, "relay_tls_handshakes_total", "Inbound TLS handshakes completed.", metrics::tlsHandshakes);
        counter(registry, "relay_tls_failures_total", "Inbound TLS handshakes (or TLS sessions) that failed.",
            metrics::tlsFailures);
        counter(registry, "relay_auth_successes_total", "AUTH commands that succeeded.", metrics::authSuccesses);
        counter(registry, "relay_auth_failures_total", "AUTH attempts that failed (bad credentials).",
            metrics::authFailures);
        counter(registry, "relay_proxy_refused_total",
            "Connections on a PROXY protocol listener closed for their peer or their header " +
            "(not in smtp.proxy_networks, no header, a malformed or late one).", metrics::proxyRefused);
        counter(registry, "relay_spool_damaged_records_total",
            "Spool records skipped by delivery because their checksum failed.", metrics::spoolDamagedRecords);
        counter(registry, "relay_spool_damaged_messages_total",
            "Messages not delivered because some of their spool records were damaged.", metrics::spoolDamagedMessages);
        counter(registry, "relay_spool_allocation_failures_total",
            "Spool block allocations refused by a full file system (the message got 452).",
            metrics::spoolAllocationFailures);
        counter(registry, "relay_journal_skipped_records_total",
            "Delivery outcomes not journaled for want of disk space (a restart may redeliver).",
            metrics::journalSkippedRecords);
        GaugeWithCallback.builder()
            .name("relay_queue_messages")
            .help("Messages in the queue: active (in memory: being delivered or due soon), deferred (waiting on disk"
                + " for their next attempt), held (on hold by an operator until released).")
            .labelNames("state")
            .callback((callback) ->
            {
                callback.call(metrics.activeMessages(), "active");
                callback.call(metrics.deferredMessages(), "deferred");
                callback.call(metrics.heldMessages(), "held");
            })
            .register(registry);
        gauge(registry, "relay_queue_oldest_message_age_seconds",
            "Age of the oldest message in the queue (0 when it is empty).", metrics::oldestMessageAgeSeconds);
        gauge(registry, "relay_connections_in_open", "Inbound connections open.", openConnections);
        gauge(registry, "relay_queue_bytes", "Body bytes of the mail in the queue (bounded by queue.max_bytes).",
            metrics::queuedBytes);
        gauge(registry, "relay_queue_max_bytes", "queue.max_bytes in effect: above it new mail gets 452 4.3.1.",
            metrics::maxQueuedBytes);
        gauge(registry, "relay_spool_free_bytes", "Usable bytes on the spool's file system.",
            metrics::spoolFreeBytes);
        gauge(registry, "relay_spool_min_free_bytes",
            "queue.min_free_bytes: below it new mail gets 452 4.3.1 (0 = off).", metrics::spoolMinFreeBytes);
        gauge(registry, "relay_delivery_hops",
            "Next hops with a connection pool now (dropped after delivery.idle_timeout unused).",
            metrics::deliveryHops);
        counter(registry, "relay_delivery_hops_reclaimed_total", "Next-hop pools dropped after being unused.",
            metrics::deliveryHopsReclaimed);
        counter(registry, "relay_dns_lookups_total", "MX lookups sent to DNS (not answered from the cache).",
            metrics::dnsLookups);
        counter(registry, "relay_dns_cache_hits_total", "MX lookups answered from the cache.", metrics::dnsCacheHits);
        counter(registry, "relay_dns_queries_total", "DNS queries sent (MX, A, AAAA).", metrics::dnsQueries);
        gauge(registry, "relay_dns_queries_in_flight",
            "DNS queries outstanding now (at most delivery.dns.max_in_flight).", metrics::dnsQueriesInFlight);
        summary(registry, "relay_accept_latency_seconds", "End of DATA to 250 queued, since start.",
            metrics::acceptLatency, metrics::acceptLatencySumNs);
        summary(registry, "relay_delivery_latency_seconds", "Received to remote 250, since start.",
            metrics::deliveryLatency, metrics::deliveryLatencySumNs);

        return registry;
    }

    private static void counter(
        final PrometheusRegistry registry, final String name, final String help, final LongSupplier value)
    {
        CounterWithCallback.builder()
            .name(name)
            .help(help)
            .callback((callback) -> callback.call(value.getAsLong()))
            .register(registry);
    }

    private static void gauge(
        final PrometheusRegistry registry, final String name, final String help, final LongSupplier value)
    {
        GaugeWithCallback.builder()
            .name(name)
            .help(help)
            .callback((callback) -> callback.call(value.getAsLong()))
            .register(registry);
    }

    private static void summary(
        final PrometheusRegistry registry,
        final String name,
        final String help,
        final Supplier<Histogram> histogram,
        final LongSupplier sumNs)
    {
        SummaryWithCallback.builder()
            .name(name)
            .help(help)
            .unit(Unit.SECONDS)
            .callback((callback) ->
            {
                final Histogram h = histogram.get();
                callback.call(h.getTotalCount(), sumNs.getAsLong() / NANOS_PER_SECOND, quantiles(h));
            })
            .register(registry);
    }

    /**
     * Quantiles in seconds; NaN while nothing was recorded, as Prometheus clients report an empty summary.
     */
    static Quantiles quantiles(final Histogram histogram)
    {
        final Quantile[] quantiles = new Quantile[QUANTILES.length];
        final boolean empty = histogram.getTotalCount() == 0;
        for (int i = 0; i < QUANTILES.length; i++)
        {
            final double q = QUANTILES[i];
            final double seconds = empty ? Double.NaN : histogram.getValueAtPercentile(q * 100.0) / NANOS_PER_SECOND;
            quantiles[i] = new Quantile(q, seconds);
        }

        return Quantiles.of(quantiles);
    }

    private void handle(final HttpExchange exchange)
    {
        try
        {
            route(exchange);
        }
        catch (final IOException ex)
        {
            LOG.debug("metrics request from {} failed: {}", exchange.getRemoteAddress(), ex.toString());
        }
        catch (final RuntimeException ex)
        {
            LOG.warn("metrics request {} {} failed", exchange.getRequestMethod(), exchange.getRequestURI(), ex);
            if (exchange.getResponseCode() == -1)
            {
                try
                {
                    respond(exchange, 500, "internal error\n");
                }
                catch (final IOException ignore)
                {
                    // the peer is gone; nothing left to tell it
                }
            }
        }
        finally
        {
            exchange.close();
        }
    }

    private void route(final HttpExchange exchange) throws IOException
    {
        final String path = exchange.getRequestURI().getPath();
        final String method = exchange.getRequestMethod();
        if (path.startsWith(ADMIN_PREFIX) && !isLoopback(exchange.getRemoteAddress()))
        {
            respond(exchange, 403, "forbidden\n");
            return;
        }
        if (path.startsWith(ADMIN_PREFIX) && !authorized(exchange))
        {
            exchange.getResponseHeaders().set("WWW-Authenticate", "Bearer realm=\"relay admin\"");
            respond(exchange, 401, "unauthorized\n");
            LOG.warn("admin request {} {} from {} refused: no valid bearer token", method, path,
                exchange.getRemoteAddress());
            return;
        }
        if (path.startsWith(QUEUE_PREFIX) && queueAdmin != null)
        {
            if (allow(exchange, method, "POST"))
            {
                queueCommand(exchange, path.substring(QUEUE_PREFIX.length()));
            }
            return;
        }

        switch (path)
        {
            case METRICS_PATH:
                if (allow(exchange, method, "GET"))
                {
                    scrape(exchange);
                }
                break;

            case HEALTH_PATH:
                if (allow(exchange, method, "GET"))
                {
                    final boolean ok = healthy.getAsBoolean();
                    respond(exchange, ok ? 200 : 503, ok ? "ok\n" : "unavailable\n");
                }
                break;

            case FLUSH_PATH:
                if (allow(exchange, method, "POST"))
                {
                    flush.run();
                    respond(exchange, 200, "flushed\n");
                }
                break;

            case RELOAD_PATH:
                if (allow(exchange, method, "POST"))
                {
                    final AdminAnswer answer = reload.get();
                    // 422: the request was understood, the configuration it points at is not acceptable
                    respond(exchange, answer.done() ? 200 : 422, answer.text());
                }
                break;

            default:
                respond(exchange, 404, "not found\n");
                break;
        }
    }

    private void queueCommand(final HttpExchange exchange, final String verb) throws IOException
    {
        final byte[] body;
        try (java.io.InputStream in = exchange.getRequestBody())
        {
            body = in.readNBytes(MAX_ADMIN_BODY_BYTES + 1);
        }
        if (body.length > MAX_ADMIN_BODY_BYTES)
        {
            respond(exchange, 413, "too many queue ids in one request\n");
            return;
        }
        try
        {
            final AdminReply reply = queueAdmin.run(verb, new String(body, StandardCharsets.UTF_8));
            respond(exchange, reply.status(), reply.text().endsWith("\n") ? reply.text() : reply.text() + "\n");
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            respond(exchange, 503, "interrupted\n");
        }
    }

    /** Whether no token is asked for, or the request carries it: SHA-256 of both, compared in constant time. */
    private boolean authorized(final HttpExchange exchange)
    {
        if (adminTokenHash == null)
        {
            return true;
        }
        final String header = exchange.getRequestHeaders().getFirst("Authorization");
        final String scheme = "Bearer ";
        if (header == null || header.length() < scheme.length() ||
            !header.regionMatches(true, 0, scheme, 0, scheme.length()))
        {
            return false;
        }
        // hashing first makes the comparison's time independent of the length of either
        return java.security.MessageDigest.isEqual(adminTokenHash, sha256(header.substring(scheme.length()).trim()));
    }

    private static byte[] sha256(final String text)
    {
        try
        {
            return java.security.MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
        }
        catch (final java.security.NoSuchAlgorithmException ex)
        {
            throw new IllegalStateException("every Java runtime has SHA-256", ex);
        }
    }

    private void scrape(final HttpExchange exchange) throws IOException
    {
        final ByteArrayOutputStream body = new ByteArrayOutputStream(4096);
        textFormat.write(body, registry.scrape(), EscapingScheme.UNDERSCORE_ESCAPING);
        exchange.getResponseHeaders().set("Content-Type", PrometheusTextFormatWriter.CONTENT_TYPE);
        exchange.sendResponseHeaders(200, body.size());
        try (OutputStream out = exchange.getResponseBody())
        {
            body.writeTo(out);
        }
    }

    private static boolean allow(final HttpExchange exchange, final String method, final String allowed)
        throws IOException
    {
        if (allowed.equals(method))
        {
            return true;
        }
        exchange.getResponseHeaders().set("Allow", allowed);
        respond(exchange, 405, "method not allowed\n");

        return false;
    }

    static boolean isLoopback(final InetSocketAddress remote)
    {
        final InetAddress address = remote == null ? null : remote.getAddress();

        return address != null && address.isLoopbackAddress();
    }

    private static void respond(final HttpExchange exchange, final int status, final String text) throws IOException
    {
        final byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", TEXT_PLAIN);
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody())
        {
            out.write(bytes);
        }
    }
}
