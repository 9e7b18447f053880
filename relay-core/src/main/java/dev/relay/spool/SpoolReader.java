package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.wire.DocumentContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Reads complete messages back from the spool, for delivery and for {@link SpoolCommand}: every lane
 * ({@link SpoolLanes}, one Chronicle queue per inbound loop) with a tailer of its own, each lane in commit order (the
 * order of its END or WHOLE records); lanes are taken in turn, so there is no order across them. Records of a
 * lane's messages may interleave (the injector's requeue copies with its DSNs); a message is only returned once its
 * END is read, so aborted or still-open messages are never seen. A position is a lane and an index in it: the
 * {@code long[]} positions below are per lane (a lane past an array's end, or -1 in it, is read from its start).
 * <p>
 * <b>Pending messages.</b> A START is parsed when read and kept until its END. So that a message that never
 * completes (aborted, or the writer died) cannot grow memory forever, a pending entry is dropped when more than
 * {@link #DEFAULT_MAX_PENDING} are pending (oldest first) or when it is older than
 * {@link #DEFAULT_MAX_PENDING_AGE_MS} (by received-at time) than the newest START read; an END whose START was
 * dropped is counted in {@link #orphanEnds()} and skipped. Both limits can be changed with
 * {@link #pendingLimits}; one hour is far above any SMTP DATA phase (RFC 5321 §4.5.3.2 timeouts).
 * <p>
 * <b>Resuming.</b> A reader made with a name by {@link Spool#newReader} saves each lane's resume index after
 * each poll in that lane's table store and starts there next time: it is the lowest index from which no message not
 * yet returned is missed (the START of the oldest pending message), so after a restart a few messages may be
 * returned again; delivery's journal removes those duplicates.
 * <p>
 * <b>Damage.</b> Every record's checksum is verified as it is read (see {@link RecordChecksum}); a damaged record
 * is logged and skipped, and a message whose END promises more body chunks than were read intact is logged (queue
 * id, sender, recipient count) and not handed over: what the page cache lost is never delivered as found. Counted
 * in {@link #damagedRecords()} and {@link #damagedMessages()}.
 * <p>
 * <b>One state machine</b>, per message, driven by the records {@link #poll} reads from each lane's tailer:
 * <pre>
 *   (unseen) --START / START_BODY--> PENDING --BODY (chunk counted)--> PENDING
 *   PENDING  --END, every chunk intact--> handed over      PENDING --END, chunks missing--> DAMAGED (logged)
 *   PENDING  --past a pending bound--> DROPPED             (unseen) --WHOLE--> handed over
 *   (unseen) --END--> orphan (counted)                     any record --bad checksum--> skipped (logged)
 * </pre>
 * What is not that machine lives beside it: reading a known message's envelope and body again
 * ({@link StoredMessageReads}), resume indexes and cycles ({@link ReaderPositions}), opening a spool read-only
 * ({@link ReadOnlyLanes}).
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

    private static final ExcerptTailer[] NO_TAILERS = new ExcerptTailer[0];

    private final SpoolLanes lanes;
    private final boolean ownsQueue;
    private final String resumeKey;
    private final LinkedHashMap<Long, SpooledMessage> pending = new LinkedHashMap<>();
    /** Per lane: the tailer that polls, the one {@link #readBody} walks, the one {@link #readMessage} moves. */
    private ExcerptTailer[] tailers = NO_TAILERS;
    private ExcerptTailer[] bodyTailers = NO_TAILERS;
    private ExcerptTailer[] envelopeTailers = NO_TAILERS;
    /** The lane a poll starts with, turned every poll so that no lane waits behind a busy one. */
    private int firstLane;
    /** Per lane, the {@link SpoolLanes#cleanUps()} its tailer was last checked after. */
    private long[] checkedCleanUps = new long[0];
    private int maxPending = DEFAULT_MAX_PENDING;
    private long maxPendingAgeMs = DEFAULT_MAX_PENDING_AGE_MS;
    private long newestReceivedAtMs;
    private final RecordChecksum checksum = new RecordChecksum();
    private long droppedPending;
    private long orphanEnds;
    private long damagedRecords;
    private long damagedMessages;
    private boolean closed;

    SpoolReader(final SpoolLanes lanes, final String name, final boolean ownsQueue)
    {
        this.lanes = lanes;
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
        return new SpoolReader(ReadOnlyLanes.open(dir), null, true);
    }

    /**
     * Starts reading each lane at its index in {@code indexes} (the {@link #resumeIndexes()} saved earlier; -1, or
     * a lane past the end, from its start) instead of the start; before the first {@link #poll}. An index past the
     * last record of its cycle is where the next cycle's records follow; an index whose cycle is gone starts at the
     * beginning.
     */
    public void startAt(final long[] indexes)
    {
        for (int lane = 0; lane < indexes.length && lane < lanes.count(); lane++)
        {
            final ExcerptTailer tailer = tailer(lane);
            if (tailer != null)
            {
                ReaderPositions.moveTo(tailer, lane, indexes[lane]);
            }
        }
    }

    /** The lanes read. */
    public int laneCount()
    {
        return lanes.count();
    }

    /** Per lane, the index of its last record; -1 when it is empty. */
    public long[] lastIndexes()
    {
        return ReaderPositions.lastIndexes(lanes);
    }

    /** Per lane, the index its tailer reads next (-1 for a lane absent on disk). */
    public long[] readIndexes()
    {
        final long[] read = new long[lanes.count()];
        for (int lane = 0; lane < read.length; lane++)
        {
            final ExcerptTailer tailer = tailer(lane);
            read[lane] = tailer == null ? -1 : tailer.index();
        }
        return read;
    }

    /** Whether every lane's tailer is past its index in {@code ends} (-1: nothing to pass). */
    public boolean readPast(final long[] ends)
    {
        for (int lane = 0; lane < ends.length && lane < lanes.count(); lane++)
        {
            final ExcerptTailer tailer = tailer(lane);
            if (ends[lane] >= 0 && tailer != null && tailer.index() <= ends[lane])
            {
                return false;
            }
        }
        return true;
    }

    /**
     * The message {@code queueId} whose envelope record is at {@code startIndex} and whose commit record is at
     * {@code endIndex}, read back (envelope only; the body stays in the file): what a message waiting on disk needs
     * to be delivered again.
     *
     * @return null when its records are no longer in the spool, or the record there is not its envelope (damaged).
     */
    public SpooledMessage readMessage(
        final int lane,
        final long queueId,
        final long startIndex,
        final long endIndex,
        final long bodyBytes,
        final int chunkCount)
    {
        if (lane >= envelopeTailers.length)
        {
            envelopeTailers = java.util.Arrays.copyOf(envelopeTailers, Math.max(lane + 1, lanes.count()));
        }
        ExcerptTailer tailer = envelopeTailers[lane];
        if (tailer == null)
        {
            final SingleChronicleQueue queue = lanes.queue(lane);
            if (queue == null)
            {
                return null;
            }
            tailer = queue.createTailer();
            envelopeTailers[lane] = tailer;
        }
        return StoredMessageReads.readEnvelope(
            tailer, checksum, lane, queueId, startIndex, endIndex, bodyBytes, chunkCount);
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
        final int laneCount = lanes.count();
        final int first = firstLane < laneCount ? firstLane : 0;
        firstLane = first + 1 < laneCount ? first + 1 : 0;
        int found = 0;
        for (int i = 0; i < laneCount && found < limit; i++)
        {
            final int lane = (first + i) % laneCount;
            final ExcerptTailer tailer = tailer(lane);
            if (tailer != null)
            {
                final int polled = poll(lane, tailer, onMessage, limit - found);
                if (polled == 0 && cleanUpSinceChecked(lane) && overtakenByCleanUp(lane, tailer))
                {
                    found += poll(lane, tailer, onMessage, limit - found);
                }
                found += polled;
            }
        }
        if (resumeKey != null)
        {
            final long[] resume = resumeIndexes();
            for (int lane = 0; lane < resume.length; lane++)
            {
                final SingleChronicleQueue queue = lanes.queue(lane);
                if (queue != null)
                {
                    queue.tableStorePut(resumeKey, resume[lane]);
                }
            }
        }
        return found;
    }

    private int poll(
        final int lane, final ExcerptTailer tailer, final Consumer<SpooledMessage> onMessage, final int limit)
    {
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
                complete = onRecord(dc.wire().bytes(), lane, dc.index());
            }
            if (complete != null)
            {
                found++;
                onMessage.accept(complete);
            }
        }
        return found;
    }

    /**
     * Whether the cycle file {@code tailer} read to its end was deleted (its lane was read to the end, so
     * {@link #resumeCycle()} let the clean-up take it): a tailer there does not find the lane's later cycles, so it
     * starts over at the first cycle on disk, which holds only records written after the ones it read. Checked
     * once per lane after each clean-up that deleted files (only a deletion strands a tailer), not every poll.
     */
    private boolean cleanUpSinceChecked(final int lane)
    {
        if (lane >= checkedCleanUps.length)
        {
            checkedCleanUps = java.util.Arrays.copyOf(checkedCleanUps, Math.max(lane + 1, lanes.count()));
        }
        final long cleanUps = lanes.cleanUps();
        if (checkedCleanUps[lane] == cleanUps)
        {
            return false;
        }
        checkedCleanUps[lane] = cleanUps;
        return true;
    }

    private boolean overtakenByCleanUp(final int lane, final ExcerptTailer tailer)
    {
        return ReaderPositions.overtakenByCleanUp(lanes.queue(lane), tailer);
    }

    /**
     * Per lane, the lowest index a new reader must start from to miss nothing this reader has not returned yet (-1
     * for a lane absent on disk).
     */
    public long[] resumeIndexes()
    {
        return ReaderPositions.resumeIndexes(readIndexes(), pending.values());
    }

    /**
     * The oldest cycle a new reader would start in: the lowest cycle of {@link #resumeIndexes()} over the lanes that
     * hold something not yet returned (a pending message, or records not yet read); a lane read to its end counts
     * as the cycle before the current one, not as its tailer's: a lane nobody writes any more (fewer inbound loops
     * than before) must not keep every later cycle of the other lanes on disk, and a record a writer began in the
     * last cycle just before it rolled (not yet visible as the lane's last index) must not lose its cycle.
     */
    public int resumeCycle()
    {
        return ReaderPositions.resumeCycle(lanes, resumeIndexes(), lastIndexes(), pending.values());
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
        return StoredMessageReads.readBody(bodyTailer(message.lane), message, consumer);
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

    private SpooledMessage onRecord(final Bytes<?> bytes, final int lane, final long index)
    {
        final long start = bytes.readPosition();
        if (!checksum.intact(bytes, start, bytes.readLimit()))
        {
            onDamagedRecord(lane, index, "checksum mismatch");
            return null;
        }
        try
        {
            return onIntactRecord(bytes, start, lane, index);
        }
        catch (final RuntimeException ex)
        {
            // only version 1 records (no checksum) can get here with garbage in them
            onDamagedRecord(lane, index, ex.getMessage());
            return null;
        }
    }

    private SpooledMessage onIntactRecord(final Bytes<?> bytes, final long start, final int lane, final long index)
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
                message.lane = lane;
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
                message.lane = lane;
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
                onDamagedRecord(lane, index, "unknown record type " + SpoolRecords.type(bytes, start));
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

    private void onDamagedRecord(final int lane, final long index, final String why)
    {
        damagedRecords++;
        final SingleChronicleQueue queue = lanes.queue(lane);
        LOG.error("spool: record {} (lane {}, cycle {}, #{}) is damaged ({}): skipped", Long.toHexString(index), lane,
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

    /** Lane {@code lane}'s polling tailer, made at first use (resuming where a named reader left it); null when the
     * lane is absent on disk. */
    private ExcerptTailer tailer(final int lane)
    {
        if (lane >= tailers.length)
        {
            tailers = java.util.Arrays.copyOf(tailers, Math.max(lane + 1, lanes.count()));
        }
        ExcerptTailer tailer = tailers[lane];
        if (tailer == null)
        {
            final SingleChronicleQueue queue = lanes.queue(lane);
            if (queue == null)
            {
                return null;
            }
            tailer = queue.createTailer();
            if (resumeKey != null)
            {
                final long index = queue.tableStoreGet(resumeKey);
                if (index > 0 && !tailer.moveToIndex(index))
                {
                    tailer.toStart();
                }
            }
            tailers[lane] = tailer;
        }
        return tailer;
    }

    private ExcerptTailer bodyTailer(final int lane)
    {
        if (lane >= bodyTailers.length)
        {
            bodyTailers = java.util.Arrays.copyOf(bodyTailers, Math.max(lane + 1, lanes.count()));
        }
        ExcerptTailer tailer = bodyTailers[lane];
        if (tailer == null)
        {
            final SingleChronicleQueue queue = lanes.queue(lane);
            if (queue == null)
            {
                return null;
            }
            tailer = queue.createTailer();
            bodyTailers[lane] = tailer;
        }
        return tailer;
    }

    /** Closes from the owning thread; closes the queues too when opened read-only with {@link #open}. */
    @Override
    public void close()
    {
        if (closed)
        {
            return;
        }
        closed = true;
        for (final ExcerptTailer[] each : new ExcerptTailer[][] {tailers, bodyTailers, envelopeTailers})
        {
            for (final ExcerptTailer tailer : each)
            {
                if (tailer != null)
                {
                    tailer.close();
                }
            }
        }
        if (ownsQueue)
        {
            lanes.closeAll();
        }
    }

    void closeFromOwner()
    {
        for (final ExcerptTailer[] each : new ExcerptTailer[][] {tailers, bodyTailers, envelopeTailers})
        {
            for (final ExcerptTailer tailer : each)
            {
                if (tailer != null)
                {
                    tailer.singleThreadedCheckReset();
                }
            }
        }
        close();
    }
}
