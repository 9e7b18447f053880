package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.wire.DocumentContext;

/**
 * Reads one stored message's records at indexes already known, for {@link SpoolReader}: its envelope (what a
 * message waiting on disk needs to be delivered again) and its body chunks, walked straight from the mapped file.
 * Static: the caller passes its own tailer, so this owns no state; it is called on the reader's thread (Chronicle
 * tailers are thread-confined) and allocates nothing but the {@link SpooledMessage} an envelope read returns.
 */
final class StoredMessageReads
{
    private StoredMessageReads()
    {
    }

    /**
     * The message {@code queueId} whose envelope record is at {@code startIndex} and whose commit record is at
     * {@code endIndex}, read with {@code tailer} (envelope only; the body stays in the file).
     *
     * @return null when its records are no longer in the spool, or the record there is not its envelope (damaged).
     */
    static SpooledMessage readEnvelope(
        final ExcerptTailer tailer,
        final RecordChecksum checksum,
        final int lane,
        final long queueId,
        final long startIndex,
        final long endIndex,
        final long bodyBytes,
        final int chunkCount)
    {
        if (!tailer.moveToIndex(startIndex))
        {
            return null;
        }
        try (DocumentContext dc = tailer.readingDocument())
        {
            if (!dc.isPresent() || dc.index() != startIndex)
            {
                return null;
            }
            final Bytes<?> bytes = dc.wire().bytes();
            final long start = bytes.readPosition();
            if (!checksum.intact(bytes, start, bytes.readLimit()) || SpoolRecords.queueId(bytes, start) != queueId)
            {
                return null;
            }
            final byte type = SpoolRecords.type(bytes, start);
            if (type != SpoolRecords.START && type != SpoolRecords.START_BODY && type != SpoolRecords.WHOLE)
            {
                return null;
            }
            final SpooledMessage message = new SpooledMessage();
            SpoolRecords.readEnvelope(bytes, start, message);
            message.lane = lane;
            message.startIndex = startIndex;
            message.endIndex = endIndex;
            message.bodyBytes = bodyBytes;
            message.chunkCount = chunkCount;
            message.intactChunks = chunkCount;
            message.intactBodyBytes = bodyBytes;
            return message;
        }
        catch (final RuntimeException ex)
        {
            return null;
        }
    }

    /**
     * Walks the records of {@code message} with {@code tailer} (null when its lane is absent on disk) from its
     * START to its END and hands each body chunk to {@code consumer} straight from the mapped file (no copy to the
     * heap).
     *
     * @return body bytes handed over, equal to {@link SpooledMessage#bodyBytes()}.
     */
    static long readBody(final ExcerptTailer tailer, final SpooledMessage message, final BodyChunkConsumer consumer)
    {
        if (tailer == null || !tailer.moveToIndex(message.startIndex))
        {
            throw new IllegalStateException("records of " + message.queueIdText() + " are no longer in the spool");
        }
        final long queueId = message.queueId;
        long total = 0;
        while (true)
        {
            try (DocumentContext dc = tailer.readingDocument())
            {
                if (!dc.isPresent())
                {
                    throw new IllegalStateException("body of " + message.queueIdText() + " ends before its END");
                }
                final long index = dc.index();
                final Bytes<?> bytes = dc.wire().bytes();
                final long start = bytes.readPosition();
                if (bytes.readRemaining() >= SpoolRecords.HEADER_LENGTH && SpoolRecords.queueId(bytes, start) == queueId)
                {
                    final byte type = SpoolRecords.type(bytes, start);
                    if (type == SpoolRecords.BODY)
                    {
                        final int length = bytes.readInt(start + SpoolRecords.BODY_LENGTH_OFFSET);
                        consumer.onChunk(bytes, start + SpoolRecords.BODY_DATA_OFFSET, length);
                        total += length;
                    }
                    else if (type == SpoolRecords.START_BODY || type == SpoolRecords.WHOLE)
                    {
                        final long lengthAt = SpoolRecords.skipEnvelope(bytes, start);
                        final int length = bytes.readInt(lengthAt);
                        if (length > 0)
                        {
                            consumer.onChunk(bytes, lengthAt + 4, length);
                        }
                        total += length;
                    }
                }
                if (index >= message.endIndex)
                {
                    return total;
                }
            }
        }
    }
}
