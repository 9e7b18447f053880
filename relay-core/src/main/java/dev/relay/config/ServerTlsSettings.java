package dev.relay.config;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Inbound TLS (STARTTLS, RFC 3207, and implicit TLS on {@code submissions.listen}): the certificate and key, the
 * engine, and what a session asks of TLS. Read by the root package when it loads the server context and builds the
 * session contexts; immutable, any thread.
 *
 * @param cert             {@code smtp.tls.cert}, or null when TLS is off.
 * @param key              {@code smtp.tls.key}, or null when TLS is off.
 * @param provider         {@code smtp.tls.provider}: {@code auto}, {@code jdk} or {@code openssl} (outbound too).
 * @param required         {@code smtp.tls.required}: 530 5.7.0 before STARTTLS on {@code smtp.listen}.
 * @param handshakeTimeout {@code smtp.tls.handshake_timeout}: the whole handshake's deadline.
 * @param reloadInterval   {@code smtp.tls.reload_interval}; zero = the files are not watched.
 */
public record ServerTlsSettings(
    Path cert,
    Path key,
    String provider,
    boolean required,
    Duration handshakeTimeout,
    Duration reloadInterval)
{
    static ServerTlsSettings from(final ConfigValues values, final String provider)
    {
        return new ServerTlsSettings(
            values.get(ConfigKey.SMTP_TLS_CERT),
            values.get(ConfigKey.SMTP_TLS_KEY),
            provider,
            values.get(ConfigKey.SMTP_TLS_REQUIRED),
            values.get(ConfigKey.SMTP_TLS_HANDSHAKE_TIMEOUT),
            values.get(ConfigKey.SMTP_TLS_RELOAD_INTERVAL));
    }

    /** @return whether TLS is configured (both {@code smtp.tls.cert} and {@code smtp.tls.key}). */
    public boolean enabled()
    {
        return cert != null && key != null;
    }
}
