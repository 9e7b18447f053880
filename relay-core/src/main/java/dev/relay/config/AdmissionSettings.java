package dev.relay.config;

import java.time.Duration;

/**
 * What one client may do before it is refused or slowed down: connections open at once, the per-minute rates
 * (Postfix's anvil) and the tarpit after repeated errors. Read by the root package for the connection limiter and
 * each session context, at start and at each reload (every key here applies at once); immutable, any thread.
 *
 * @param maxConnections            {@code smtp.max_connections}: concurrent inbound connections.
 * @param maxConnectionsPerIp       {@code smtp.max_connections_per_ip}: per client address; 0 = unlimited.
 * @param limitsExemptRelayNetworks {@code smtp.limits_exempt_relay_networks}: clients in {@code relay.networks} skip
 *                                  the per-client limits.
 * @param connectionsPerMinute      {@code smtp.rate.connections_per_minute} per client address; 0 = unlimited.
 * @param messagesPerMinute         {@code smtp.rate.messages_per_minute} per client address; 0 = unlimited.
 * @param authFailuresPerMinute     {@code smtp.rate.auth_failures_per_minute} per client address; 0 = unlimited.
 * @param softErrorLimit            {@code smtp.soft_error_limit}: errors after which error replies are delayed.
 * @param errorDelay                {@code smtp.error_delay}: the tarpit delay; zero = off.
 */
public record AdmissionSettings(
    int maxConnections,
    int maxConnectionsPerIp,
    boolean limitsExemptRelayNetworks,
    int connectionsPerMinute,
    int messagesPerMinute,
    int authFailuresPerMinute,
    int softErrorLimit,
    Duration errorDelay)
{
    static AdmissionSettings from(final ConfigValues values)
    {
        return new AdmissionSettings(
            values.get(ConfigKey.SMTP_MAX_CONNECTIONS),
            values.get(ConfigKey.SMTP_MAX_CONNECTIONS_PER_IP),
            values.get(ConfigKey.SMTP_LIMITS_EXEMPT_RELAY_NETWORKS),
            values.get(ConfigKey.SMTP_RATE_CONNECTIONS_PER_MINUTE),
            values.get(ConfigKey.SMTP_RATE_MESSAGES_PER_MINUTE),
            values.get(ConfigKey.SMTP_RATE_AUTH_FAILURES_PER_MINUTE),
            values.get(ConfigKey.SMTP_SOFT_ERROR_LIMIT),
            values.get(ConfigKey.SMTP_ERROR_DELAY));
    }
}
