package dev.relay.config;

import java.time.Duration;

/**
 * What the delivery loops and their SMTP client sessions take from the configuration: how many loops and
 * connections, how long a connection lives, the client's timeouts (RFC 5321 §4.5.3.2) and the slowest transfer
 * allowed. Read when the delivery stage builds its loops (and by {@code ops/relay spool transfer}); every key here
 * needs a restart; immutable, any thread.
 *
 * @param hostname                    {@code smtp.hostname}, resolved: the name in EHLO and in DSNs.
 * @param ioThreads                   {@code delivery.io_threads}: delivery loops, 1..64 ({@code auto} resolved).
 * @param maxConnectionsPerHop        {@code delivery.max_connections_per_hop}.
 * @param maxConnections              {@code delivery.max_connections}: outbound connections open or opening in
 *                                    all, each delivery loop taking an even share.
 * @param maxMessagesPerConnection    {@code delivery.max_messages_per_connection}.
 * @param idleTimeout                 {@code delivery.idle_timeout}: an idle pooled connection is closed after this.
 * @param maxRecipientsPerTransaction {@code delivery.max_recipients_per_transaction}.
 * @param connectTimeout              {@code delivery.timeout.connect}.
 * @param commandTimeout              {@code delivery.timeout.command}: greeting, EHLO, MAIL and RCPT replies.
 * @param dataInitTimeout             {@code delivery.timeout.data_init}: the 354 reply to DATA.
 * @param dataBlockTimeout            {@code delivery.timeout.data_block}: writing each block of content.
 * @param dataDoneTimeout             {@code delivery.timeout.data_done}: the reply to the final dot.
 * @param minDataRate                 {@code delivery.min_data_rate}: bytes per second a transfer must average
 *                                    (0 = no limit).
 */
public record DeliverySettings(
    String hostname,
    int ioThreads,
    int maxConnectionsPerHop,
    int maxConnections,
    int maxMessagesPerConnection,
    Duration idleTimeout,
    int maxRecipientsPerTransaction,
    Duration connectTimeout,
    Duration commandTimeout,
    Duration dataInitTimeout,
    Duration dataBlockTimeout,
    Duration dataDoneTimeout,
    long minDataRate)
{
    static DeliverySettings from(final ConfigValues values, final String hostname,
        final int maxRecipientsPerTransaction)
    {
        return new DeliverySettings(
            hostname,
            values.get(ConfigKey.DELIVERY_IO_THREADS),
            values.get(ConfigKey.DELIVERY_MAX_CONNECTIONS_PER_HOP),
            values.get(ConfigKey.DELIVERY_MAX_CONNECTIONS),
            values.get(ConfigKey.DELIVERY_MAX_MESSAGES_PER_CONNECTION),
            values.get(ConfigKey.DELIVERY_IDLE_TIMEOUT),
            maxRecipientsPerTransaction,
            values.get(ConfigKey.DELIVERY_TIMEOUT_CONNECT),
            values.get(ConfigKey.DELIVERY_TIMEOUT_COMMAND),
            values.get(ConfigKey.DELIVERY_TIMEOUT_DATA_INIT),
            values.get(ConfigKey.DELIVERY_TIMEOUT_DATA_BLOCK),
            values.get(ConfigKey.DELIVERY_TIMEOUT_DATA_DONE),
            values.get(ConfigKey.DELIVERY_MIN_DATA_RATE));
    }
}
