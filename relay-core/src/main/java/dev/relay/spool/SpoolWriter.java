package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.MessageSink;
import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.wire.DocumentContext;
import org.jctools.queues.MessagePassingQueue;
import org.jctools.queues.SpscArrayQueue;

import java.io.File;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * The spool's {@link MessageSink} for one net loop: appends the records of {@link SpoolRecords} to the loop's own
 * lane of the spool ({@link SpoolLanes}: no other loop takes its write lock) with the loop's own Chronicle appender
 * (created lazily on the loop thread at first use) and hands commits to the {@link SpoolSyncer}.
 * <p>
 * Per message: {@code begin} only checks (cached) disk space and takes a pooled transaction state; the envelope is
 * written with the first body bytes. Body bytes of a message not yet started are staged in one writer-wide
 * {@value #STAGE_BYTES}-byte buffer, so a small message whose body arrives before {@code complete} becomes one
 * WHOLE excerpt; when the stage is needed by another message or overflows, it is written out as START_BODY.
 * Larger appends go straight from the read buffer into the mapped file (one memcpy) as START_BODY or BODY
 * records of at most {@link SpoolRecords#MAX_CHUNK_BYTES}. Every record is a complete excerpt written in one go,
 * ending with its {@link RecordChecksum} (computed from the record's sources, never read back); a failed write
 * is rolled back and the call returns false.
 * <p>
 * Commit: {@link SyncMode#NONE} calls the listener inside {@code complete} after the END append.
 * {@link SyncMode#ALWAYS} hands each completed message to the syncer at once; {@link SyncMode#BATCH} collects the
 * pass's completions and hands them over in one request at {@link #endOfPass()} (group commit). The syncer posts
 * the request back and wakes the loop with the {@link LoopWaker}; the loop calls {@link #drainCompletions()}
 * every pass, which calls the listeners on the loop thread.
 * <p>
 * <b>One state machine</b>, per message, its state in a pooled {@link WriteTx}:
 * <pre>
 *   begin --> BEGUN
 *   BEGUN   --append of at most STAGE_BYTES--> STAGED (body in the stage)
 *   BEGUN   --larger append--> STARTED (START_BODY, then BODY records)
 *   STAGED  --its append overflows, or another message needs the stage--> STARTED (stage written as START_BODY)
 *   STARTED --append--> STARTED (BODY records)
 *   BEGUN or STAGED --complete--> WRITTEN (one WHOLE record);   STARTED --complete--> WRITTEN (END record)
 *   any --failed write--> FAILED (rolled back; later calls return false);   any --abort--> released
 *   WRITTEN --NONE--> COMMITTED (listener called in complete)
 *   WRITTEN --ALWAYS at once, BATCH at endOfPass--> WITH THE SYNCER --drainCompletions--> COMMITTED
 * </pre>
 * What is not that machine lives beside it: composing and checksumming each record ({@link RecordEncoder}).
 * <p>
 * Thread: every method on the owning loop thread only. No allocation per message in steady state (transaction
 * states and sync requests are pooled; their arrays grow to the largest group and stay).
 */
public final class SpoolWriter implements MessageSink
{
    /** Largest body a message may stage before its first record is written. */
    public static final int STAGE_BYTES = 16 * 1024;
    private static final int NO_CYCLE = Integer.MIN_VALUE;
    /** Excerpt header, record header and length fields, rounded up: what a record costs beyond its payload. */
    private static final int RECORD_OVERHEAD = 64;
    private static final int COMPLETION_CAPACITY = 16 * 1024;

    private final Spool spool;
    /** The spool lane (Chronicle queue) this writer alone appends to: {@link SpoolLanes}. */
    private final int lane;
    private final SingleChronicleQueue queue;
    private final SpoolSyncer syncer;
    private final SyncMode syncMode;
    private final LoopWaker waker;
    private final SpscArrayQueue<SyncRequest> completions = new SpscArrayQueue<>(COMPLETION_CAPACITY);
    private final MessagePassingQueue.Consumer<SyncRequest> onCompletion = this::onCompletion;
    private final ArrayDeque<SyncRequest> freeRequests = new ArrayDeque<>();
    private final ArrayDeque<WriteTx> freeTxs = new ArrayDeque<>();
    /**
     * Off the heap: Chronicle copies a direct buffer into the mapped file with one native memcpy, an array with a
     * Java loop (on Java 9+), which was a tenth of a loop's CPU at 1 KiB messages.
     */
    private final ByteBuffer stage = ByteBuffer.allocateDirect(STAGE_BYTES);
    private final RecordChecksum checksum = new RecordChecksum();
    /**
     * A record's header and envelope are composed here, checksummed, then copied into the mapped file: never read
     * back from it. (Chronicle may move the appender's mapping to the next chunk while a record is being written; an
     * absolute read of the record's start then touches memory no longer mapped — measured: SIGSEGV once the spool
     * passed its first 16 MiB chunk.) Grows to the largest envelope and stays.
     */
    private final Bytes<byte[]> head = Bytes.allocateElasticOnHeap(4096);
    private int stageLength;
    private WriteTx stageOwner;
    private InboundMessage stageMessage;
    private ExcerptAppender appender;
    private SyncRequest collecting;
    private File[] dirtyFiles = new File[4];
    private int dirtyFileCount;
    private int dirtyCycle = NO_CYCLE;
    private int drainedMessages;
    private long listenerErrors;
    private long writeErrors;
    /** Written by the syncer thread only. */
    long wakeRound;
    /** Where the last message {@link #complete}d was written: its first record, its commit record, its chunks. */
    long lastStartIndex = -1;
    long lastEndIndex = -1;
    int lastChunkCount;

    SpoolWriter(
        final Spool spool,
        final int lane,
        final SingleChronicleQueue queue,
        final SpoolSyncer syncer,
        final SyncMode syncMode,
        final LoopWaker waker)
    {
        this.spool = spool;
        this.lane = lane;
        this.queue = queue;
        this.syncer = syncer;
        this.syncMode = syncMode;
        this.waker = waker;
    }

    @Override
    public boolean begin(final InboundMessage message)
    {
        if (!spool.hasRoomForMail() || SpoolRecords.envelopeLength(message) > SpoolRecords.MAX_ENVELOPE_BYTES)
        {
            return false;
        }
        WriteTx tx = freeTxs.pollFirst();
        if (tx == null)
        {
            tx = new WriteTx();
        }
        message.sinkState(tx);
        return true;
    }

    @Override
    public boolean append(final InboundMessage message, final ByteBuffer buffer, final int from, final int to)
    {
        if (!(message.sinkState() instanceof WriteTx))
        {
            return false;
        }
        final WriteTx tx = (WriteTx)message.sinkState();
        if (tx.failed)
        {
            return false;
        }
        int position = from;
        final int length = to - from;
        if (length <= 0)
        {
            return true;
        }
        if (!tx.started)
        {
            if (stageOwner == tx)
            {
                if (stageLength + length <= STAGE_BYTES)
                {
                    stage.put(stageLength, buffer, from, length);
                    stageLength += length;
                    return true;
                }
                if (!flushStage())
                {
                    return false;
                }
            }
            else if (length <= STAGE_BYTES)
            {
                if (stageOwner != null)
                {
                    flushStage();
                }
                stageOwner = tx;
                stageMessage = message;
                stage.put(0, buffer, from, length);
                stageLength = length;
                return true;
            }
            else
            {
                final int first = Math.min(length, SpoolRecords.MAX_CHUNK_BYTES);
                if (!writeEnvelopeRecord(SpoolRecords.START_BODY, message, tx, buffer, position, first))
                {
                    return false;
                }
                position += first;
            }
        }
        while (position < to)
        {
            final int chunk = Math.min(to - position, SpoolRecords.MAX_CHUNK_BYTES);
            if (!writeBody(message.queueId(), tx, buffer, position, chunk))
            {
                return false;
            }
            position += chunk;
        }
        return true;
    }

    @Override
    public boolean complete(final InboundMessage message, final CommitListener listener)
    {
        if (!(message.sinkState() instanceof WriteTx))
        {
            return false;
        }
        final WriteTx tx = (WriteTx)message.sinkState();
        boolean written = !tx.failed;
        if (written)
        {
            if (!tx.started)
            {
                written = writeEnvelopeRecord(SpoolRecords.WHOLE, message, tx, null, 0, 0);
            }
            else
            {
                written = writeEnd(message.queueId(), tx);
            }
        }
        if (written)
        {
            lastStartIndex = tx.startIndex;
            lastEndIndex = appender().lastIndexAppended();
            lastChunkCount = tx.chunkCount;
        }
        release(message, tx);
        if (!written)
        {
            return false;
        }
        if (syncMode == SyncMode.NONE)
        {
            listener.onCommitted(message, true);
            spool.onNewMail();
            return true;
        }
        if (collecting == null)
        {
            collecting = takeRequest();
        }
        collecting.add(message, listener);
        if (syncMode == SyncMode.ALWAYS)
        {
            handOver();
        }
        return true;
    }

    @Override
    public void abort(final InboundMessage message)
    {
        if (message.sinkState() instanceof WriteTx)
        {
            release(message, (WriteTx)message.sinkState());
        }
    }

    /**
     * Ends the loop's pass: in {@link SyncMode#BATCH} hands the pass's completed messages to the syncer as one
     * group. Call once per loop pass, after the sessions ran. Cheap when there is nothing to hand over.
     */
    public void endOfPass()
    {
        if (collecting != null)
        {
            handOver();
        }
    }

    /** Whether the syncer has posted completions not yet drained; cheap, for the loop's check before parking. */
    public boolean hasCompletions()
    {
        return !completions.isEmpty();
    }

    /**
     * Calls the commit listeners of messages the syncer made durable, on this (the loop) thread.
     *
     * @return how many messages were completed.
     */
    public int drainCompletions()
    {
        drainedMessages = 0;
        completions.drain(onCompletion);
        if (collecting != null && syncMode == SyncMode.ALWAYS)
        {
            handOver();
        }
        if (drainedMessages > 0)
        {
            spool.onNewMail();
        }
        return drainedMessages;
    }

    /** The spool lane this writer appends to (its own Chronicle queue). */
    public int lane()
    {
        return lane;
    }

    /** Listener exceptions caught while draining (each is counted, the others still run). */
    public long listenerErrors()
    {
        return listenerErrors;
    }

    /** Appends that failed and were rolled back. */
    public long writeErrors()
    {
        return writeErrors;
    }

    void postCompletion(final SyncRequest request)
    {
        while (!completions.offer(request))
        {
            Thread.onSpinWait();
        }
    }

    void wakeLoop()
    {
        waker.wakeup();
    }

    void closeAppender()
    {
        final ExcerptAppender appender = this.appender;
        if (appender != null)
        {
            appender.singleThreadedCheckReset();
            appender.close();
        }
    }

    private void onCompletion(final SyncRequest request)
    {
        final boolean durable = request.durable;
        for (int i = 0, n = request.count; i < n; i++)
        {
            try
            {
                request.listeners[i].onCommitted(request.messages[i], durable);
            }
            catch (final RuntimeException ex)
            {
                listenerErrors++;
            }
        }
        drainedMessages += request.count;
        request.clear();
        freeRequests.addLast(request);
    }

    private void handOver()
    {
        final SyncRequest request = collecting;
        for (int i = 0; i < dirtyFileCount; i++)
        {
            request.addFile(dirtyFiles[i]);
        }
        if (syncer.offer(request))
        {
            collecting = null;
            for (int i = 0; i < dirtyFileCount; i++)
            {
                dirtyFiles[i] = null;
            }
            dirtyFileCount = 0;
            dirtyCycle = NO_CYCLE;
        }
        // else: the syncer's queue is full; retried at the next endOfPass/drainCompletions.
    }

    private SyncRequest takeRequest()
    {
        final SyncRequest request = freeRequests.pollFirst();
        return request != null ? request : new SyncRequest(this);
    }

    private void release(final InboundMessage message, final WriteTx tx)
    {
        if (stageOwner == tx)
        {
            stageOwner = null;
            stageMessage = null;
            stageLength = 0;
        }
        message.sinkState(null);
        tx.reset();
        freeTxs.addLast(tx);
    }

    private ExcerptAppender appender()
    {
        ExcerptAppender appender = this.appender;
        if (appender == null)
        {
            appender = queue.createAppender();
            this.appender = appender;
        }
        return appender;
    }

    /** Writes the staged body of {@link #stageOwner} as its START_BODY record and frees the stage. */
    private boolean flushStage()
    {
        final boolean ok = writeEnvelopeRecord(SpoolRecords.START_BODY, stageMessage, stageOwner, null, 0, 0);
        stageOwner = null;
        stageMessage = null;
        stageLength = 0;
        return ok;
    }

    /**
     * Writes START_BODY or WHOLE: the envelope, then the body from {@code buffer[from, from + length)}, or from
     * the stage when {@code buffer} is null and this transaction owns it.
     */
    private boolean writeEnvelopeRecord(
        final byte type,
        final InboundMessage message,
        final WriteTx tx,
        final ByteBuffer buffer,
        final int from,
        final int length)
    {
        final int bodyLength = buffer != null ? length : (stageOwner == tx ? stageLength : 0);
        if (!spool.reserve(lane, RECORD_OVERHEAD + SpoolRecords.envelopeLength(message) + bodyLength))
        {
            return failed(tx);
        }
        final ExcerptAppender appender = appender();
        try (DocumentContext dc = appender.writingDocument())
        {
            try
            {
                final Bytes<?> bytes = dc.wire().bytes();
                final long start = bytes.writePosition();
                if (!spool.ensureAllocated(lane, appender, start,
                    RECORD_OVERHEAD + SpoolRecords.envelopeLength(message) + bodyLength))
                {
                    dc.rollbackOnClose();
                    return failed(tx);
                }
                RecordEncoder.writeEnvelopeRecord(bytes, head, checksum, type, message, bodyLength, buffer, from, stage);
            }
            catch (final Throwable t)
            {
                dc.rollbackOnClose();
                throw t;
            }
        }
        catch (final RuntimeException | AssertionError ex)
        {
            // AssertionError too: Chronicle asserts on a damaged cycle tail (run with -ea); a failed append is a
            // 452 for this message, never a dead loop thread
            return failed(tx);
        }
        tx.started = true;
        tx.startIndex = appender.lastIndexAppended();
        tx.bodyBytes += bodyLength;
        if (bodyLength > 0)
        {
            tx.chunkCount++;
        }
        markDirty(appender);
        return true;
    }

    private boolean writeBody(final long queueId, final WriteTx tx, final ByteBuffer buffer, final int from, final int length)
    {
        if (!spool.reserve(lane, RECORD_OVERHEAD + length))
        {
            return failed(tx);
        }
        final ExcerptAppender appender = appender();
        try (DocumentContext dc = appender.writingDocument())
        {
            try
            {
                final Bytes<?> bytes = dc.wire().bytes();
                final long start = bytes.writePosition();
                if (!spool.ensureAllocated(lane, appender, start, RECORD_OVERHEAD + length))
                {
                    dc.rollbackOnClose();
                    return failed(tx);
                }
                RecordEncoder.writeBody(bytes, head, checksum, queueId, buffer, from, length);
            }
            catch (final Throwable t)
            {
                dc.rollbackOnClose();
                throw t;
            }
        }
        catch (final RuntimeException | AssertionError ex)
        {
            return failed(tx);
        }
        tx.bodyBytes += length;
        tx.chunkCount++;
        markDirty(appender);
        return true;
    }

    private boolean writeEnd(final long queueId, final WriteTx tx)
    {
        if (!spool.reserve(lane, RECORD_OVERHEAD))
        {
            return failed(tx);
        }
        final ExcerptAppender appender = appender();
        try (DocumentContext dc = appender.writingDocument())
        {
            try
            {
                final Bytes<?> bytes = dc.wire().bytes();
                final long start = bytes.writePosition();
                if (!spool.ensureAllocated(lane, appender, start, RECORD_OVERHEAD))
                {
                    dc.rollbackOnClose();
                    return failed(tx);
                }
                RecordEncoder.writeEnd(bytes, head, checksum, queueId, tx.bodyBytes, tx.chunkCount);
            }
            catch (final Throwable t)
            {
                dc.rollbackOnClose();
                throw t;
            }
        }
        catch (final RuntimeException | AssertionError ex)
        {
            return failed(tx);
        }
        markDirty(appender);
        return true;
    }

    private boolean failed(final WriteTx tx)
    {
        tx.failed = true;
        writeErrors++;
        return false;
    }

    /** Remembers the cycle file just written, for the next sync request (not needed with NONE). */
    private void markDirty(final ExcerptAppender appender)
    {
        if (syncMode == SyncMode.NONE)
        {
            return;
        }
        final int cycle = appender.cycle();
        if (cycle != dirtyCycle)
        {
            dirtyCycle = cycle;
            final File file = appender.currentFile();
            for (int i = 0; i < dirtyFileCount; i++)
            {
                if (dirtyFiles[i].equals(file))
                {
                    return;
                }
            }
            if (dirtyFileCount == dirtyFiles.length)
            {
                dirtyFiles = java.util.Arrays.copyOf(dirtyFiles, dirtyFileCount * 2);
            }
            dirtyFiles[dirtyFileCount++] = file;
        }
    }
}
