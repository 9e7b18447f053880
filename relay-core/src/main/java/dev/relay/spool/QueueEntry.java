package dev.relay.spool;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.zip.CRC32C;

/**
 * One queued message's delivery state as it is kept on disk: where its records are in the spool, when it was
 * received, when its next attempt is due, the attempts so far and, per recipient, where it stands and the last
 * reply (Postfix keeps this in the queue file and its defer log). A deferred message is one such entry in the
 * {@link DeferredIndex} and nothing on the heap; the queue manager's checkpoint holds one per active message.
 * <pre>
 *  0  magic i32 | state u8 (1 live, 2 dead: changed in place, outside the checksum) | version u8 | flags u16 |
 *  8  length i32 (the whole entry) | queueId i64 | dueMs i64 | receivedAtMs i64 | startIndex i64 | endIndex i64 |
 * 52  bodyBytes i64 | chunkCount i32 | attempts i32 | spool cycle i32 | recipients i32 |
 * 76  per recipient: status u8; for DEFERRED and BOUNCED: reply (u16 length + UTF-8), status code (u8 + ASCII),
 *     remote MTA (u8 + ASCII) |
 *     CRC32C i32 of every byte before it, the state byte taken as 0
 * </pre>
 * Flags: bits 8-15 are the spool lane ({@link SpoolLanes}) of the message's records (0, where the single queue
 * of older spools is, in entries written before lanes: they read the same); bit 0, a delay warning went to the
 * sender; bit 1, an operator put the message on hold (it waits in the index's hold bucket,
 * {@link DeferredIndex#HOLD_SLOT}, until released). Recipient statuses are delivery's: {@link #READY},
 * {@link #DEFERRED}, {@link #DELIVERED}, {@link #BOUNCED} (a recipient in flight is stored as ready: after a crash it
 * is tried again).
 * <p>
 * A plain mutable carrier, reused by its owner's thread; the fields are the state, as encoded.
 */
public final class QueueEntry
{
    public static final byte READY = 0;
    public static final byte DEFERRED = 2;
    public static final byte DELIVERED = 3;
    public static final byte BOUNCED = 4;
    public static final int FLAG_WARNED = 1;
    public static final int FLAG_HELD = 2;

    static final int MAGIC = 0x51454e54;
    static final byte LIVE = 1;
    static final byte DEAD = 2;
    static final int STATE_OFFSET = 4;
    static final int LENGTH_OFFSET = 8;
    static final int HEADER_LENGTH = 12;
    static final int FIXED_LENGTH = 76;
    /** Longest reply text kept (the journal keeps 2048; a DSN quotes the first lines). */
    static final int MAX_REPLY_BYTES = 1024;
    private static final byte VERSION = 1;
    /** The flags field's low byte holds the flags, its high byte the lane. */
    private static final int FLAG_MASK = 0xff;
    private static final int LANE_SHIFT = 8;
    private static final int MAX_SHORT_TEXT = 255;

    public long queueId;
    public long dueMs;
    public long receivedAtMs;
    public long startIndex;
    public long endIndex;
    public long bodyBytes;
    public int chunkCount;
    public int attempts;
    public int cycle;
    public int flags;
    /**
     * The spool lane ({@link SpoolLanes}) the message's records are in, which {@link #startIndex} and {@link #endIndex}
     * index; 0 in entries written before per-loop lanes, where lane 0 is where their single queue still is.
     */
    public int lane;
    public byte[] status = new byte[0];
    public String[] reply = new String[0];
    public String[] statusCode = new String[0];
    public String[] remoteMta = new String[0];
    /** Where the entry was read from ({@link DeferredIndex}): its bucket's slot and its position; not encoded. */
    public long slot = -1;
    public long position = -1;
    /** Whether it was live when read; not encoded. */
    public boolean live;

    /** Makes room for {@code count} recipients, all ready, texts null. */
    public void recipients(final int count)
    {
        if (status.length != count)
        {
            status = new byte[count];
            reply = new String[count];
            statusCode = new String[count];
            remoteMta = new String[count];
        }
        else
        {
            Arrays.fill(status, READY);
            Arrays.fill(reply, null);
            Arrays.fill(statusCode, null);
            Arrays.fill(remoteMta, null);
        }
    }

    public int recipientCount()
    {
        return status.length;
    }

    /** Whether an operator put the message on hold ({@link #FLAG_HELD}: it waits in the hold bucket). */
    public boolean held()
    {
        return (flags & FLAG_HELD) != 0;
    }

    /** Whether some recipient is neither delivered nor bounced. */
    public boolean anyPending()
    {
        for (final byte s : status)
        {
            if (s != DELIVERED && s != BOUNCED)
            {
                return true;
            }
        }
        return false;
    }

    /** Bytes {@link #encode} writes. */
    public int encodedLength()
    {
        int length = FIXED_LENGTH + 4;
        for (int i = 0; i < status.length; i++)
        {
            length++;
            if (hasTexts(status[i]))
            {
                length += 2 + Math.min(MAX_REPLY_BYTES, utf8Length(reply[i])) + 1 + shortLength(statusCode[i]) + 1 +
                    shortLength(remoteMta[i]);
            }
        }
        return length;
    }

    /**
     * Writes the entry, live, at {@code buffer}'s position (little-endian), advancing it.
     *
     * @return bytes written.
     */
    public int encode(final ByteBuffer buffer)
    {
        final ByteOrder order = buffer.order();
        buffer.order(ByteOrder.LITTLE_ENDIAN);
        final int start = buffer.position();
        buffer.putInt(MAGIC);
        buffer.put(LIVE);
        buffer.put(VERSION);
        buffer.putShort((short)((flags & FLAG_MASK) | lane << LANE_SHIFT));
        buffer.putInt(0);
        buffer.putLong(queueId);
        buffer.putLong(dueMs);
        buffer.putLong(receivedAtMs);
        buffer.putLong(startIndex);
        buffer.putLong(endIndex);
        buffer.putLong(bodyBytes);
        buffer.putInt(chunkCount);
        buffer.putInt(attempts);
        buffer.putInt(cycle);
        buffer.putInt(status.length);
        for (int i = 0; i < status.length; i++)
        {
            buffer.put(status[i]);
            if (hasTexts(status[i]))
            {
                final byte[] text = utf8(reply[i], MAX_REPLY_BYTES);
                buffer.putShort((short)text.length);
                buffer.put(text);
                putShortText(buffer, statusCode[i]);
                putShortText(buffer, remoteMta[i]);
            }
        }
        final int length = buffer.position() - start + 4;
        buffer.putInt(start + LENGTH_OFFSET, length);
        buffer.putInt(checksum(buffer, start, length - 4));
        buffer.order(order);
        return length;
    }

    /**
     * Reads the entry at {@code buffer[start, start + available)}.
     *
     * @return its length; 0 when fewer bytes than its length are available (read more); -1 when it is no entry
     * (bad magic, length or checksum).
     */
    public int decode(final ByteBuffer buffer, final int start, final int available)
    {
        final int length = lengthAt(buffer, start, available);
        if (length <= 0)
        {
            return length;
        }
        if (length > available)
        {
            return 0;
        }
        final ByteOrder order = buffer.order();
        buffer.order(ByteOrder.LITTLE_ENDIAN);
        try
        {
            if (buffer.getInt(start + length - 4) != checksum(buffer, start, length - 4))
            {
                return -1;
            }
            live = buffer.get(start + STATE_OFFSET) == LIVE;
            final int flagsAndLane = buffer.getShort(start + 6) & 0xffff;
            flags = flagsAndLane & FLAG_MASK;
            lane = flagsAndLane >>> LANE_SHIFT;
            queueId = buffer.getLong(start + 12);
            dueMs = buffer.getLong(start + 20);
            receivedAtMs = buffer.getLong(start + 28);
            startIndex = buffer.getLong(start + 36);
            endIndex = buffer.getLong(start + 44);
            bodyBytes = buffer.getLong(start + 52);
            chunkCount = buffer.getInt(start + 60);
            attempts = buffer.getInt(start + 64);
            cycle = buffer.getInt(start + 68);
            final int count = buffer.getInt(start + 72);
            if (count < 0 || count > length)
            {
                return -1;
            }
            recipients(count);
            int at = start + FIXED_LENGTH;
            for (int i = 0; i < count; i++)
            {
                status[i] = buffer.get(at++);
                if (hasTexts(status[i]))
                {
                    final int replyLength = buffer.getShort(at) & 0xffff;
                    reply[i] = string(buffer, at + 2, replyLength);
                    at += 2 + replyLength;
                    final int codeLength = buffer.get(at) & 0xff;
                    statusCode[i] = codeLength == 0 ? null : string(buffer, at + 1, codeLength);
                    at += 1 + codeLength;
                    final int mtaLength = buffer.get(at) & 0xff;
                    remoteMta[i] = mtaLength == 0 ? null : string(buffer, at + 1, mtaLength);
                    at += 1 + mtaLength;
                }
            }
            return at + 4 == start + length ? length : -1;
        }
        catch (final IndexOutOfBoundsException ex)
        {
            return -1;
        }
        finally
        {
            buffer.order(order);
        }
    }

    /**
     * The length an entry at {@code start} says it has: 0 when not even its header is available, -1 when it is no
     * entry.
     */
    static int lengthAt(final ByteBuffer buffer, final int start, final int available)
    {
        if (available < HEADER_LENGTH)
        {
            return 0;
        }
        final ByteOrder order = buffer.order();
        buffer.order(ByteOrder.LITTLE_ENDIAN);
        final int magic = buffer.getInt(start);
        final int length = buffer.getInt(start + LENGTH_OFFSET);
        buffer.order(order);
        if (magic != MAGIC || length < FIXED_LENGTH + 4 || length > SpoolRecords.MAX_ENVELOPE_BYTES * 4)
        {
            return -1;
        }
        return length;
    }

    /** Copies every field of {@code other} (texts by reference). */
    public void copyFrom(final QueueEntry other)
    {
        queueId = other.queueId;
        dueMs = other.dueMs;
        receivedAtMs = other.receivedAtMs;
        startIndex = other.startIndex;
        endIndex = other.endIndex;
        bodyBytes = other.bodyBytes;
        chunkCount = other.chunkCount;
        attempts = other.attempts;
        cycle = other.cycle;
        flags = other.flags;
        lane = other.lane;
        status = other.status.clone();
        reply = other.reply.clone();
        statusCode = other.statusCode.clone();
        remoteMta = other.remoteMta.clone();
        slot = other.slot;
        position = other.position;
        live = other.live;
    }

    private static boolean hasTexts(final byte status)
    {
        return status == DEFERRED || status == BOUNCED;
    }

    private static int checksum(final ByteBuffer buffer, final int start, final int length)
    {
        final CRC32C crc = new CRC32C();
        crc.update(buffer.slice(start, STATE_OFFSET));
        crc.update(0);
        crc.update(buffer.slice(start + STATE_OFFSET + 1, length - STATE_OFFSET - 1));
        return (int)crc.getValue();
    }

    private static void putShortText(final ByteBuffer buffer, final String text)
    {
        final byte[] bytes = utf8(text, MAX_SHORT_TEXT);
        buffer.put((byte)bytes.length);
        buffer.put(bytes);
    }

    private static int shortLength(final String text)
    {
        return Math.min(MAX_SHORT_TEXT, utf8Length(text));
    }

    private static int utf8Length(final String text)
    {
        return text == null ? 0 : text.getBytes(StandardCharsets.UTF_8).length;
    }

    private static byte[] utf8(final String text, final int max)
    {
        if (text == null)
        {
            return new byte[0];
        }
        final byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        return bytes.length <= max ? bytes : Arrays.copyOf(bytes, max);
    }

    private static String string(final ByteBuffer buffer, final int at, final int length)
    {
        final byte[] bytes = new byte[length];
        buffer.get(at, bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
