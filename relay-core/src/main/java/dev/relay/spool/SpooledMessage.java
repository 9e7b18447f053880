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
    long receivedAtMs;
    int flags;
    byte[] clientAddress;
    byte[] heloName;
    byte[] reversePath;
    byte[][] recipientArray;
    List<byte[]> recipients;
    byte[] receivedHeader;
    long bodyBytes;
    int chunkCount;
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
