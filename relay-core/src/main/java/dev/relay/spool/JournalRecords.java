package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;

import java.nio.charset.StandardCharsets;

/**
 * The layout of {@link OutcomeJournal}'s records (drawn in its class comment): their types and lengths, the check
 * that a record is whole, writing each kind into an excerpt and handing a read one to a
 * {@link OutcomeJournal.Visitor}. Static and stateless; called by the journal's writing thread, and by whoever
 * replays or repairs it before that thread starts.
 */
final class JournalRecords
{
    static final byte RESULT = 1;
    static final byte DONE = 2;
    static final byte SCHEDULED = 3;
    static final byte ACTIVATED = 4;
    static final byte HELD = 5;
    static final byte RELEASED = 6;
    static final int MAX_TEXT_BYTES = 2048;
    static final int RESULT_FIXED_LENGTH = 32;
    static final int DONE_LENGTH = 12;
    static final int SCHEDULED_LENGTH = 40;
    static final int ACTIVATED_LENGTH = 28;

    private JournalRecords()
    {
    }

    /**
     * Whether {@code bytes[start, end)} is a whole journal record: its type known and its length what its fields
     * say. Records carry no checksum; this catches a record cut short or overwritten, and a damaged outcome only
     * ever costs a redelivery or a retry, never a loss (a recipient is finished by its DELIVERED or BOUNCED record).
     */
    static boolean intact(final Bytes<?> bytes, final long start, final long end)
    {
        final long length = end - start;
        if (length < DONE_LENGTH)
        {
            return false;
        }
        final byte type = bytes.readByte(start);
        if (type == DONE || type == HELD || type == RELEASED)
        {
            return length == DONE_LENGTH;
        }
        if (type == SCHEDULED)
        {
            return length == SCHEDULED_LENGTH;
        }
        if (type == ACTIVATED)
        {
            return length == ACTIVATED_LENGTH;
        }
        if (type != RESULT || length < RESULT_FIXED_LENGTH)
        {
            return false;
        }
        final byte status = bytes.readByte(start + 1);
        final int textLength = bytes.readInt(start + 28);
        return status >= OutcomeJournal.DELIVERED && status <= OutcomeJournal.DELETED && textLength >= 0
            && textLength <= MAX_TEXT_BYTES && length == RESULT_FIXED_LENGTH + textLength;
    }

    /** Hands the intact record at {@code at} to the {@code visitor} method of its type. */
    static void visit(final Bytes<?> bytes, final long at, final OutcomeJournal.Visitor visitor)
    {
        final byte type = bytes.readByte(at);
        if (type == RESULT)
        {
            final byte status = bytes.readByte(at + 1);
            final long queueId = bytes.readLong(at + 4);
            final int recipient = bytes.readInt(at + 12);
            final int attempts = bytes.readInt(at + 16);
            final long nextAttemptMs = bytes.readLong(at + 20);
            final int textLength = bytes.readInt(at + 28);
            final byte[] text = new byte[Math.max(0, Math.min(textLength, MAX_TEXT_BYTES))];
            bytes.read(at + 32, text, 0, text.length);
            visitor.onResult(queueId, recipient, status, attempts, nextAttemptMs,
                new String(text, StandardCharsets.UTF_8));
        }
        else if (type == DONE)
        {
            visitor.onDone(bytes.readLong(at + 4));
        }
        else if (type == HELD || type == RELEASED)
        {
            visitor.onHeld(bytes.readLong(at + 4), type == HELD);
        }
        else if (type == SCHEDULED)
        {
            visitor.onScheduled(bytes.readLong(at + 4), bytes.readInt(at + 12), bytes.readLong(at + 16),
                bytes.readLong(at + 24), bytes.readLong(at + 32));
        }
        else if (type == ACTIVATED)
        {
            visitor.onActivated(bytes.readLong(at + 4), bytes.readLong(at + 12), bytes.readLong(at + 20));
        }
    }

    /** RESULT, with the first {@code textLength} bytes of {@code textBytes}. */
    static void writeResult(
        final Bytes<?> bytes, final byte status, final long queueId, final int recipient, final int attempts,
        final long nextAttemptMs, final byte[] textBytes, final int textLength)
    {
        bytes.writeByte(RESULT);
        bytes.writeByte(status);
        bytes.writeShort((short)0);
        bytes.writeLong(queueId);
        bytes.writeInt(recipient);
        bytes.writeInt(attempts);
        bytes.writeLong(nextAttemptMs);
        bytes.writeInt(textLength);
        bytes.write(textBytes, 0, textLength);
    }

    /** DONE, HELD or RELEASED ({@code type}): the type and the queue id. */
    static void writeShort(final Bytes<?> bytes, final byte type, final long queueId)
    {
        bytes.writeByte(type);
        bytes.writeByte((byte)0);
        bytes.writeShort((short)0);
        bytes.writeLong(queueId);
    }

    static void writeScheduled(
        final Bytes<?> bytes, final long queueId, final int attempts, final long dueMs, final long slot,
        final long position)
    {
        bytes.writeByte(SCHEDULED);
        bytes.writeByte((byte)0);
        bytes.writeShort((short)0);
        bytes.writeLong(queueId);
        bytes.writeInt(attempts);
        bytes.writeLong(dueMs);
        bytes.writeLong(slot);
        bytes.writeLong(position);
    }

    static void writeActivated(final Bytes<?> bytes, final long queueId, final long slot, final long position)
    {
        bytes.writeByte(ACTIVATED);
        bytes.writeByte((byte)0);
        bytes.writeShort((short)0);
        bytes.writeLong(queueId);
        bytes.writeLong(slot);
        bytes.writeLong(position);
    }
}
