package dev.relay.spool;

import dev.relay.smtp.QueueIds;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * One complete (committed) message as read back from the spool: its envelope, body size and where its records
 * are. The body itself stays in the queue files; read it with {@link SpoolReader#readBody}.
 * <p>
 * Immutable once handed out; safe to pass to another thread. Allocated per message by the reader.
 */
public final class SpooledMessage
{
    long queueId;
    byte origin;
    long receivedAtMs;
    int flags;
    byte[] clientAddress;
    byte[] heloName;
    byte[] reversePath;
    byte[][] recipientArray;
    List<byte[]> recipients;
    byte[] receivedHeader;
    int dsnRet;
    byte[] envelopeId;
    /** NOTIFY bits per recipient; null for records before version 3. */
    byte[] notify;
    /** ORCPT per recipient (null entries where not given); null when no recipient has one. */
    byte[][] originalRecipients;
    long bodyBytes;
    int chunkCount;
    /** The spool lane ({@link SpoolLanes}) its records are in; its indexes are that lane's. */
    int lane;
    long startIndex;
    long endIndex;
    /** Body chunks and bytes in records that passed their checksum; the reader compares them with the END. */
    int intactChunks;
    long intactBodyBytes;
    private String queueIdText;

    SpooledMessage()
    {
    }

    public long queueId()
    {
        return queueId;
    }

    public String queueIdText()
    {
        if (queueIdText == null)
        {
            queueIdText = QueueIds.format(queueId);
        }
        return queueIdText;
    }

    /** Who made the message: {@link SpoolRecords#ORIGIN_SMTP}, {@code ORIGIN_DSN} or {@code ORIGIN_REQUEUE}. */
    public byte origin()
    {
        return origin;
    }

    public long receivedAtMs()
    {
        return receivedAtMs;
    }

    /** {@code InboundMessage.FLAG_*}. */
    public int flags()
    {
        return flags;
    }

    public byte[] clientAddress()
    {
        return clientAddress;
    }

    public byte[] heloName()
    {
        return heloName;
    }

    /** MAIL FROM without angle brackets; empty for the null reverse path. */
    public byte[] reversePath()
    {
        return reversePath;
    }

    public List<byte[]> recipients()
    {
        return recipients;
    }

    /** The Received header line(s) with trailing CRLF, to prepend to the body on delivery. */
    public byte[] receivedHeader()
    {
        return receivedHeader;
    }

    /** RET= of MAIL ({@code DsnParameters.RET_*}; RFC 3461 §4.3). */
    public int dsnRet()
    {
        return dsnRet;
    }

    /** ENVID= of MAIL as received (xtext), or null (RFC 3461 §4.4). */
    public byte[] envelopeId()
    {
        return envelopeId;
    }

    /** NOTIFY bits of recipient {@code index} ({@code DsnParameters.NOTIFY_*}), 0 when not given (RFC 3461 §4.1). */
    public int notify(final int index)
    {
        return notify == null || index >= notify.length ? 0 : notify[index];
    }

    /** ORCPT of recipient {@code index} as received ({@code addr-type ";" xtext}), or null (RFC 3461 §4.2). */
    public byte[] originalRecipient(final int index)
    {
        return originalRecipients == null || index >= originalRecipients.length ? null : originalRecipients[index];
    }

    /** Body bytes in wire form, without the Received header. */
    public long bodyBytes()
    {
        return bodyBytes;
    }

    public int chunkCount()
    {
        return chunkCount;
    }

    /** Chronicle index of the record holding the envelope (START, START_BODY or WHOLE). */
    public int lane()
    {
        return lane;
    }

    public long startIndex()
    {
        return startIndex;
    }

    /** Chronicle index of the commit record (END, or the WHOLE record itself). */
    public long endIndex()
    {
        return endIndex;
    }

    @Override
    public String toString()
    {
        return "SpooledMessage{" + queueIdText() + " from=<" + new String(reversePath, StandardCharsets.UTF_8) +
            "> rcpts=" + recipients.size() + " bytes=" + bodyBytes + " chunks=" + chunkCount + '}';
    }
}
