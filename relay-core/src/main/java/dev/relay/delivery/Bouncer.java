package dev.relay.delivery;

import dev.relay.smtp.DsnParameters;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.QueueIds;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpoolInjector;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * Turns a message's bounced, delayed or relayed recipients into one RFC 3464 delivery status notification from
 * {@code MAILER-DAEMON@smtp.hostname}, with the null reverse path {@code <>} (so it can never bounce back), and
 * hands it to the spool as mail the relay made ({@link SpoolInjector#inject}: the spool gives it its queue id and
 * records it as a DSN) — the queue manager's tailer then picks it up like any other message. Which recipients a DSN
 * names follows their NOTIFY (RFC 3461 §4.1); its Original-Envelope-Id and Original-Recipient fields come from ENVID
 * and ORCPT. Memory is bounded whatever the message's size: only the first 64 KiB (the headers) are read. Runs on
 * the queue manager's thread; allocates per DSN (rare).
 */
public final class Bouncer
{
    /** A DSN was handed to the spool; the callback follows once it is durable. */
    static final int QUEUED = 0;
    /** No recipient of that kind wants a notification (NOTIFY, RFC 3461 §4.1): none was queued. */
    static final int NOTHING_TO_REPORT = 1;
    /** The spool refused the DSN, or it could not be built. */
    static final int REFUSED = 2;

    private static final int FAILED = 0;
    private static final int DELAYED = 1;
    private static final int RELAYED = 2;
    private static final int MAX_HEADER_BYTES = 64 * 1024;

    private final String hostname;
    private final SpoolInjector injector;
    private final SpoolBodyCursor cursor;
    private final ByteBuffer headerBuffer = ByteBuffer.allocateDirect(MAX_HEADER_BYTES);
    private final byte[] headerBytes = new byte[MAX_HEADER_BYTES];
    /** Bytes of {@link #headerBytes} the last {@link #originalHeaders} filled. */
    private int headerLength;

    public Bouncer(final String hostname, final SpoolInjector injector, final Spool spool)
    {
        this.hostname = hostname;
        this.injector = injector;
        this.cursor = spool.newBodyCursor();
    }

    /** Where the DSNs go; also what moves deferred mail forward. */
    SpoolInjector injector()
    {
        return injector;
    }

    /**
     * Queues the DSN for {@code queued}'s bounced recipients whose NOTIFY asks for failures (RFC 3461 §4.1: NOTIFY
     * absent or with FAILURE); the others are logged and left out, as Postfix does. {@code onQueued} runs (on this
     * thread) once the DSN is durable in the spool, with the DSN's queue id.
     *
     * @return {@link #QUEUED}, {@link #NOTHING_TO_REPORT} (no bounced recipient wants a DSN) or {@link #REFUSED}.
     */
    int bounce(final QueuedMessage queued, final long nowMs, final BiConsumer<QueuedMessage, String> onQueued)
    {
        return notify(queued, FAILED, nowMs, onQueued);
    }

    /**
     * Queues a delay warning ({@code delivery.delay_warning}): a DSN with Action: delayed for the recipients still
     * deferred whose NOTIFY allows it (absent, or with DELAY); the message keeps being retried. Logged when durable.
     * It is not journaled, so a restart may send a second one.
     */
    void warnDelayed(final QueuedMessage queued, final long nowMs)
    {
        notify(queued, DELAYED, nowMs, (message, dsnQueueId) ->
            DeliveryLog.info("{}: sender delay notification: {}", message.queueIdText(), dsnQueueId));
    }

    /**
     * Queues a success notice (Action: relayed, Status 2.0.0; RFC 3461 §6.2.3, RFC 3464 §2.3.3) for the recipients
     * {@link QueuedMessage#successToReport} names: delivered to a next hop without DSN while their NOTIFY asked for
     * SUCCESS, so no later system will tell the sender (as Postfix does). Clears the marks; none for the null sender.
     * Like the delay warning it is not journaled: a crash before it is spooled loses it, and the recipients stay
     * delivered.
     */
    void reportRelayed(final QueuedMessage queued, final long nowMs)
    {
        if (queued.message.reversePath().length == 0)
        {
            queued.successToReport = null;
            DeliveryLog.info("{}: null sender: no success notification", queued.queueIdText());
            return;
        }
        if (notify(queued, RELAYED, nowMs, (message, dsnQueueId) ->
            DeliveryLog.info("{}: sender success notification: {}", message.queueIdText(), dsnQueueId)) == REFUSED)
        {
            DeliveryLog.warn("{}: could not queue the success notification (spool refused it)",
                queued.queueIdText());
        }
    }

    private int notify(
        final QueuedMessage queued, final int kind, final long nowMs, final BiConsumer<QueuedMessage, String> onQueued)
    {
        final List<DsnBuilder.Recipient> reported = new ArrayList<>();
        for (int i = 0; i < queued.recipientCount(); i++)
        {
            final int notify = queued.message.notify(i);
            final String address = new String(queued.message.recipients().get(i), StandardCharsets.UTF_8);
            if (kind == RELAYED)
            {
                if (queued.successToReport != null && queued.successToReport[i])
                {
                    queued.successToReport[i] = false;
                    reported.add(new DsnBuilder.Recipient(address, "2.0.0", queued.remoteMta[i],
                        diagnostic(queued.lastReply[i]), "relayed", originalRecipient(queued, i)));
                }
            }
            else if (kind == DELAYED && queued.status[i] == QueuedMessage.DEFERRED)
            {
                if (!DsnParameters.notifiesDelay(notify))
                {
                    DeliveryLog.info("{}: <{}>: NOTIFY={}: no delay notification", queued.queueIdText(), address,
                        DsnParameters.notifyText(notify));
                    continue;
                }
                final String status = queued.lastStatusCode[i] == null ? "4.0.0" : queued.lastStatusCode[i];
                reported.add(new DsnBuilder.Recipient(address,
                    status.startsWith("4") ? status : "4" + status.substring(1),
                    queued.remoteMta[i], diagnostic(queued.lastReply[i]), "delayed", originalRecipient(queued, i)));
            }
            else if (kind == FAILED && queued.status[i] == QueuedMessage.BOUNCED)
            {
                if (!DsnParameters.notifiesFailure(notify))
                {
                    DeliveryLog.info("{}: <{}>: NOTIFY={}: no non-delivery notification", queued.queueIdText(),
                        address, DsnParameters.notifyText(notify));
                    continue;
                }
                final String status = queued.lastStatusCode[i] == null ? "5.0.0" : queued.lastStatusCode[i];
                reported.add(new DsnBuilder.Recipient(address,
                    status.startsWith("4") ? "5" + status.substring(1) : status,
                    queued.remoteMta[i], diagnostic(queued.lastReply[i]), "failed", originalRecipient(queued, i)));
            }
        }
        if (reported.isEmpty())
        {
            return NOTHING_TO_REPORT;
        }
        final long dsnQueueId = injector.nextQueueId(nowMs);
        final String dsnQueueIdText = QueueIds.format(dsnQueueId);
        final byte[] envelopeId = queued.message.envelopeId();
        final byte[] body;
        try
        {
            body = DsnBuilder.build(hostname, queued.queueIdText(),
                envelopeId == null ? null : new String(DsnParameters.decodeXtext(envelopeId), StandardCharsets.UTF_8),
                new String(queued.message.reversePath(), StandardCharsets.UTF_8), queued.message.receivedAtMs(),
                reported, originalHeaders(queued), 0, headerLength, nowMs, dsnQueueIdText);
        }
        catch (final IllegalArgumentException ex)
        {
            DeliveryLog.warn("{}: cannot build a DSN: {}", queued.queueIdText(), ex.getMessage());
            return REFUSED;
        }
        int flags = queued.message.flags() & InboundMessage.FLAG_SMTPUTF8;
        for (final byte b : body)
        {
            if (b < 0)
            {
                flags |= InboundMessage.FLAG_8BITMIME | InboundMessage.FLAG_8BIT_CONTENT;
                break;
            }
        }
        return injector.inject(dsnQueueId, nowMs, new byte[0], queued.message.reversePath(), flags, body,
            (queueIdText, durable) -> onQueued.accept(queued, durable ? queueIdText : queueIdText + " (not synced)")) ?
            QUEUED : REFUSED;
    }

    /** The ORCPT of recipient {@code index}, decoded for the DSN ({@code addr-type;address}), or null. */
    private static String originalRecipient(final QueuedMessage queued, final int index)
    {
        final byte[] orcpt = queued.message.originalRecipient(index);
        if (orcpt == null)
        {
            return null;
        }
        int semicolon = 0;
        while (semicolon < orcpt.length && orcpt[semicolon] != ';')
        {
            semicolon++;
        }
        final byte[] address = DsnParameters.decodeXtext(
            java.util.Arrays.copyOfRange(orcpt, Math.min(orcpt.length, semicolon + 1), orcpt.length));
        return new String(orcpt, 0, semicolon, StandardCharsets.US_ASCII) + ";" +
            new String(address, StandardCharsets.UTF_8);
    }

    private static String diagnostic(final String reply)
    {
        if (reply == null)
        {
            return "smtp; unknown error";
        }
        return (Character.isDigit(reply.isEmpty() ? ' ' : reply.charAt(0)) ? "smtp; " : "x-relay; ") + reply;
    }

    /**
     * The original header section in wire form, for the text/rfc822-headers part: up to its empty line, read from
     * the spool into a fixed 64 KiB buffer whatever the message's size (a 25 MiB message costs no more). A header
     * section not ended within 64 KiB is cut after its last whole line ({@link DsnBuilder} then keeps only its
     * header fields), so the DSN stays valid. Fills {@link #headerBytes}, sets {@link #headerLength}.
     */
    private byte[] originalHeaders(final QueuedMessage queued)
    {
        headerBuffer.clear();
        headerLength = 0;
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
            return headerBytes;
        }
        final int length = headerBuffer.position();
        headerBuffer.get(0, headerBytes, 0, length);
        int end = -1;
        for (int i = 0; i + 3 < length; i++)
        {
            if (headerBytes[i] == '\r' && headerBytes[i + 1] == '\n' && headerBytes[i + 2] == '\r' &&
                headerBytes[i + 3] == '\n')
            {
                end = i + 2;
                break;
            }
        }
        if (end < 0)
        {
            end = length;
            if (length == MAX_HEADER_BYTES)
            {
                // cut short: the last line may be a piece of one; keep whole lines only
                while (end > 0 && headerBytes[end - 1] != '\n')
                {
                    end--;
                }
            }
        }
        headerLength = end;
        return headerBytes;
    }
}
