package dev.relay.delivery;

import dev.relay.delivery.client.BodySource;
import dev.relay.smtp.InboundMessage;
import dev.relay.delivery.client.OutboundMessage;
import dev.relay.delivery.client.RecipientResult;
import dev.relay.delivery.client.TransactionResult;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpooledMessage;

import java.nio.ByteBuffer;

/**
 * Some recipients of one message, bound for one next hop, in one SMTP transaction (at most
 * {@code delivery.max_recipients_per_transaction} of them): what the {@link QueueManager} hands a delivery loop, and
 * what comes back with a result for each recipient (Postfix's qmgr → smtp request and smtp → qmgr status).
 * <p>
 * Ownership moves with the hand-offs, never shared: the queue manager fills the request and offers the job to the
 * loop that owns its hop; from then on only that loop touches it (it streams the body from the spool's mapped file
 * through the loop's own {@link BodyCursorPool}, never bytes copied into the job) and writes the outcome; then it
 * offers the job back, and only the queue manager reads it. The queues between them publish every write.
 * {@link #queued} is the queue manager's own bookkeeping, carried along and never read by a loop.
 */
final class DeliveryJob implements OutboundMessage, BodySource
{
    /** Outcome of one recipient: 2xx. */
    static final byte DELIVERED = 1;
    /** Outcome of one recipient: try again later (4xx, timeout, lost connection, no usable address). */
    static final byte DEFERRED = 2;
    /** Outcome of one recipient: permanent failure (5xx, NXDOMAIN, the peer cannot take this message). */
    static final byte BOUNCED = 3;

    final QueuedMessage queued;
    final SpooledMessage message;
    final NextHop nextHop;
    final int[] recipientIndexes;

    private final byte[] outcome;
    private final String[] reply;
    private final String[] statusCode;
    /** How the outcome is named in the log: {@code mx.example[192.0.2.1]:25}, or "none" without a connection. */
    private String relay = "none";
    /** The TLS protocol the transaction ran under ({@code TLSv1.3}), null for plaintext or no connection. */
    private String tls;
    /** The host that gave the outcome (RFC 3464 Remote-MTA), null when none did. */
    private String remoteHost;
    private boolean peerOffersDsn;

    private BodyCursorPool cursors;
    private SpoolBodyCursor cursor;

    DeliveryJob(final QueuedMessage queued, final SpooledMessage message, final NextHop nextHop,
        final int[] recipientIndexes)
    {
        this.queued = queued;
        this.message = message;
        this.nextHop = nextHop;
        this.recipientIndexes = recipientIndexes;
        this.outcome = new byte[recipientIndexes.length];
        this.reply = new String[recipientIndexes.length];
        this.statusCode = new String[recipientIndexes.length];
    }

    /** Delivery loop: where {@link #openBody()} takes its cursor; set when the loop takes the job. */
    void bodyCursors(final BodyCursorPool cursors)
    {
        this.cursors = cursors;
    }

    /** Delivery loop: every recipient gets the outcome of the transaction's replies. */
    void recordTransaction(
        final TransactionResult results, final HopAddress address, final boolean peerOffersDsn, final String tls)
    {
        relay = DeliveryLog.relay(address);
        this.tls = tls;
        remoteHost = address.host();
        this.peerOffersDsn = peerOffersDsn;
        for (int i = 0; i < outcome.length; i++)
        {
            final RecipientResult result = results.get(i);
            reply[i] = result.diagnostic();
            statusCode[i] = result.enhancedCode();
            switch (result.status())
            {
                case DELIVERED:
                    outcome[i] = DELIVERED;
                    break;
                case FAILED:
                    outcome[i] = BOUNCED;
                    break;
                default:
                    outcome[i] = DEFERRED;
                    break;
            }
        }
    }

    /** Delivery loop: the connection went before the transaction ended; every recipient is deferred. */
    void recordLostSession(final HopAddress address, final String reason, final String tls)
    {
        relay = DeliveryLog.relay(address);
        this.tls = tls;
        remoteHost = address.host();
        recordAll(DEFERRED, "4.4.2", reason);
    }

    /** Delivery loop: no transaction was tried (no usable address, lookup failed); every recipient gets this. */
    void recordNotTried(final boolean permanent, final String code, final String reason)
    {
        relay = "none";
        tls = null;
        remoteHost = null;
        recordAll(permanent ? BOUNCED : DEFERRED, code, reason);
    }

    private void recordAll(final byte status, final String code, final String text)
    {
        for (int i = 0; i < outcome.length; i++)
        {
            outcome[i] = status;
            reply[i] = text;
            statusCode[i] = code;
        }
    }

    /** Queue manager: {@link #DELIVERED}, {@link #DEFERRED} or {@link #BOUNCED} for recipient {@code position}. */
    byte outcome(final int position)
    {
        return outcome[position];
    }

    /** Queue manager: the reply or reason for recipient {@code position}. */
    String reply(final int position)
    {
        return reply[position];
    }

    /** Queue manager: the RFC 3463 status of recipient {@code position}, null when the peer gave none. */
    String statusCode(final int position)
    {
        return statusCode[position];
    }

    String relay()
    {
        return relay;
    }

    /** The TLS protocol of the transaction ({@code TLSv1.3}), null when it ran in plaintext or never ran. */
    String tls()
    {
        return tls;
    }

    String remoteHost()
    {
        return remoteHost;
    }

    /** The peer offered DSN (RFC 3461): it took over the duty of reporting success. */
    boolean peerOffersDsn()
    {
        return peerOffersDsn;
    }

    @Override
    public byte[] reversePath()
    {
        return message.reversePath();
    }

    @Override
    public int recipientCount()
    {
        return recipientIndexes.length;
    }

    @Override
    public byte[] recipient(final int index)
    {
        return message.recipients().get(recipientIndexes[index]);
    }

    @Override
    public int dsnRet()
    {
        return message.dsnRet();
    }

    @Override
    public byte[] envelopeId()
    {
        return message.envelopeId();
    }

    @Override
    public int notify(final int index)
    {
        return message.notify(recipientIndexes[index]);
    }

    @Override
    public byte[] originalRecipient(final int index)
    {
        return message.originalRecipient(recipientIndexes[index]);
    }

    @Override
    public byte[] receivedHeader()
    {
        final byte[] header = message.receivedHeader();
        return header == null ? new byte[0] : header;
    }

    @Override
    public long bodySize()
    {
        return message.bodyBytes();
    }

    @Override
    public boolean isDotStuffed()
    {
        return (message.flags() & InboundMessage.FLAG_BDAT) == 0;
    }

    @Override
    public boolean isEightBit()
    {
        return (message.flags() & (InboundMessage.FLAG_8BIT_CONTENT | InboundMessage.FLAG_8BITMIME)) != 0;
    }

    @Override
    public boolean needsSmtpUtf8()
    {
        return (message.flags() & InboundMessage.FLAG_SMTPUTF8) != 0;
    }

    @Override
    public BodySource openBody()
    {
        if (cursor == null)
        {
            cursor = cursors.take();
        }
        cursor.open(message);
        return this;
    }

    @Override
    public int read(final ByteBuffer dst)
    {
        return cursor.read(dst);
    }

    /** The transaction is done with the body: the cursor goes back to the loop's pool. */
    @Override
    public void close()
    {
        if (cursor != null)
        {
            cursors.give(cursor);
            cursor = null;
        }
    }
}
