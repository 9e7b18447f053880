package dev.relay.smtp;

import dev.relay.config.SmtpServerSettings;
import dev.relay.net.ConnectionLimiter;

import javax.net.ssl.SSLEngine;
import java.util.function.Supplier;

/**
 * What all sessions of one loop share: settings, pre-encoded replies, where messages go, the queue-id generator
 * and the Received-header builder. Owned by one loop thread (the id generator and header builder are not
 * thread safe).
 */
public final class SessionContext
{
    /** Replaced by {@link #reconfigure}: a session takes both when it opens and keeps them. */
    SmtpServerSettings settings;
    SmtpReplies replies;
    final MessageSink sink;
    final QueueIds queueIds;
    final ReceivedHeader receivedHeader;
    final SessionEvents events;
    /** Per-client rate limits (messages per minute); null = none. */
    ConnectionLimiter limiter;
    int softErrorLimit = Integer.MAX_VALUE;
    long errorDelayMs;
    /** Server engines for STARTTLS and implicit TLS; null = no TLS. */
    Supplier<SSLEngine> tlsEngines;
    long tlsHandshakeTimeoutMs = 60_000;
    /** {@code smtp.tls.required}: on the SMTP listener, 530 5.7.0 before STARTTLS. */
    boolean tlsRequired;
    /** AUTH checker; null = no AUTH. */
    Authenticator authenticator;
    boolean authAllowPlaintext;

    public SessionContext(
        final SmtpServerSettings settings, final MessageSink sink, final int loopIndex, final SessionEvents events)
    {
        this.settings = settings;
        this.replies = new SmtpReplies(settings.hostname(), settings.maxMessageSize());
        this.sink = sink;
        this.queueIds = new QueueIds(loopIndex);
        this.receivedHeader = new ReceivedHeader(settings.hostname());
        this.events = events;
    }

    /** Message-rate admission per client (Postfix anvil); set before the loop starts. */
    public SessionContext limiter(final ConnectionLimiter limiter)
    {
        this.limiter = limiter;
        return this;
    }

    /** Tarpit: past {@code softErrorLimit} errors, reading from the client pauses {@code errorDelayMs} per error. */
    public SessionContext tarpit(final int softErrorLimit, final long errorDelayMs)
    {
        this.softErrorLimit = softErrorLimit;
        this.errorDelayMs = errorDelayMs;
        return this;
    }

    /**
     * TLS: STARTTLS offered on every listener, implicit TLS on submissions listeners; set before the loop starts.
     *
     * @param engines          a new server engine per handshake (the current certificate).
     * @param handshakeTimeoutMs the whole handshake's deadline.
     * @param required         {@code smtp.tls.required}.
     */
    public SessionContext tls(final Supplier<SSLEngine> engines, final long handshakeTimeoutMs,
        final boolean required)
    {
        this.tlsEngines = engines;
        this.tlsHandshakeTimeoutMs = handshakeTimeoutMs;
        this.tlsRequired = required;
        return this;
    }

    /** AUTH PLAIN and LOGIN, offered under TLS (and without when {@code allowPlaintext}); set before the loop starts. */
    public SessionContext auth(final Authenticator authenticator, final boolean allowPlaintext)
    {
        this.authenticator = authenticator;
        this.authAllowPlaintext = allowPlaintext;
        return this;
    }

    /**
     * A reload: connections opened from now on get {@code settings} (and replies for its size limit); open ones keep
     * theirs; the tarpit applies to every session from its next error. On the owning loop's thread (through the
     * loop's {@code execute}). The host name stays: it is in the Received-header builder and needs a restart.
     */
    public void reconfigure(final SmtpServerSettings settings, final int softErrorLimit, final long errorDelayMs)
    {
        if (!settings.hostname().equals(this.settings.hostname()))
        {
            throw new IllegalArgumentException("the host name needs a restart: " + settings.hostname());
        }
        if (settings.maxMessageSize() != this.settings.maxMessageSize())
        {
            this.replies = new SmtpReplies(settings.hostname(), settings.maxMessageSize());
        }
        this.settings = settings;
        tarpit(softErrorLimit, errorDelayMs);
    }

    public SmtpServerSettings settings()
    {
        return settings;
    }
}
