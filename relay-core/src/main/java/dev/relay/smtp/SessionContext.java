package dev.relay.smtp;

import dev.relay.net.ConnectionLimiter;

/**
 * What all sessions of one loop share: settings, pre-encoded replies, where messages go, the queue-id generator
 * and the Received-header builder. Owned by one loop thread (the id generator and header builder are not
 * thread safe).
 */
public final class SessionContext
{
    final SmtpSettings settings;
    final SmtpReplies replies;
    final MessageSink sink;
    final QueueIds queueIds;
    final ReceivedHeader receivedHeader;
    final SessionEvents events;
    /** Per-client rate limits (messages per minute); null = none. */
    ConnectionLimiter limiter;
    int softErrorLimit = Integer.MAX_VALUE;
    long errorDelayMs;

    public SessionContext(
        final SmtpSettings settings, final MessageSink sink, final int loopIndex, final SessionEvents events)
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

    public SmtpSettings settings()
    {
        return settings;
    }
}
