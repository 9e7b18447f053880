package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder;
import net.openhft.chronicle.wire.DocumentContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * What delivery did with each recipient, in a second Chronicle queue beside the spool ({@code queue.dir/journal}),
 * so that a restart — also after {@code kill -9} — resumes where delivery was.
 * <pre>
 * RESULT  | type=1 u8 | status u8 | reserved u16 | queueId i64 | recipient i32 | attempts i32 |
 *         | nextAttemptMs i64 | textLength i32 | text (UTF-8: the remote reply or the reason) |
 * DONE    | type=2 u8 | reserved u8 u16 | queueId i64 |      every recipient is final; the message is finished
 * SCHEDULED | type=3 u8 | reserved u8 u16 | queueId i64 | attempts i32 | dueMs i64 | slot i64 | position i64 |
 *           the message waits on disk: its state is the {@link DeferredIndex} entry at slot, position
 * ACTIVATED | type=4 u8 | reserved u8 u16 | queueId i64 | slot i64 | position i64 |
 *           the entry at slot, position was taken back into the active set (and is killed)
 * HELD    | type=5 u8 | reserved u8 u16 | queueId i64 |      an operator put the message on hold
 * RELEASED | type=6 u8 | reserved u8 u16 | queueId i64 |     an operator released it from hold
 * </pre>
 * A RESULT's status is DELIVERED, BOUNCED, DEFERRED or DELETED (an operator deleted the message: final, no DSN;
 * a DONE follows). HELD and RELEASED say what the queue manager's checkpoint and the deferred index entries written
 * after them say too (a held entry carries {@link QueueEntry#FLAG_HELD}); a start after a crash applies the last of
 * them to a message it takes back into the active set, and {@code spool list} shows it.
 * SCHEDULED and ACTIVATED are what a start needs beyond the queue manager's checkpoint to know where each message
 * the journal names since then stands ({@link QueueRecovery}): waiting on disk, active, or finished.
 * A RESULT is appended right after the remote reply is read, so the only duplicates a crash can cause are the
 * transactions between a remote 250 and this append. Appends are not fsynced: a process crash keeps them (page
 * cache); a power cut can lose the newest, which then means a redelivery, never a loss.
 * <p>
 * The journal lives on the spool's file system, so its cycle files get the spool's protection from a full disk
 * ({@link CycleFileAllocator}, opened when a roll cycle is given, i.e. by the relay, not by a reader): a record whose
 * blocks cannot be allocated is not written (counted, logged once per episode) rather than faulting the delivery
 * thread; like a record lost to a power cut, that means a redelivery after a restart, never a loss.
 * <p>
 * The record layout (writing, checking, reading back) is {@link JournalRecords}'.
 * <p>
 * Written by one thread (delivery); {@link #replay} runs before that thread starts.
 */
public final class OutcomeJournal implements AutoCloseable
{
    public static final byte DELIVERED = 1;
    public static final byte BOUNCED = 2;
    public static final byte DEFERRED = 3;
    /** Deleted by an operator ({@code spool delete}): final, without a DSN. */
    public static final byte DELETED = 4;

    private static final long PREPARE_INTERVAL_NS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final Logger LOG = LoggerFactory.getLogger(OutcomeJournal.class);

    private final SingleChronicleQueue queue;
    private final Path dir;
    /** Null when opened to read. */
    private final CycleFileAllocator allocator;
    private ExcerptAppender appender;
    private long nextPrepareNs;
    /** A repair at open carried records over (they have other indexes now). */
    private boolean repaired;
    private long skippedRecords;
    private boolean skipping;

    /** One replayed record. */
    public interface Visitor
    {
        void onResult(long queueId, int recipient, byte status, int attempts, long nextAttemptMs, String text);

        void onDone(long queueId);

        /** The message waits on disk: its state is the index entry at {@code slot}, {@code position}. */
        default void onScheduled(long queueId, int attempts, long dueMs, long slot, long position)
        {
        }

        /** The index entry at {@code slot}, {@code position} was taken back into the active set. */
        default void onActivated(long queueId, long slot, long position)
        {
        }

        /** An operator put the message on hold ({@code held}) or released it from hold. */
        default void onHeld(long queueId, boolean held)
        {
        }
    }

    private OutcomeJournal(final Path dir, final SingleChronicleQueue queue, final CycleFileAllocator allocator)
    {
        this.dir = dir;
        this.queue = queue;
        this.allocator = allocator;
    }

    /**
     * @param rollCycle as {@code queue.roll_cycle}, to write; null to read an existing journal with whatever cycle
     *                  it has (then the files are left alone: no blocks allocated, nothing pre-created).
     */
    public static OutcomeJournal open(final Path dir, final String rollCycle)
    {
        // the spool's and the journal's cycle numbers are compared at clean-up: both keep the cycle they were made with
        final String kept = rollCycle == null ? null : RollCycleOnDisk.of(dir.toAbsolutePath().getParent(), rollCycle);
        final java.util.function.Function<Path, SingleChronicleQueue> open = path ->
        {
            final SingleChronicleQueueBuilder builder = SingleChronicleQueueBuilder.binary(path.toFile())
                .blockSize(4L << 20);
            if (kept != null)
            {
                builder.rollCycle(Spool.rollCycle(kept));
            }
            return builder.build();
        };
        boolean repaired = false;
        if (rollCycle != null)
        {
            try
            {
                repaired = QueueRepair.repair(dir, open, JournalRecords::intact,
                    QueueCheckpoint.syncedIndexes(dir.toAbsolutePath().getParent().resolve("deferred"))[1]) != null;
            }
            catch (final java.io.IOException ex)
            {
                throw new java.io.UncheckedIOException("cannot repair the journal at " + dir + ": " + ex, ex);
            }
        }
        final SingleChronicleQueue queue = open.apply(dir);
        CycleFileAllocator allocator = null;
        if (rollCycle != null)
        {
            try
            {
                allocator = CycleFileAllocator.open(dir.toFile(), queue, CycleFileAllocator.SMALL_STEP_BYTES);
                allocator.prepare();
            }
            catch (final RuntimeException ex)
            {
                queue.close();
                throw ex;
            }
        }
        final OutcomeJournal journal = new OutcomeJournal(dir, queue, allocator);
        journal.repaired = repaired;
        return journal;
    }

    /** Reads every record from the start. */
    public long replay(final Visitor visitor)
    {
        return replayAfter(-1, visitor);
    }

    /**
     * Reads every record after the one at {@code index} ({@link #lastIndex()} when a checkpoint was written); from the
     * start when {@code index} is negative.
     *
     * @return records read; -1 when the record at {@code index} is not there (then nothing was read).
     */
    public long replayAfter(final long index, final Visitor visitor)
    {
        long count = 0;
        long damaged = 0;
        try (ExcerptTailer tailer = queue.createTailer())
        {
            if (index >= 0)
            {
                if (!tailer.moveToIndex(index))
                {
                    return -1;
                }
                try (DocumentContext dc = tailer.readingDocument())
                {
                    if (!dc.isPresent() || dc.index() != index)
                    {
                        return -1;
                    }
                }
            }
            while (true)
            {
                try (DocumentContext dc = tailer.readingDocument())
                {
                    if (!dc.isPresent())
                    {
                        break;
                    }
                    final Bytes<?> bytes = dc.wire().bytes();
                    final long at = bytes.readPosition();
                    if (!JournalRecords.intact(bytes, at, bytes.readLimit()))
                    {
                        damaged++;
                        continue;
                    }
                    JournalRecords.visit(bytes, at, visitor);
                    count++;
                }
            }
        }
        if (damaged > 0)
        {
            LOG.error("journal {}: {} damaged records skipped (their recipients are retried)", dir, damaged);
        }
        return count;
    }

    public void recordResult(
        final long queueId, final int recipient, final byte status, final int attempts, final long nextAttemptMs,
        final String text)
    {
        final byte[] textBytes = text == null ? new byte[0] : text.getBytes(StandardCharsets.UTF_8);
        final int textLength = Math.min(textBytes.length, JournalRecords.MAX_TEXT_BYTES);
        if (!cycleReady())
        {
            return;
        }
        try (DocumentContext dc = appender().writingDocument())
        {
            final Bytes<?> bytes = dc.wire().bytes();
            if (!allocated(dc, bytes.writePosition(), 32 + textLength))
            {
                return;
            }
            JournalRecords.writeResult(
                bytes, status, queueId, recipient, attempts, nextAttemptMs, textBytes, textLength);
        }
    }

    public void recordDone(final long queueId)
    {
        recordShort(JournalRecords.DONE, queueId);
    }

    /** An operator put the message on hold ({@code held}), or released it. */
    public void recordHeld(final long queueId, final boolean held)
    {
        recordShort(held ? JournalRecords.HELD : JournalRecords.RELEASED, queueId);
    }

    private void recordShort(final byte type, final long queueId)
    {
        if (!cycleReady())
        {
            return;
        }
        try (DocumentContext dc = appender().writingDocument())
        {
            final Bytes<?> bytes = dc.wire().bytes();
            if (!allocated(dc, bytes.writePosition(), 12))
            {
                return;
            }
            JournalRecords.writeShort(bytes, type, queueId);
        }
    }

    /** The message now waits on disk as the index entry at {@code slot}, {@code position}. */
    public void recordScheduled(
        final long queueId, final int attempts, final long dueMs, final long slot, final long position)
    {
        if (!cycleReady())
        {
            return;
        }
        try (DocumentContext dc = appender().writingDocument())
        {
            final Bytes<?> bytes = dc.wire().bytes();
            if (!allocated(dc, bytes.writePosition(), JournalRecords.SCHEDULED_LENGTH))
            {
                return;
            }
            JournalRecords.writeScheduled(bytes, queueId, attempts, dueMs, slot, position);
        }
    }

    /** The index entry at {@code slot}, {@code position} was taken back into the active set. */
    public void recordActivated(final long queueId, final long slot, final long position)
    {
        if (!cycleReady())
        {
            return;
        }
        try (DocumentContext dc = appender().writingDocument())
        {
            final Bytes<?> bytes = dc.wire().bytes();
            if (!allocated(dc, bytes.writePosition(), JournalRecords.ACTIVATED_LENGTH))
            {
                return;
            }
            JournalRecords.writeActivated(bytes, queueId, slot, position);
        }
    }

    /** The index of the last record written; -1 when there is none. The writing thread. */
    public long lastIndex()
    {
        final long last = queue.lastIndex();
        return last < 0 ? -1 : last;
    }

    /** The journal's roll cycle of {@code index}. */
    public int cycleOf(final long index)
    {
        return queue.rollCycle().toCycle(index);
    }

    /** The cycle being written now (by the wall clock). */
    public int currentCycle()
    {
        return queue.cycle();
    }

    /** The journal's cycle files by cycle. */
    public java.util.TreeMap<Integer, Path> cycleFiles()
    {
        return CycleFiles.cycleFiles(dir, queue.rollCycle());
    }

    /** Whether a repair at open carried records over into new cycle files (indexes changed). */
    public boolean repaired()
    {
        return repaired;
    }

    /** The journal's directory. */
    public Path dir()
    {
        return dir;
    }

    /** Deletes journal cycles before {@code cycle}: no live message has records in them. */
    public int deleteCyclesBefore(final int cycle)
    {
        return CycleFiles.deleteCycleFiles(dir, queue.rollCycle(), Math.min(cycle, queue.cycle()),
            queue::refreshDirectoryListing);
    }

    /** Records not written because their blocks could not be allocated (file system full). */
    public long skippedRecords()
    {
        return skippedRecords;
    }

    /** Before a write: keeps the cycle files ahead ready (every ~100 ms) and says whether this write may roll. */
    private boolean cycleReady()
    {
        if (allocator == null)
        {
            return true;
        }
        final long nowNs = System.nanoTime();
        if (nowNs - nextPrepareNs >= 0)
        {
            nextPrepareNs = nowNs + PREPARE_INTERVAL_NS;
            allocator.prepare();
        }
        return allocator.cycleReady() || skipped();
    }

    /** Inside the write, before the bytes: false (and rolled back) when its blocks cannot be allocated. */
    private boolean allocated(final DocumentContext dc, final long position, final long length)
    {
        if (allocator == null || allocator.ensureAllocated(appender, position, length))
        {
            return written();
        }
        dc.rollbackOnClose();
        return skipped();
    }

    private boolean written()
    {
        if (skipping)
        {
            skipping = false;
            LOG.info("journal: recording outcomes again");
        }
        return true;
    }

    private boolean skipped()
    {
        skippedRecords++;
        if (!skipping)
        {
            skipping = true;
            LOG.warn("journal: an outcome could not be recorded (file system full); a restart before the message "
                + "is finished delivers it again");
        }
        return false;
    }

    private ExcerptAppender appender()
    {
        if (appender == null)
        {
            appender = queue.createAppender();
        }
        return appender;
    }

    @Override
    public void close()
    {
        if (appender != null)
        {
            appender.close();
        }
        queue.close();
        if (allocator != null)
        {
            allocator.close();
        }
    }
}
