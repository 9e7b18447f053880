package dev.relay.delivery;

import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.MessageSink;
import dev.relay.smtp.QueueIds;
import dev.relay.smtp.ReceivedHeader;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpoolWriter;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * Turns a message's bounced recipients into one RFC 3464 delivery status notification from
 * {@code MAILER-DAEMON@smtp.hostname}, with the null reverse path {@code <>} (so it can never bounce back), and
 * queues it in the spool like any received message — the delivery tailer then picks it up. Runs on the delivery
 * loop thread; allocates per bounce (rare).
 */
public final class Bouncer
{
    private static final int MAX_HEADER_BYTES = 64 * 1024;

    private final String hostname;
    private final SpoolWriter writer;
    private final SpoolBodyCursor cursor;
    private final QueueIds queueIds;
    private final ReceivedHeader receivedHeader;
    private final ByteBuffer headerBuffer = ByteBuffer.allocateDirect(MAX_HEADER_BYTES);

    public Bouncer(final String hostname, final SpoolWriter writer, final Spool spool, final int loopIndex)
    {
        this.hostname = hostname;
        this.writer = writer;
        this.cursor = spool.newBodyCursor();
        this.queueIds = new QueueIds(loopIndex);
        this.receivedHeader = new ReceivedHeader(hostname);
    }

    SpoolWriter writer()
    {
        return writer;
    }

    /**
     * Queues the DSN for {@code queued}'s bounced recipients; {@code onQueued} runs (on this thread) once it is
     * durable in the spool, with the DSN's queue id.
     *
     * @return false when the spool refused it.
     */
    boolean bounce(final QueuedMessage queued, final BiConsumer<QueuedMessage, String> onQueued)
    {
        return notify(queued, QueuedMessage.BOUNCED, onQueued);
    }

    /**
     * Queues a delay warning ({@code delivery.delay_warning}): a DSN with Action: delayed for the recipients still
     * deferred; the message keeps being retried.
     */
    boolean warnDelayed(final QueuedMessage queued, final BiConsumer<QueuedMessage, String> onQueued)
    {
        return notify(queued, QueuedMessage.DEFERRED, onQueued);
    }

    private boolean notify(
        final QueuedMessage queued, final byte reportStatus, final BiConsumer<QueuedMessage, String> onQueued)
    {
        final boolean delayed = reportStatus == QueuedMessage.DEFERRED;
        final List<DsnBuilder.Recipient> failed = new ArrayList<>();
        for (int i = 0; i < queued.recipientCount(); i++)
        {
            if (queued.status[i] == reportStatus && delayed)
            {
                final String status = queued.lastStatusCode[i] == null ? "4.0.0" : queued.lastStatusCode[i];
                failed.add(new DsnBuilder.Recipient(
                    new String(queued.message.recipients().get(i), StandardCharsets.UTF_8),
                    status.startsWith("4") ? status : "4" + status.substring(1),
                    queued.remoteMta[i],
                    diagnostic(queued.lastReply[i]),
                    "delayed"));
            }
            else if (queued.status[i] == reportStatus)
            {
                final String status = queued.lastStatusCode[i] == null ? "5.0.0" : queued.lastStatusCode[i];
                failed.add(DsnBuilder.Recipient.failed(
                    new String(queued.message.recipients().get(i), StandardCharsets.UTF_8),
                    status.startsWith("4") ? "5" + status.substring(1) : status,
                    queued.remoteMta[i],
                    diagnostic(queued.lastReply[i])));
            }
        }
        final long nowMs = System.currentTimeMillis();
        final InboundMessage dsn = new InboundMessage();
        dsn.queueId(queueIds.next(nowMs));
        dsn.receivedAtMs(nowMs);
        dsn.reversePath(new byte[0]);
        dsn.recipients().add(queued.message.reversePath());
        dsn.clientAddress(new byte[] {127, 0, 0, 1});
        dsn.heloName(hostname.getBytes(StandardCharsets.US_ASCII));
        final byte[] body;
        try
        {
            body = DsnBuilder.build(hostname, queued.queueIdText(),
            new String(queued.message.reversePath(), StandardCharsets.UTF_8), queued.message.receivedAtMs(), failed,
            originalHeaders(queued), nowMs, dsn.queueIdText());
        }
        catch (final IllegalArgumentException ex)
        {
            DeliveryLog.warn("{}: cannot build a DSN: {}", queued.queueIdText(), ex.getMessage());
            return false;
        }
        dsn.receivedHeader(receivedHeader.build(dsn, true, "127.0.0.1"));
        if ((queued.message.flags() & InboundMessage.FLAG_SMTPUTF8) != 0)
        {
            dsn.addFlags(InboundMessage.FLAG_SMTPUTF8);
        }
        for (final byte b : body)
        {
            if (b < 0)
            {
                dsn.addFlags(InboundMessage.FLAG_8BITMIME | InboundMessage.FLAG_8BIT_CONTENT);
                break;
            }
        }
        if (!writer.begin(dsn))
        {
            return false;
        }
        final ByteBuffer buffer = ByteBuffer.allocateDirect(body.length);
        buffer.put(body).flip();
        if (!writer.append(dsn, buffer, 0, body.length))
        {
            writer.abort(dsn);
            return false;
        }
        dsn.addBodyBytes(body.length);
        final MessageSink.CommitListener listener = (message, durable) -> onQueued.accept(queued,
            durable ? message.queueIdText() : message.queueIdText() + " (not synced)");
        return writer.complete(dsn, listener);
    }

    private static String diagnostic(final String reply)
    {
        if (reply == null)
        {
            return "smtp; unknown error";
        }
        return (Character.isDigit(reply.isEmpty() ? ' ' : reply.charAt(0)) ? "smtp; " : "x-relay; ") + reply;
    }

    /** The original header section (wire form, up to the empty line or 64 KiB), for the text/rfc822-headers part. */
    private byte[] originalHeaders(final QueuedMessage queued)
    {
        headerBuffer.clear();
        try
        {
            cursor.open(queued.message);
            while (headerBuffer.hasRemaining() && cursor.read(headerBuffer) > 0)
            {
                // fill up to the limit or the end of the body
            }
        }
        catch (final IllegalStateException ex)
        {
            return new byte[0];
        }
        final int length = headerBuffer.position();
        int end = length;
        for (int i = 0; i + 3 < length; i++)
        {
            if (headerBuffer.get(i) == '\r' && headerBuffer.get(i + 1) == '\n' && headerBuffer.get(i + 2) == '\r' &&
                headerBuffer.get(i + 3) == '\n')
            {
                end = i + 2;
                break;
            }
        }
        final byte[] headers = new byte[end];
        headerBuffer.get(0, headers, 0, end);
        return headers;
    }
}
