package dev.relay.metrics;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.SummaryWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.Quantile;
import io.prometheus.metrics.model.snapshots.Quantiles;
import io.prometheus.metrics.model.snapshots.Unit;
import org.HdrHistogram.Histogram;

import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * The Prometheus metric families {@link MetricsServer} exposes on {@code /metrics}: their names, help texts and
 * types, each a callback read from {@link RelayMetrics} at scrape time (names and meanings are what
 * {@code ops/monitoring} and the README rely on). Quantiles are HdrHistogram's over all values since start (the
 * highest value equivalent to the recorded one, within 0.1%); {@code _sum} is exact.
 * <p>
 * Stateless; the registry is built once at start; its callbacks run on the metrics thread, the single reader of the
 * latency recorders. Allocates per scrape.
 */
final class MetricFamilies
{
    private static final double[] QUANTILES = { 0.5, 0.9, 0.99, 0.999 };
    private static final double NANOS_PER_SECOND = 1e9;

    private MetricFamilies()
    {
    }

    /**
     * A registry of every family, each read from {@code metrics} (and {@code openConnections}) at scrape time.
     */
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

}
