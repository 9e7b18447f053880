package dev.relay.config;

import java.nio.file.Path;

/**
 * Outbound TLS's trust and engine (the levels per domain are {@link Routing}'s): read by the root package when it
 * loads the client context at start; immutable, any thread.
 *
 * @param caFile   {@code delivery.tls.ca_file}, or null for the JDK's trust store.
 * @param provider {@code smtp.tls.provider}: {@code auto}, {@code jdk} or {@code openssl} (inbound too).
 */
public record ClientTlsSettings(Path caFile, String provider)
{
    static ClientTlsSettings from(final ConfigValues values, final String provider)
    {
        return new ClientTlsSettings(values.get(ConfigKey.DELIVERY_TLS_CA_FILE), provider);
    }
}
