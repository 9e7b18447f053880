package dev.relay.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.prometheus.metrics.config.EscapingScheme;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
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
 * The families {@code /metrics} shows, and how their quantiles are made: {@link MetricFamilies}.
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
        final PrometheusRegistry registry = MetricFamilies.newRegistry(metrics, openConnections);
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
