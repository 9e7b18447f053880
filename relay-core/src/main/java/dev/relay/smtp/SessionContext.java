package dev.relay.smtp;

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

    public SmtpSettings settings()
    {
        return settings;
    }
}
