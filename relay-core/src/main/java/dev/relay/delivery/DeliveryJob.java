package dev.relay.delivery;

import dev.relay.smtp.BodySource;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.OutboundMessage;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpooledMessage;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * Some recipients of one message, bound for one hop, in one SMTP transaction (at most
 * {@code delivery.max_recipients_per_transaction} of them), as the SMTP client sees it: the body streams from the
 * spool's mapped file through a pooled {@link SpoolBodyCursor}. Owned by the delivery thread.
 */
final class DeliveryJob implements OutboundMessage, BodySource
{
    final QueuedMessage queued;
    final Hop hop;
    final int[] recipientIndexes;
    final ArrayDeque<SpoolBodyCursor> cursors;
    private final Spool spool;
    HopConnection connection;
    long startedMs;
    private SpoolBodyCursor cursor;

    DeliveryJob(
        final QueuedMessage queued, final Hop hop, final int[] recipientIndexes,
        final ArrayDeque<SpoolBodyCursor> cursors, final Spool spool)
    {
        this.spool = spool;
        this.queued = queued;
        this.hop = hop;
        this.recipientIndexes = recipientIndexes;
        this.cursors = cursors;
    }

    private SpooledMessage message()
    {
        return queued.message;
    }

    @Override
    public byte[] reversePath()
    {
        return message().reversePath();
    }

    @Override
    public int recipientCount()
    {
        return recipientIndexes.length;
    }

    @Override
    public byte[] recipient(final int index)
    {
        return message().recipients().get(recipientIndexes[index]);
    }

    @Override
    public int dsnRet()
    {
        return message().dsnRet();
    }

    @Override
    public byte[] envelopeId()
    {
        return message().envelopeId();
    }

    @Override
    public int notify(final int index)
    {
        return message().notify(recipientIndexes[index]);
    }

    @Override
    public byte[] originalRecipient(final int index)
    {
        return message().originalRecipient(recipientIndexes[index]);
    }

    @Override
    public byte[] receivedHeader()
    {
        final byte[] header = message().receivedHeader();
        return header == null ? new byte[0] : header;
    }

    @Override
    public long bodySize()
    {
        return message().bodyBytes();
    }

    @Override
    public boolean isDotStuffed()
    {
        return (message().flags() & InboundMessage.FLAG_BDAT) == 0;
    }

    @Override
    public boolean isEightBit()
    {
        return (message().flags() & (InboundMessage.FLAG_8BIT_CONTENT | InboundMessage.FLAG_8BITMIME)) != 0;
    }

    @Override
    public boolean needsSmtpUtf8()
    {
        return (message().flags() & InboundMessage.FLAG_SMTPUTF8) != 0;
    }

    @Override
    public BodySource openBody()
    {
        if (cursor == null)
        {
            cursor = cursors.pollFirst();
            if (cursor == null)
            {
                cursor = spool.newBodyCursor();
            }
        }
        cursor.open(message());
        return this;
    }

    @Override
    public int read(final ByteBuffer dst)
    {
        return cursor.read(dst);
    }

    @Override
    public void close()
    {
        outboundClosed();
    }

    /** The transaction is over: the cursor goes back to the pool. */
    void outboundClosed()
    {
        if (cursor != null)
        {
            cursors.addFirst(cursor);
            cursor = null;
        }
    }
}
