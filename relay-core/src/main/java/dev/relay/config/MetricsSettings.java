package dev.relay.config;

import java.net.InetSocketAddress;

/**
 * The HTTP endpoint for /metrics, /health and /admin/: read by the root package when it starts the metrics server
 * and by {@code ops/relay} commands that call it; immutable, any thread.
 *
 * @param listen     {@code metrics.listen}, or null when it is {@code off}.
 * @param adminToken {@code metrics.admin_token}: the bearer token /admin/ requests must carry; empty when none is
 *                   asked for.
 */
public record MetricsSettings(InetSocketAddress listen, String adminToken)
{
    static MetricsSettings from(final ConfigValues values)
    {
        return new MetricsSettings(values.get(ConfigKey.METRICS_LISTEN), values.get(ConfigKey.METRICS_ADMIN_TOKEN));
    }
}
