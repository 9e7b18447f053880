package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.core.Jvm;
import net.openhft.chronicle.core.UnsafeMemory;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.wire.DocumentContext;

import java.nio.ByteBuffer;

/**
 * Streams one spooled message's body into a caller's buffer a piece at a time, straight from the mapped spool
 * file. Delivery uses it to write a body bigger than its output buffer across several writes: the client session
 * hands it the connection's direct write buffer ({@code Connection.write(OutputFiller, int)}), so a body goes
 * mapped file → write buffer (one memcpy here) → socket (the kernel's copy), and nothing of it is on the heap.
 * The exceptions are a BDAT-received body going to a peer without CHUNKING (read into a 16 KiB heap array to be
 * dot-stuffed on the way) and the spool's own copies (moving a message forward, a DSN's header excerpt), which
 * read into direct buffers of their own.
 * <p>
 * Owned by one thread (it holds its own Chronicle tailer per lane, so several cursors can stream different messages at
 * once). No allocation per read.
 */
public final class SpoolBodyCursor implements AutoCloseable
{
    private final SpoolLanes lanes;
    /** One tailer per lane, made when a message of that lane is first opened. */
    private ExcerptTailer[] tailers = new ExcerptTailer[0];
    private ExcerptTailer tailer;
    private long queueId;
    private long endIndex;
    private long chunkOffset;
    private long remaining;

    SpoolBodyCursor(final SpoolLanes lanes)
    {
        this.lanes = lanes;
    }

    /** Positions at the first body byte of {@code message}. */
    public void open(final SpooledMessage message)
    {
        final ExcerptTailer tailer = tailer(message.lane);
        this.tailer = tailer;
        if (tailer == null || !tailer.moveToIndex(message.startIndex))
        {
            throw new IllegalStateException("records of " + message.queueIdText() + " are no longer in the spool");
        }
        this.queueId = message.queueId;
        this.endIndex = message.endIndex;
        this.chunkOffset = 0;
        this.remaining = message.bodyBytes;
    }

    /** Body bytes not yet read. */
    public long remaining()
    {
        return remaining;
    }

    /**
     * Copies the next body bytes into {@code dst} (from its position, up to its limit; advances the position).
     *
     * @return bytes copied; -1 once the body is exhausted.
     * @throws IllegalStateException when the message's records are no longer in the spool.
     */
    public int read(final ByteBuffer dst)
    {
        if (remaining == 0)
        {
            return -1;
        }
        int copied = 0;
        while (remaining > 0 && dst.hasRemaining())
        {
            try (DocumentContext dc = tailer.readingDocument())
            {
                if (!dc.isPresent())
                {
                    throw new IllegalStateException("body of " + Long.toHexString(queueId) + " ends before its END");
                }
                final long index = dc.index();
                final Bytes<?> bytes = dc.wire().bytes();
                final long start = bytes.readPosition();
                long dataAt = -1;
                int length = 0;
                if (bytes.readRemaining() >= SpoolRecords.HEADER_LENGTH && SpoolRecords.queueId(bytes, start) == queueId)
                {
                    final byte type = SpoolRecords.type(bytes, start);
                    if (type == SpoolRecords.BODY)
                    {
                        length = bytes.readInt(start + SpoolRecords.BODY_LENGTH_OFFSET);
                        dataAt = start + SpoolRecords.BODY_DATA_OFFSET;
                    }
                    else if (type == SpoolRecords.START_BODY || type == SpoolRecords.WHOLE)
                    {
                        final long lengthAt = SpoolRecords.skipEnvelope(bytes, start);
                        length = bytes.readInt(lengthAt);
                        dataAt = lengthAt + 4;
                    }
                }
                if (dataAt >= 0 && chunkOffset < length)
                {
                    final int n = (int)Math.min(length - chunkOffset, dst.remaining());
                    copy(bytes, dataAt + chunkOffset, n, dst);
                    copied += n;
                    remaining -= n;
                    chunkOffset += n;
                    if (chunkOffset < length)
                    {
                        // the caller's buffer is full mid-chunk: read this excerpt again next time
                        dc.rollbackOnClose();
                        continue;
                    }
                }
                chunkOffset = 0;
                if (index >= endIndex && remaining > 0)
                {
                    throw new IllegalStateException("body of " + Long.toHexString(queueId) + " is shorter than recorded");
                }
            }
        }
        return copied;
    }

    /**
     * {@code n} bytes at absolute {@code offset} of the excerpt being read into {@code dst}: one memcpy from the
     * mapped file when {@code dst} is direct (as the connection's write buffer is); Chronicle's {@code copyTo},
     * which moves eight bytes per call (measured 25x slower than a memcpy for a 1 MiB body), only for a heap
     * buffer. The excerpt lies within one mapped chunk while its document is open, so its address is stable.
     */
    private static void copy(final Bytes<?> bytes, final long offset, final int n, final ByteBuffer dst)
    {
        final int at = dst.position();
        if (dst.isDirect() && bytes.isDirectMemory())
        {
            UnsafeMemory.copyMemory(bytes.addressForRead(offset, n), Jvm.address(dst) + at, n);
        }
        else
        {
            bytes.readLimit(offset + n);
            bytes.readPosition(offset);
            bytes.copyTo(dst);
        }
        dst.position(at + n);
    }

    private ExcerptTailer tailer(final int lane)
    {
        if (lane >= tailers.length)
        {
            tailers = java.util.Arrays.copyOf(tailers, Math.max(lane + 1, lanes.count()));
        }
        ExcerptTailer tailer = tailers[lane];
        if (tailer == null)
        {
            final net.openhft.chronicle.queue.impl.single.SingleChronicleQueue queue = lanes.queue(lane);
            if (queue == null)
            {
                return null;
            }
            tailer = queue.createTailer();
            tailers[lane] = tailer;
        }
        return tailer;
    }

    @Override
    public void close()
    {
        for (final ExcerptTailer tailer : tailers)
        {
            if (tailer != null)
            {
                tailer.close();
            }
        }
    }
}
