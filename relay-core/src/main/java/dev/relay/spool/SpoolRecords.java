package dev.relay.spool;

import dev.relay.smtp.InboundMessage;
import net.openhft.chronicle.bytes.Bytes;

import java.util.List;

/**
 * Layout of the spool's records: each record is one Chronicle excerpt (a data document, written through
 * {@code dc.wire().bytes()} as raw little-endian bytes, no wire field names). Several loops append to the same
 * queue, so records of different messages interleave; every record carries its message's queue id.
 * <pre>
 * Every record:
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +---------------+---------------+---------------+---------------+
 *  |     type      |    version    |    origin     |   reserved    |  0
 *  +---------------+---------------+---------------+---------------+
 *  |                        queue id (i64)                         |  4
 *  |                                                               |
 *  +---------------------------------------------------------------+  12
 *
 * START (1), START_BODY (2), WHOLE (5): the envelope, then for START_BODY and WHOLE the first body chunk
 *  12  received-at ms (i64)
 *  20  flags (i32, InboundMessage.FLAG_*)
 *  24  client address     len (i32) + bytes
 *      helo name          len (i32) + bytes
 *      reverse path       len (i32) + bytes   (empty = null reverse path &lt;&gt;)
 *      recipient count    (i32), then per recipient len (i32) + bytes
 *      Received header    len (i32) + bytes   (with trailing CRLF)
 *      [version 3] the DSN parameters (RFC 3461), kept as received:
 *      RET                (i8: 0 not given, 1 FULL, 2 HDRS)
 *      ENVID              len (i32) + bytes   (xtext; empty = not given)
 *      per recipient, in the order above:
 *        NOTIFY           (i8: bits 1 SUCCESS, 2 FAILURE, 4 DELAY, 8 NEVER; 0 = not given)
 *        ORCPT            len (i32) + bytes   (addr-type ";" xtext; empty = not given)
 *      [START_BODY, WHOLE] body length (i32) + body bytes (wire form)
 *
 * BODY (3): one chunk, written in one go from the read buffer (one memcpy into the mapped file)
 *  12  length (i32)
 *  16  bytes
 *
 * END (4): the commit marker; a message without END (or WHOLE) is never deliverable
 *  12  total body bytes (i64)
 *  20  chunk count (i32, counting the body of START_BODY)
 *
 * Every record of version 2 or 3 ends with
 *      CRC32C (i32) of all the record's bytes before it
 * </pre>
 * Origin (envelope records; 0 elsewhere) says who made the message: {@link #ORIGIN_SMTP} an SMTP client,
 * {@link #ORIGIN_DSN} the relay (a delivery status notification, {@link SpoolInjector#inject}),
 * {@link #ORIGIN_REQUEUE} a copy of a deferred message moved forward ({@link SpoolInjector#requeue}). The byte was
 * reserved (0) before, so older records read as smtp, older DSNs and copies too.
 * Versions: 1 had no checksum trailer, 2 added it, 3 added the DSN parameters to the envelope (BODY and END are the
 * same in 2 and 3). The writer writes version 3; every version is read, an envelope before 3 as one without DSN
 * parameters.
 * The trailer ({@link RecordChecksum}) is what lets a reader tell a record that lost part of its bytes to a power
 * cut ({@code queue.sync=none}) or was overwritten: such a record is reported and skipped, and so is its message
 * (its END then disagrees with the chunks that were intact). Version 1 records, from before the trailer, are still
 * read, unchecked.
 * WHOLE is START_BODY and END in one excerpt: a small message whose body arrived before {@code complete()}
 * costs one excerpt. Sizes: a chunk is at most {@link #MAX_CHUNK_BYTES}, an envelope at most
 * {@link #MAX_ENVELOPE_BYTES}, so no excerpt exceeds {@link #MAX_RECORD_BYTES}.
 * <p>
 * Stateless helpers; any thread; no allocation except the {@code byte[]}s a reader asks for.
 */
public final class SpoolRecords
{
    public static final byte START = 1;
    public static final byte START_BODY = 2;
    public static final byte BODY = 3;
    public static final byte END = 4;
    public static final byte WHOLE = 5;
    public static final byte VERSION = 3;
    /** Records written before the DSN parameters joined the envelope: checked, read without them. */
    public static final byte VERSION_WITHOUT_DSN = 2;
    /** Records written before the checksum trailer: read, not checked. */
    public static final byte VERSION_WITHOUT_CHECKSUM = 1;
    public static final int CHECKSUM_LENGTH = 4;
    /** The message came from an SMTP client (an inbound session). */
    public static final byte ORIGIN_SMTP = 0;
    /** The relay made the message: a delivery status notification (RFC 3464). */
    public static final byte ORIGIN_DSN = 1;
    /** A copy of a deferred message, moved forward into a newer cycle under the same queue id. */
    public static final byte ORIGIN_REQUEUE = 2;

    public static final int TYPE_OFFSET = 0;
    public static final int VERSION_OFFSET = 1;
    public static final int ORIGIN_OFFSET = 2;
    public static final int QUEUE_ID_OFFSET = 4;
    public static final int HEADER_LENGTH = 12;
    public static final int RECEIVED_AT_OFFSET = 12;
    public static final int FLAGS_OFFSET = 20;
    public static final int ENVELOPE_FIELDS_OFFSET = 24;
    public static final int BODY_LENGTH_OFFSET = 12;
    public static final int BODY_DATA_OFFSET = 16;
    public static final int END_TOTAL_BYTES_OFFSET = 12;
    public static final int END_CHUNK_COUNT_OFFSET = 20;
    public static final int END_LENGTH = 24;

    /** Largest body chunk in one record; longer appends are split. */
    public static final int MAX_CHUNK_BYTES = 256 * 1024;
    /** Largest envelope (about 1000 recipients of 1 KiB); {@code begin()} refuses bigger ones. */
    public static final int MAX_ENVELOPE_BYTES = 1024 * 1024;
    public static final int MAX_RECORD_BYTES = MAX_ENVELOPE_BYTES + 4 + MAX_CHUNK_BYTES + CHECKSUM_LENGTH;

    private SpoolRecords()
    {
    }

    /** @return bytes of the envelope part of a START record, header included, without the body length field. */
    public static int envelopeLength(final InboundMessage message)
    {
        long length = ENVELOPE_FIELDS_OFFSET;
        length += 4 + lengthOf(message.clientAddress());
        length += 4 + lengthOf(message.heloName());
        length += 4 + lengthOf(message.reversePath());
        final List<byte[]> recipients = message.recipients();
        length += 4;
        for (int i = 0, n = recipients.size(); i < n; i++)
        {
            length += 4 + lengthOf(recipients.get(i));
        }
        length += 4 + lengthOf(message.receivedHeader());
        length += 1 + 4 + lengthOf(message.envelopeId());
        for (int i = 0, n = recipients.size(); i < n; i++)
        {
            length += 1 + 4 + lengthOf(message.originalRecipient(i));
        }
        return (int)Math.min(Integer.MAX_VALUE, length);
    }

    static void writeHeader(final Bytes<?> bytes, final byte type, final long queueId)
    {
        writeHeader(bytes, type, ORIGIN_SMTP, queueId);
    }

    private static void writeHeader(final Bytes<?> bytes, final byte type, final byte origin, final long queueId)
    {
        bytes.writeByte(type);
        bytes.writeByte(VERSION);
        bytes.writeByte(origin);
        bytes.writeByte((byte)0);
        bytes.writeLong(queueId);
    }

    /** The name of an origin, for logs and {@code spool show}. */
    public static String originName(final byte origin)
    {
        switch (origin)
        {
            case ORIGIN_SMTP:
                return "smtp";
            case ORIGIN_DSN:
                return "dsn";
            case ORIGIN_REQUEUE:
                return "requeue";
            default:
                return "unknown (" + origin + ")";
        }
    }

    static void writeEnvelope(final Bytes<?> bytes, final byte type, final InboundMessage message)
    {
        writeHeader(bytes, type, message.origin(), message.queueId());
        bytes.writeLong(message.receivedAtMs());
        bytes.writeInt(message.flags());
        writeField(bytes, message.clientAddress());
        writeField(bytes, message.heloName());
        writeField(bytes, message.reversePath());
        final List<byte[]> recipients = message.recipients();
        final int count = recipients.size();
        bytes.writeInt(count);
        for (int i = 0; i < count; i++)
        {
            writeField(bytes, recipients.get(i));
        }
        writeField(bytes, message.receivedHeader());
        bytes.writeByte((byte)message.dsnRet());
        writeField(bytes, message.envelopeId());
        for (int i = 0; i < count; i++)
        {
            bytes.writeByte((byte)message.notify(i));
            writeField(bytes, message.originalRecipient(i));
        }
    }

    static void writeEnd(final Bytes<?> bytes, final long queueId, final long totalBodyBytes, final int chunkCount)
    {
        writeHeader(bytes, END, queueId);
        bytes.writeLong(totalBodyBytes);
        bytes.writeInt(chunkCount);
    }

    private static void writeField(final Bytes<?> bytes, final byte[] value)
    {
        if (value == null)
        {
            bytes.writeInt(0);
        }
        else
        {
            bytes.writeInt(value.length);
            bytes.write(value);
        }
    }

    private static int lengthOf(final byte[] value)
    {
        return value == null ? 0 : value.length;
    }

    /** @return the record type at absolute position {@code start}. */
    static byte type(final Bytes<?> bytes, final long start)
    {
        return bytes.readByte(start + TYPE_OFFSET);
    }

    static long queueId(final Bytes<?> bytes, final long start)
    {
        return bytes.readLong(start + QUEUE_ID_OFFSET);
    }

    /**
     * Reads the envelope of a START, START_BODY or WHOLE record at absolute {@code start} into {@code message},
     * leaving for START_BODY and WHOLE the body's absolute offset and length in it.
     *
     * @return absolute position just after the envelope (the body length field for START_BODY/WHOLE).
     */
    static long readEnvelope(final Bytes<?> bytes, final long start, final SpooledMessage message)
    {
        message.queueId = bytes.readLong(start + QUEUE_ID_OFFSET);
        message.origin = bytes.readByte(start + ORIGIN_OFFSET);
        message.receivedAtMs = bytes.readLong(start + RECEIVED_AT_OFFSET);
        message.flags = bytes.readInt(start + FLAGS_OFFSET);
        long position = start + ENVELOPE_FIELDS_OFFSET;
        message.clientAddress = readField(bytes, position);
        position += 4 + message.clientAddress.length;
        message.heloName = readField(bytes, position);
        position += 4 + message.heloName.length;
        message.reversePath = readField(bytes, position);
        position += 4 + message.reversePath.length;
        final int count = bytes.readInt(position);
        position += 4;
        if (count < 0 || count > MAX_ENVELOPE_BYTES / 4)
        {
            throw new IllegalStateException("corrupt START record: recipient count " + count);
        }
        final byte[][] recipients = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            recipients[i] = readField(bytes, position);
            position += 4 + recipients[i].length;
        }
        message.recipientArray = recipients;
        message.recipients = java.util.List.of(recipients);
        message.receivedHeader = readField(bytes, position);
        position += 4 + message.receivedHeader.length;
        if (bytes.readByte(start + VERSION_OFFSET) < VERSION)
        {
            return position;
        }
        message.dsnRet = bytes.readByte(position);
        position++;
        final byte[] envelopeId = readField(bytes, position);
        position += 4 + envelopeId.length;
        message.envelopeId = envelopeId.length == 0 ? null : envelopeId;
        final byte[] notify = new byte[count];
        byte[][] originalRecipients = null;
        for (int i = 0; i < count; i++)
        {
            notify[i] = bytes.readByte(position);
            position++;
            final byte[] originalRecipient = readField(bytes, position);
            position += 4 + originalRecipient.length;
            if (originalRecipient.length > 0)
            {
                if (originalRecipients == null)
                {
                    originalRecipients = new byte[count][];
                }
                originalRecipients[i] = originalRecipient;
            }
        }
        message.notify = notify;
        message.originalRecipients = originalRecipients;
        return position;
    }

    /**
     * @return absolute position just after the envelope of the record at {@code start} (for START_BODY and WHOLE
     * the body length field), without allocating.
     */
    static long skipEnvelope(final Bytes<?> bytes, final long start)
    {
        long position = start + ENVELOPE_FIELDS_OFFSET;
        position += 4 + bytes.readInt(position);
        position += 4 + bytes.readInt(position);
        position += 4 + bytes.readInt(position);
        final int count = bytes.readInt(position);
        position += 4;
        for (int i = 0; i < count; i++)
        {
            position += 4 + bytes.readInt(position);
        }
        position += 4 + bytes.readInt(position);
        if (bytes.readByte(start + VERSION_OFFSET) < VERSION)
        {
            return position;
        }
        position++;
        position += 4 + bytes.readInt(position);
        for (int i = 0; i < count; i++)
        {
            position++;
            position += 4 + bytes.readInt(position);
        }
        return position;
    }

    private static byte[] readField(final Bytes<?> bytes, final long position)
    {
        final int length = bytes.readInt(position);
        if (length < 0 || length > MAX_ENVELOPE_BYTES)
        {
            throw new IllegalStateException("corrupt spool record: field length " + length + " at " + position);
        }
        final byte[] value = new byte[length];
        bytes.read(position + 4, value, 0, length);
        return value;
    }
}
