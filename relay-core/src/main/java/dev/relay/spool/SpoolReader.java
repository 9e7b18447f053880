package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder;
import net.openhft.chronicle.wire.DocumentContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Reads complete messages back from the spool, in commit order (the order of their END or WHOLE records), for
 * delivery and for {@link SpoolCommand}. Records of several loops interleave; a message is only returned once its
 * END is read, so aborted or still-open messages are never seen.
 * <p>
 * <b>Pending messages.</b> A START is parsed when read and kept until its END. So that a message that never
 * completes (aborted, or the writer died) cannot grow memory forever, a pending entry is dropped when more than
 * {@link #DEFAULT_MAX_PENDING} are pending (oldest first) or when it is older than
 * {@link #DEFAULT_MAX_PENDING_AGE_MS} (by received-at time) than the newest START read; an END whose START was
 * dropped is counted in {@link #orphanEnds()} and skipped. Both limits can be changed with
 * {@link #pendingLimits}; one hour is far above any SMTP DATA phase (RFC 5321 §4.5.3.2 timeouts).
 * <p>
 * <b>Resuming.</b> A reader made with a name by {@link Spool#newReader} saves {@link #resumeIndex()} after each
 * poll in the queue's table store and starts there next time: it is the lowest index from which no message not
 * yet returned is missed (the START of the oldest pending message), so after a restart a few messages may be
 * returned again; delivery's journal removes those duplicates.
 * <p>
 * <b>Damage.</b> Every record's checksum is verified as it is read (see {@link RecordChecksum}); a damaged record
 * is logged and skipped, and a message whose END promises more body chunks than were read intact is logged (queue
 * id, sender, recipient count) and not handed over: what the page cache lost is never delivered as found. Counted
 * in {@link #damagedRecords()} and {@link #damagedMessages()}.
 * <p>
 * Thread: one thread per reader (Chronicle tailers are thread-confined). Allocates a {@link SpooledMessage} and
 * its envelope arrays per message; {@link #readBody} does not allocate.
 */
public final class SpoolReader implements AutoCloseable
{
    public static final int DEFAULT_MAX_PENDING = 100_000;
    public static final long DEFAULT_MAX_PENDING_AGE_MS = 60L * 60 * 1000;
    private static final String RESUME_KEY_PREFIX = "spool.reader.";
    private static final Logger LOG = LoggerFactory.getLogger(SpoolReader.class);

    private final SingleChronicleQueue queue;
    private final boolean ownsQueue;
    private final String resumeKey;
    private final LinkedHashMap<Long, SpooledMessage> pending = new LinkedHashMap<>();
    private ExcerptTailer tailer;
    private ExcerptTailer bodyTailer;
    private ExcerptTailer envelopeTailer;
    private int maxPending = DEFAULT_MAX_PENDING;
    private long maxPendingAgeMs = DEFAULT_MAX_PENDING_AGE_MS;
    private long newestReceivedAtMs;
    private final RecordChecksum checksum = new RecordChecksum();
    private long droppedPending;
    private long orphanEnds;
    private long damagedRecords;
    private long damagedMessages;
    private boolean closed;

    SpoolReader(final SingleChronicleQueue queue, final String name, final boolean ownsQueue)
    {
        this.queue = queue;
        this.ownsQueue = ownsQueue;
        this.resumeKey = name == null ? null : RESUME_KEY_PREFIX + name;
    }

    /**
     * Opens the spool in {@code dir} read-only, without creating anything: works while a relay appends to it
     * (Chronicle supports readers in other processes) and on a stopped relay.
     *
     * @throws NoSuchFileException "no spool at DIR" when the directory or its queue metadata is absent.
     */
    public static SpoolReader open(final Path dir) throws IOException
    {
        final Path absolute = dir.toAbsolutePath().normalize();
        if (!Files.isDirectory(absolute) || !Files.exists(absolute.resolve(SingleChronicleQueue.QUEUE_METADATA_FILE)))
        {
            throw new NoSuchFileException(absolute.toString(), null, "no spool at " + absolute);
        }
        final SingleChronicleQueue queue;
        try
        {
            queue = SingleChronicleQueueBuilder.binary(absolute).readOnly(true).blockSize(Spool.BLOCK_SIZE).build();
        }
        catch (final RuntimeException ex)
        {
            throw new IOException("cannot read spool at " + absolute + ": " + ex, ex);
        }
        return new SpoolReader(queue, null, true);
    }

    /**
     * Starts reading at {@code index} (a {@link #resumeIndex()} saved earlier) instead of the start; before the first
     * {@link #poll}. An index past the last record of its cycle is where the next cycle's records follow; an index
     * whose cycle is gone starts at the beginning.
     */
    public void startAt(final long index)
    {
        final ExcerptTailer tailer = tailer();
        if (index < 0 || tailer.moveToIndex(index) || tailer.index() == index)
        {
            return;
        }
        LOG.warn("spool: index {} to resume from is not there; reading from the start", Long.toHexString(index));
        tailer.toStart();
    }

    /** The index of the last record in the spool; -1 when it is empty. */
    public long lastIndex()
    {
        final long last = queue.lastIndex();
        return last < 0 ? -1 : last;
    }

    /** The index the tailer reads next. */
    public long readIndex()
    {
        return tailer().index();
    }

    /**
     * The message {@code queueId} whose envelope record is at {@code startIndex} and whose commit record is at
     * {@code endIndex}, read back (envelope only; the body stays in the file): what a message waiting on disk needs
     * to be delivered again.
     *
     * @return null when its records are no longer in the spool, or the record there is not its envelope (damaged).
     */
    public SpooledMessage readMessage(
        final long queueId, final long startIndex, final long endIndex, final long bodyBytes, final int chunkCount)
    {
        ExcerptTailer tailer = this.envelopeTailer;
        if (tailer == null)
        {
            tailer = queue.createTailer();
            this.envelopeTailer = tailer;
        }
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

    /** Changes the bounds on pending (started, not yet ended) messages; see the class comment. */
    public SpoolReader pendingLimits(final int maxPending, final long maxPendingAgeMs)
    {
        this.maxPending = maxPending;
        this.maxPendingAgeMs = maxPendingAgeMs;
        return this;
    }

    /**
     * Reads on from the last position, handing each newly complete message to {@code onMessage}.
     *
     * @return how many messages were handed over (at most {@code limit}); 0 when nothing new is there yet.
     */
    public int poll(final Consumer<SpooledMessage> onMessage, final int limit)
    {
        final ExcerptTailer tailer = tailer();
        int found = 0;
        while (found < limit)
        {
            final SpooledMessage complete;
            try (DocumentContext dc = tailer.readingDocument())
            {
                if (!dc.isPresent())
                {
                    break;
                }
                complete = onRecord(dc.wire().bytes(), dc.index());
            }
            if (complete != null)
            {
                found++;
                onMessage.accept(complete);
            }
        }
        if (resumeKey != null)
        {
            queue.tableStorePut(resumeKey, resumeIndex());
        }
        return found;
    }

    /** The lowest index a new reader must start from to miss nothing this reader has not returned yet. */
    public long resumeIndex()
    {
        final long next = tailer().index();
        if (pending.isEmpty())
        {
            return next;
        }
        return Math.min(next, pending.values().iterator().next().startIndex);
    }

    /** Messages whose START was read but not yet their END. */
    public int pendingCount()
    {
        return pending.size();
    }

    /** Pending messages dropped by the bounds. */
    public long droppedPending()
    {
        return droppedPending;
    }

    /**
     * Records skipped because their checksum (or, for unchecked version 1 records, their layout) was wrong. Written by
     * the reader's thread only; other threads (metrics) may read it racily.
     */
    public long damagedRecords()
    {
        return damagedRecords;
    }

    /** Complete messages not handed over because some of their records were damaged. */
    public long damagedMessages()
    {
        return damagedMessages;
    }

    /** END records whose START was not seen (dropped, damaged, or before this reader's start). */
    public long orphanEnds()
    {
        return orphanEnds;
    }

    /**
     * Walks the records of {@code message} from its START to its END and hands each body chunk to
     * {@code consumer} straight from the mapped file (no copy to the heap).
     *
     * @return body bytes handed over, equal to {@link SpooledMessage#bodyBytes()}.
     */
    public long readBody(final SpooledMessage message, final BodyChunkConsumer consumer)
    {
        final ExcerptTailer tailer = bodyTailer();
        if (!tailer.moveToIndex(message.startIndex))
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

    /** The whole body on the heap: for tests and the CLI only. */
    public byte[] readBodyToArray(final SpooledMessage message)
    {
        if (message.bodyBytes > Integer.MAX_VALUE - 16)
        {
            throw new IllegalArgumentException("body too large for an array: " + message.bodyBytes);
        }
        final byte[] body = new byte[(int)message.bodyBytes];
        final int[] position = new int[1];
        readBody(message, (bytes, offset, length) ->
        {
            bytes.read(offset, body, position[0], length);
            position[0] += length;
        });
        return body;
    }

    private SpooledMessage onRecord(final Bytes<?> bytes, final long index)
    {
        final long start = bytes.readPosition();
        if (!checksum.intact(bytes, start, bytes.readLimit()))
        {
            onDamagedRecord(index, "checksum mismatch");
            return null;
        }
        try
        {
            return onIntactRecord(bytes, start, index);
        }
        catch (final RuntimeException ex)
        {
            // only version 1 records (no checksum) can get here with garbage in them
            onDamagedRecord(index, ex.getMessage());
            return null;
        }
    }

    private SpooledMessage onIntactRecord(final Bytes<?> bytes, final long start, final long index)
    {
        switch (SpoolRecords.type(bytes, start))
        {
            case SpoolRecords.START:
            case SpoolRecords.START_BODY:
            {
                final SpooledMessage message = new SpooledMessage();
                final long lengthAt = SpoolRecords.readEnvelope(bytes, start, message);
                if (SpoolRecords.type(bytes, start) == SpoolRecords.START_BODY)
                {
                    countIntactChunk(message, bytes.readInt(lengthAt));
                }
                message.startIndex = index;
                onStart(message);
                return null;
            }
            case SpoolRecords.BODY:
            {
                final SpooledMessage message = pending.get(SpoolRecords.queueId(bytes, start));
                if (message != null)
                {
                    countIntactChunk(message, bytes.readInt(start + SpoolRecords.BODY_LENGTH_OFFSET));
                }
                return null;
            }
            case SpoolRecords.WHOLE:
            {
                final SpooledMessage message = new SpooledMessage();
                final long lengthAt = SpoolRecords.readEnvelope(bytes, start, message);
                message.bodyBytes = bytes.readInt(lengthAt);
                message.chunkCount = message.bodyBytes > 0 ? 1 : 0;
                message.startIndex = index;
                message.endIndex = index;
                return message;
            }
            case SpoolRecords.END:
            {
                final SpooledMessage message = pending.remove(SpoolRecords.queueId(bytes, start));
                if (message == null)
                {
                    orphanEnds++;
                    return null;
                }
                message.bodyBytes = bytes.readLong(start + SpoolRecords.END_TOTAL_BYTES_OFFSET);
                message.chunkCount = bytes.readInt(start + SpoolRecords.END_CHUNK_COUNT_OFFSET);
                message.endIndex = index;
                if (message.intactChunks != message.chunkCount || message.intactBodyBytes != message.bodyBytes)
                {
                    onDamagedMessage(message);
                    return null;
                }
                return message;
            }
            default:
                onDamagedRecord(index, "unknown record type " + SpoolRecords.type(bytes, start));
                return null;
        }
    }

    private static void countIntactChunk(final SpooledMessage message, final int length)
    {
        if (length > 0)
        {
            message.intactChunks++;
            message.intactBodyBytes += length;
        }
    }

    private void onDamagedRecord(final long index, final String why)
    {
        damagedRecords++;
        LOG.error("spool: record {} (cycle {}, #{}) is damaged ({}): skipped", Long.toHexString(index),
            queue.rollCycle().toCycle(index), queue.rollCycle().toSequenceNumber(index), why);
    }

    private void onDamagedMessage(final SpooledMessage message)
    {
        damagedMessages++;
        LOG.error("spool: message {} from <{}> to {} recipient(s) lost records: {} of {} body chunks, {} of {} bytes"
                + " intact; not delivered", message.queueIdText(),
            new String(message.reversePath, java.nio.charset.StandardCharsets.UTF_8), message.recipientArray.length,
            message.intactChunks, message.chunkCount, message.intactBodyBytes, message.bodyBytes);
    }

    private void onStart(final SpooledMessage message)
    {
        pending.put(message.queueId, message);
        newestReceivedAtMs = Math.max(newestReceivedAtMs, message.receivedAtMs);
        final long oldestAllowedMs = newestReceivedAtMs - maxPendingAgeMs;
        final Iterator<Map.Entry<Long, SpooledMessage>> it = pending.entrySet().iterator();
        while (it.hasNext())
        {
            final SpooledMessage eldest = it.next().getValue();
            if (pending.size() > maxPending || eldest.receivedAtMs < oldestAllowedMs)
            {
                it.remove();
                droppedPending++;
            }
            else
            {
                break;
            }
        }
    }

    private ExcerptTailer tailer()
    {
        ExcerptTailer tailer = this.tailer;
        if (tailer == null)
        {
            tailer = queue.createTailer();
            if (resumeKey != null)
            {
                final long index = queue.tableStoreGet(resumeKey);
                if (index > 0 && !tailer.moveToIndex(index))
                {
                    tailer.toStart();
                }
            }
            this.tailer = tailer;
        }
        return tailer;
    }

    private ExcerptTailer bodyTailer()
    {
        ExcerptTailer tailer = this.bodyTailer;
        if (tailer == null)
        {
            tailer = queue.createTailer();
            this.bodyTailer = tailer;
        }
        return tailer;
    }

    /** Closes from the owning thread; closes the queue too when opened read-only with {@link #open}. */
    @Override
    public void close()
    {
        if (closed)
        {
            return;
        }
        closed = true;
        if (tailer != null)
        {
            tailer.close();
        }
        if (bodyTailer != null)
        {
            bodyTailer.close();
        }
        if (envelopeTailer != null)
        {
            envelopeTailer.close();
        }
        if (ownsQueue)
        {
            queue.close();
        }
    }

    void closeFromOwner()
    {
        if (tailer != null)
        {
            tailer.singleThreadedCheckReset();
        }
        if (bodyTailer != null)
        {
            bodyTailer.singleThreadedCheckReset();
        }
        if (envelopeTailer != null)
        {
            envelopeTailer.singleThreadedCheckReset();
        }
        close();
    }
}
