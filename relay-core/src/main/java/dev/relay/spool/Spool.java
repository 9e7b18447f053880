package dev.relay.spool;

import dev.relay.config.SyncMode;

import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.RollCycle;
import net.openhft.chronicle.queue.RollCycles;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder;
import net.openhft.chronicle.queue.rollcycles.LegacyRollCycles;
import net.openhft.chronicle.queue.rollcycles.TestRollCycles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.File;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;

/**
 * The durable spool: one Chronicle Queue per writer ({@link SpoolLanes}: lane 0 in the spool directory itself, lane
 * {@code i} in {@code lane-i}), the one {@code spool-syncer} thread for all of them, and the factory for per-loop
 * {@link SpoolWriter}s (writer {@code i} appends to lane {@code i}, so loops never share a queue's write lock) and
 * {@link SpoolReader}s (which read every lane).
 * <p>
 * Chronicle settings: binary wire, the roll cycle named by {@code queue} config, and a {@link #BLOCK_SIZE} of
 * 16 MiB: the largest excerpt is a START_BODY of at most {@link SpoolRecords#MAX_RECORD_BYTES} (1 MiB envelope +
 * 256 KiB chunk, ~1.25 MiB), and a usual one at most 256 KiB + 16, so the block is more than 4x (Chronicle's
 * rule) of the worst and 64x the usual excerpt.
 * <p>
 * Threads: {@link #open}, {@link #newWriter}, {@link #newReader} and {@link #close} on a control thread (they
 * allocate); {@link #usableBytes()} from any thread. Close after the loops stopped using their writers.
 * <p>
 * Chronicle's owner-thread check ({@code singleThreadedCheckDisabled}) stays on for every appender and tailer: each
 * is made lazily on the one thread that uses it, so the check costs a volatile read per call and fails any test that
 * shares one. Turning it off measured within noise (issue 10: ~1 ns per tailer poll, nothing visible in the JMH
 * spool benchmarks), and would not reach the mapped bytes' own per-write check, which a cycle roll replaces. Where
 * that check did cost (a record's head copied into the mapped file a long at a time, a check on each), the writer
 * now copies whole arrays and direct buffers ({@code RecordEncoder}).
 */
public final class Spool implements AutoCloseable
{
    public static final long BLOCK_SIZE = 16L * 1024 * 1024;
    /**
     * Space a record write always leaves free on top of its own bytes: Chronicle's index arrays and headers, page
     * rounding, and the error of the usable-space estimate.
     */
    static final long WRITE_SLACK_BYTES = 1024 * 1024;
    private static final Logger LOG = LoggerFactory.getLogger(Spool.class);

    private final Path dir;
    private final SyncMode syncMode;
    private final long minFreeBytes;
    private final java.util.function.Function<Path, SingleChronicleQueue> openQueue;
    private final RollCycle rollCycle;
    private final SpoolLanes lanes;
    /** Per lane, replaced (never changed) when a lane is added: the syncer reads it. */
    private volatile CycleFileAllocator[] allocators = new CycleFileAllocator[0];
    private final SpoolSyncer syncer;
    private final Thread syncerThread;
    private final List<SpoolWriter> writers = new ArrayList<>();
    private final List<SpoolReader> readers = new ArrayList<>();
    private SpoolInjector injector;
    /**
     * Usable bytes on the file system: set by the syncer every ~100 ms, lowered by every record a writer reserves
     * in between (so a burst of appends is counted before the next refresh sees it).
     */
    private final java.util.concurrent.atomic.AtomicLong usableBytes = new java.util.concurrent.atomic.AtomicLong();
    private volatile Runnable newMailListener = () -> { };
    private volatile java.util.function.LongSupplier queuedBytes = () -> 0;
    private volatile long maxQueuedBytes = Long.MAX_VALUE;
    private volatile boolean closed;
    /** The first cycle whose records a repair at open carried over (new indexes); MAX_VALUE when none. */
    private int repairedFromCycle = Integer.MAX_VALUE;

    private Spool(
        final Path dir,
        final SyncMode syncMode,
        final long minFreeBytes,
        final RollCycle rollCycle,
        final java.util.function.Function<Path, SingleChronicleQueue> openQueue,
        final SpoolLanes lanes)
    {
        this.dir = dir;
        this.syncMode = syncMode;
        this.minFreeBytes = minFreeBytes;
        this.rollCycle = rollCycle;
        this.openQueue = openQueue;
        this.lanes = lanes;
        allocateLanes();
        refreshUsableSpace();
        this.syncer = new SpoolSyncer(this, syncMode, dir);
        this.syncerThread = new Thread(syncer, syncer.roleName());
        syncerThread.setDaemon(true);
        syncerThread.start();
    }

    /**
     * Opens (creating if needed) the spool in {@code dir}.
     *
     * @param rollCycle    {@code secondly}, {@code minutely}, {@code hourly} or {@code daily}.
     * @param minFreeBytes {@link SpoolWriter#begin} refuses mail while the file system has less usable space.
     *                     A damaged cycle file is repaired first (see {@link QueueRepair}).
     * @throws IOException naming the directory and the reason when it cannot be created, written or opened.
     */
    public static Spool open(final Path dir, final SyncMode syncMode, final String rollCycle, final long minFreeBytes)
        throws IOException
    {
        if (syncMode == null)
        {
            throw new IllegalArgumentException("syncMode is null");
        }
        rollCycle(rollCycle); // an unknown name fails here, whatever is on disk
        final Path absolute = dir.toAbsolutePath().normalize();
        SpoolDirectory.createWritable(absolute);
        final String kept = RollCycleOnDisk.of(absolute, rollCycle);
        if (!kept.equalsIgnoreCase(rollCycle))
        {
            LOG.warn("queue.roll_cycle={}, but the spool in {} was made with {} and keeps it (queue.roll_cycle " +
                "applies to a queue directory with no spool in it yet)", rollCycle, absolute, kept);
        }
        final RollCycle cycle = rollCycle(kept);
        final java.util.function.Function<Path, SingleChronicleQueue> open = path -> SingleChronicleQueueBuilder
            .binary(path)
            .rollCycle(cycle)
            .blockSize(BLOCK_SIZE)
            .build();
        final SpoolLanes lanes = new SpoolLanes();
        final int repairedFrom;
        try
        {
            final int laneCount = SpoolLanes.countOnDisk(absolute);
            repairedFrom = SpoolDirectory.repairLanes(absolute, laneCount, open, cycle);
            lanes.openAll(absolute, laneCount, open);
        }
        catch (final RuntimeException ex)
        {
            lanes.closeAll();
            throw new IOException("cannot open spool at " + absolute + ": " + ex, ex);
        }
        final Spool spool = new Spool(absolute, syncMode, minFreeBytes, cycle, open, lanes);
        spool.repairedFromCycle = repairedFrom;
        return spool;
    }

    /** The {@code queue.roll_cycle} names {@link #rollCycle} knows. */
    static final java.util.List<String> ROLL_CYCLE_NAMES = java.util.List.of("secondly", "minutely", "hourly", "daily");

    /** Maps a {@code queue.roll_cycle} name to Chronicle's roll cycle; {@link IllegalArgumentException} if unknown. */
    public static RollCycle rollCycle(final String name)
    {
        switch (name == null ? "" : name.toLowerCase(Locale.ROOT))
        {
            case "secondly":
                return TestRollCycles.TEST_SECONDLY;
            case "minutely":
                return LegacyRollCycles.MINUTELY;
            case "hourly":
                return RollCycles.FAST_HOURLY;
            case "daily":
                return RollCycles.FAST_DAILY;
            default:
                throw new IllegalArgumentException(
                    "unknown roll cycle '" + name + "' (expected secondly, minutely, hourly or daily)");
        }
    }

    /**
     * A writer for one loop thread, appending to a lane of its own: the n-th writer made writes lane n (created when
     * the spool has fewer). Its appender is created on that thread at first use.
     */
    public synchronized SpoolWriter newWriter(final LoopWaker waker)
    {
        checkOpen();
        final int lane = writers.size();
        final SingleChronicleQueue queue = lanes.add(dir, lane, openQueue);
        allocateLanes();
        final SpoolWriter writer = new SpoolWriter(this, lane, queue, syncer, syncMode, waker);
        writers.add(writer);
        return writer;
    }

    /** A block allocator for every open lane that has none yet. Control thread. */
    private synchronized void allocateLanes()
    {
        final CycleFileAllocator[] current = allocators;
        if (current.length == lanes.count())
        {
            return;
        }
        final CycleFileAllocator[] grown = java.util.Arrays.copyOf(current, lanes.count());
        for (int lane = current.length; lane < grown.length; lane++)
        {
            final SingleChronicleQueue queue = lanes.queue(lane);
            grown[lane] = CycleFileAllocator.open(SpoolLanes.dir(dir, lane).toFile(), queue,
                CycleFileAllocator.STEP_BYTES);
            if (lane > 0)
            {
                grown[lane].prepare();
            }
        }
        allocators = grown;
    }

    /**
     * The spool's injector (mail the relay makes or moves itself) for one thread; at most one per spool, since it
     * owns the generator of the relay's own queue ids. Its appender is created on that thread at first use.
     *
     * @param waker    wakes the owning thread when the syncer made its commits durable.
     * @param hostname {@code smtp.hostname}, for the {@code Received:} header of injected mail.
     */
    public synchronized SpoolInjector newInjector(final LoopWaker waker, final String hostname)
    {
        checkOpen();
        if (injector != null)
        {
            throw new IllegalStateException("the spool at " + dir + " has an injector already");
        }
        injector = new SpoolInjector(this, newWriter(waker), hostname);
        return injector;
    }

    /**
     * A reader on this spool's queue for one thread. With a non-null {@code name} the reader resumes, after a
     * restart, from the position it saved (see {@link SpoolReader#resumeIndex()}); with null it starts at the
     * beginning.
     */
    public synchronized SpoolReader newReader(final String name)
    {
        checkOpen();
        final SpoolReader reader = new SpoolReader(lanes, name, false);
        readers.add(reader);
        return reader;
    }

    /** A body cursor with its own tailer, for the calling thread only. */
    public SpoolBodyCursor newBodyCursor()
    {
        return new SpoolBodyCursor(lanes);
    }

    /**
     * Called (on a writer's thread) after messages became durable, so the reader's loop can wake at once instead
     * of at its next poll; must be cheap and never block.
     */
    public void newMailListener(final Runnable listener)
    {
        this.newMailListener = listener;
    }

    void onNewMail()
    {
        newMailListener.run();
    }

    /** The roll cycle an excerpt index (of any lane: they share the roll cycle) belongs to. Any thread. */
    public int cycleOf(final long index)
    {
        return rollCycle.toCycle(index);
    }

    /** The cycle being written now (by the wall clock). Any thread. */
    public int currentCycle()
    {
        return lanes.queue(0).cycle();
    }

    /** The lanes the spool has (every one is read; the first writers write them). Any thread. */
    public int laneCount()
    {
        return lanes.count();
    }

    /**
     * Deletes the spool files of every cycle before {@code cycle} (never the current one): disk use follows live
     * mail, not history. The caller guarantees no live message has records in them. Appenders and tailers that
     * still map a deleted file keep a valid mapping until they move on (Linux unlink semantics); the directory
     * listing is refreshed so new tailers do not look for them.
     *
     * @return the files deleted.
     */
    public int deleteCyclesBefore(final int cycle)
    {
        int deleted = 0;
        for (int lane = 0; lane < lanes.count(); lane++)
        {
            final SingleChronicleQueue queue = lanes.queue(lane);
            deleted += CycleFiles.deleteCycleFiles(SpoolLanes.dir(dir, lane), rollCycle,
                Math.min(cycle, queue.cycle()), queue::refreshDirectoryListing);
        }
        if (deleted > 0)
        {
            lanes.onCleanUp();
        }
        return deleted;
    }

    /**
     * The first cycle a repair at open moved aside and carried over (its records and every later one's now have
     * other indexes); {@link Integer#MAX_VALUE} when no repair did.
     */
    public int repairedFromCycle()
    {
        return repairedFromCycle;
    }

    /** The index of the last record in {@code lane}; -1 when it is empty. Any thread. */
    public long lastIndex(final int lane)
    {
        final long last = lanes.queue(lane).lastIndex();
        return last < 0 ? -1 : last;
    }

    /** The cycle files of {@code lane} by cycle. */
    public TreeMap<Integer, Path> cycleFiles(final int lane)
    {
        return CycleFiles.cycleFiles(SpoolLanes.dir(dir, lane), rollCycle);
    }

    public Path dir()
    {
        return dir;
    }

    public SyncMode syncMode()
    {
        return syncMode;
    }

    public long minFreeBytes()
    {
        return minFreeBytes;
    }

    /** Usable bytes on the spool's file system, refreshed by the syncer every ~100 ms, minus records since. */
    public long usableBytes()
    {
        return usableBytes.get();
    }

    /** fsyncs the syncer has done (tests, metrics). */
    public long syncCount()
    {
        return syncer.syncCount();
    }

    boolean hasRoomForMail()
    {
        return usableBytes.get() >= minFreeBytes && queuedBytes.getAsLong() <= maxQueuedBytes;
    }

    /**
     * Called before every record write, for messages already past {@link #hasRoomForMail()}: false when writing
     * {@code bytes} would leave less than half of {@code queue.min_free_bytes} plus {@link #WRITE_SLACK_BYTES}.
     * <p>
     * Why: cycle files are sparse (Chronicle extends them with {@code setLength} and maps them), so a record's
     * pages are allocated when the loop's memcpy first touches them. On a full file system that store faults
     * (SIGBUS), which HotSpot reports as an asynchronous {@link InternalError} surfacing somewhere after the store
     * (the store itself is skipped): the loop thread dies and the record may be half there. Checking at
     * {@code begin} only is not enough: a message accepted at DATA can stream up to the size limit, many at once,
     * and another process can take the space meanwhile. The message fails with 452 instead.
     * <p>
     * The estimate is only the first, cheap check: another process can take the space within one refresh
     * interval (~100 ms). What closes that window is the {@link CycleFileAllocator}: inside the write, before the
     * copy, {@link #ensureAllocated} has the record's blocks allocated ({@code fallocate}), and here a record is
     * refused unless the cycle file a roll would create waits pre-created and allocated. Where fallocate is
     * unavailable (WARN at start), the estimate is all there is.
     */
    boolean reserve(final int lane, final long bytes)
    {
        if (usableBytes.get() - bytes < minFreeBytes / 2 + WRITE_SLACK_BYTES || !allocators[lane].cycleReady())
        {
            return false;
        }
        usableBytes.addAndGet(-bytes);
        return true;
    }

    /**
     * Called inside {@code writingDocument()} before a record's bytes are copied: false when the blocks of
     * {@code [position, position + length)} (and what Chronicle writes after them) could not be allocated, then
     * the writer rolls the record back. See {@link CycleFileAllocator#ensureAllocated}.
     */
    boolean ensureAllocated(final int lane, final ExcerptAppender appender, final long position, final long length)
    {
        return allocators[lane].ensureAllocated(appender, position, length);
    }

    /** Block allocations that failed (file system full) since start, in every lane; any thread. */
    public long allocationFailures()
    {
        long failures = 0;
        for (final CycleFileAllocator allocator : allocators)
        {
            failures += allocator.failures();
        }
        return failures;
    }

    /** Lane 0's block allocator (tests). */
    CycleFileAllocator allocator()
    {
        return allocators[0];
    }

    /**
     * Bounds the undelivered mail the spool may hold ({@code queue.max_bytes}): {@code queuedBytes} says how much
     * there is (delivery's count; any thread), {@code maxBytes} -1 means 90% of the space the spool can have: the
     * usable space now plus what the spool's own files already take. Counting only the free space would shrink the
     * limit by the backlog at every restart: a relay stopped with 40 MiB queued on a disk with 40 MiB left would
     * come back refusing all mail.
     */
    public void limitQueuedBytes(final java.util.function.LongSupplier queuedBytes, final long maxBytes)
    {
        this.queuedBytes = queuedBytes;
        this.maxQueuedBytes = maxBytes < 0 ?
            (long)((dir.toFile().getUsableSpace() + SpoolDirectory.filesBytes(dir)) * 0.9) : maxBytes;
    }

    public long maxQueuedBytes()
    {
        return maxQueuedBytes;
    }

    /** Syncer thread, every ~100 ms (and once at open): the cycle files ahead, then the usable space. */
    void refreshUsableSpace()
    {
        for (final CycleFileAllocator allocator : allocators)
        {
            allocator.prepare();
        }
        usableBytes.set(dir.toFile().getUsableSpace());
    }

    void onSyncError(final File file, final IOException ex)
    {
        LOG.error("spool sync failed for {}", file, ex);
    }

    /** Lane 0's queue (tests). */
    SingleChronicleQueue queue()
    {
        return lanes.queue(0);
    }

    /** Lane {@code lane}'s queue. */
    SingleChronicleQueue queue(final int lane)
    {
        return lanes.queue(lane);
    }

    private void checkOpen()
    {
        if (closed)
        {
            throw new IllegalStateException("spool at " + dir + " is closed");
        }
    }

    /** Stops the syncer (after it synced what was queued), then closes writers, readers and the queue. */
    @Override
    public synchronized void close()
    {
        if (closed)
        {
            return;
        }
        closed = true;
        try
        {
            syncer.stop(syncerThread);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
        for (final SpoolWriter writer : writers)
        {
            writer.closeAppender();
        }
        for (final SpoolReader reader : readers)
        {
            reader.closeFromOwner();
        }
        lanes.closeAll();
        for (final CycleFileAllocator allocator : allocators)
        {
            allocator.close();
        }
    }
}
