package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * The CRC32C trailer of a spool record (see {@link SpoolRecords}): computed by the writer over the record as written,
 * checked by every reader, so a record the page cache lost part of, or that was overwritten, is reported and
 * skipped instead of delivered as found.
 * <p>
 * Why CRC32C: HotSpot compiles it to the CPU's crc32 instruction, so the check costs less than the copy that feeds
 * it; it catches every burst of up to 32 bits and the zeroed or noisy runs a lost page leaves. The writer feeds it the
 * record's sources (its composed header and envelope, the body's buffer); a reader feeds it the record as mapped,
 * through a small heap scratch array ({@link CRC32C} takes arrays and {@link ByteBuffer}s, not raw addresses).
 * <p>
 * Thread: one instance per thread. No allocation after construction.
 */
final class RecordChecksum
{
    private static final int SCRATCH_BYTES = 8 * 1024;

    private final CRC32C crc = new CRC32C();
    private final byte[] scratch = new byte[SCRATCH_BYTES];

    RecordChecksum reset()
    {
        crc.reset();
        return this;
    }

    /** Adds {@code bytes[from, to)} (absolute offsets). */
    RecordChecksum update(final Bytes<?> bytes, final long from, final long to)
    {
        long position = from;
        while (position < to)
        {
            final int length = (int)Math.min(SCRATCH_BYTES, to - position);
            bytes.read(position, scratch, 0, length);
            crc.update(scratch, 0, length);
            position += length;
        }
        return this;
    }

    /** Adds the bytes written into {@code heap}, from its start to its write position. */
    RecordChecksum update(final Bytes<byte[]> heap)
    {
        crc.update(heap.underlyingObject(), 0, (int)heap.writePosition());
        return this;
    }

    RecordChecksum update(final byte[] array, final int offset, final int length)
    {
        crc.update(array, offset, length);
        return this;
    }

    /** Adds {@code buffer[from, to)}, leaving the buffer's position and limit as they were. */
    RecordChecksum update(final ByteBuffer buffer, final int from, final int to)
    {
        final int position = buffer.position();
        final int limit = buffer.limit();
        try
        {
            buffer.limit(buffer.capacity()).position(from).limit(to);
            crc.update(buffer);
        }
        finally
        {
            buffer.limit(buffer.capacity()).position(position).limit(limit);
        }
        return this;
    }

    int value()
    {
        return (int)crc.getValue();
    }

    /**
     * Whether the record in {@code bytes[start, end)} is whole: a version 2 or 3 record's trailer matches its bytes, a
     * version 1 record (written before records had a trailer) is taken as it is; any other version is damage.
     */
    boolean intact(final Bytes<?> bytes, final long start, final long end)
    {
        if (end - start < SpoolRecords.HEADER_LENGTH)
        {
            return false;
        }
        final byte version = bytes.readByte(start + SpoolRecords.VERSION_OFFSET);
        if (version == SpoolRecords.VERSION_WITHOUT_CHECKSUM)
        {
            return true;
        }
        if ((version != SpoolRecords.VERSION && version != SpoolRecords.VERSION_WITHOUT_DSN) ||
            end - start < SpoolRecords.HEADER_LENGTH + SpoolRecords.CHECKSUM_LENGTH)
        {
            return false;
        }
        final long trailerAt = end - SpoolRecords.CHECKSUM_LENGTH;
        return reset().update(bytes, start, trailerAt).value() == bytes.readInt(trailerAt);
    }
}
