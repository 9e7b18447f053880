package dev.relay.spool;

import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.TailerDirection;
import net.openhft.chronicle.queue.impl.single.PrecreatedFiles;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.wire.DocumentContext;
import net.openhft.posix.PosixAPI;
import org.agrona.collections.IntArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * Allocates the disk blocks of a Chronicle queue's cycle files (the spool's; the outcome journal's) before
 * Chronicle stores into them, with {@code fallocate(2)} and {@code FALLOC_FL_KEEP_SIZE} (the file length, which
 * Chronicle manages, is left alone; allocating a range that already holds data leaves the data alone). Cycle files
 * are sparse and mapped: a store into a page the file system cannot back is a SIGBUS, which HotSpot turns into an
 * asynchronous {@link InternalError} that kills the writing thread. Here a full file system is an {@code ENOSPC}
 * before the copy: the record is rolled back (the spool answers 452; the journal skips the record).
 * <p>
 * What Chronicle stores into, and what covers it:
 * <ul>
 * <li>a record, {@code [position, position + length)}: {@link #ensureAllocated}, called by the writer inside
 * {@code writingDocument()} before it copies ({@code MappedBytes} positions are file offsets). It keeps the
 * allocation {@value #AHEAD_BYTES} bytes past the record's end, which covers what Chronicle writes there before
 * the next such call: the next record's header, a new index array ({@code indexCount * 8} bytes, at most 256 KiB
 * for our roll cycles) and the EOF marker at a roll. It grows in steps ({@value #STEP_BYTES} bytes for the
 * spool): one syscall per thousands of small records.</li>
 * <li>index entries, written behind the write position into arrays whose pages are only touched as they fill:
 * the allocated range of the file being written is contiguous from offset 0.</li>
 * <li>a new cycle file's header, index2index and first index array, written inside the {@code writingDocument()}
 * that rolls, before any writer code runs: Chronicle renames {@code <cycle>.precreated} into place when it exists
 * ({@link PrecreatedFiles}). {@link #prepare} (every ~100 ms) keeps one, allocated ({@value #PRECREATE_BYTES}
 * bytes), for the current cycle and the next {@value #CYCLES_AHEAD}; {@link #cycleReady}, checked before every
 * write, is false unless the cycle now and the next have an allocated file, so a roll never creates one itself.</li>
 * <li>what a previous run left: at open the newest cycle file (appenders continue it or write its EOF) up to its
 * end of data plus {@value #AHEAD_BYTES}, and {@code metadata.cq4t}, whole.</li>
 * </ul>
 * Where fallocate is unavailable (the posix library does not load, or the file system answers
 * {@code EOPNOTSUPP}), one WARN and every method says yes: {@code Spool.reserve}'s estimate is all there is.
 * <p>
 * Threads: {@link #ensureAllocated} and {@link #cycleReady} from any writer thread (lock-free unless a syscall is
 * due; the syscall runs under this object's lock); {@link #prepare} on one thread (the spool's syncer; the
 * journal's writer); {@link #open} and {@link #close} on the control thread. No allocation on the fast paths; one
 * small object per step.
 */
final class CycleFileAllocator implements AutoCloseable
{
    /** The spool's step; the outcome journal, with small records, takes {@link #SMALL_STEP_BYTES}. */
    static final long STEP_BYTES = 8L * 1024 * 1024;
    static final long SMALL_STEP_BYTES = 1024 * 1024;
    static final long AHEAD_BYTES = 1024 * 1024;
    static final long PRECREATE_BYTES = 1024 * 1024;
    static final int CYCLES_AHEAD = 2;
    private static final int ENOSPC = 28;
    private static final int ENOSYS = 38;
    private static final int EOPNOTSUPP = 95;
    private static final int FALLOC_FL_KEEP_SIZE = 1;
    private static final int O_RDWR = 2;
    private static final int NO_CYCLE = Integer.MIN_VALUE;
    private static final String PARTIAL_SUFFIX = ".partial";
    private static final Logger LOG = LoggerFactory.getLogger(CycleFileAllocator.class);

    /** The allocated prefix {@code [0, end)} of one cycle's file; replaced, never changed. */
    private static final class Window
    {
        final int cycle;
        final long end;

        Window(final int cycle, final long end)
        {
            this.cycle = cycle;
            this.end = end;
        }
    }

    private static final Window NONE = new Window(NO_CYCLE, 0);

    private final File dir;
    private final SingleChronicleQueue queue;
    private final DateTimeFormatter fileNames;
    private final long cycleMs;
    private final long epochMs;
    private final PosixAPI posix;
    private final long stepBytes;
    private volatile boolean enabled;
    private volatile Window window = NONE;
    /** Cycles whose file Chronicle may create or continue: first in the high 32 bits, last in the low. */
    private volatile long readyCycles = readyRange(1, 0);

    // under this object's lock
    private int fd = -1;
    private long fallocateCalls;
    private long failures;
    private long failuresWhenFull;
    private boolean full;
    private boolean warnedFailure;

    // the thread that calls prepare (and the control thread at open)
    private final int latestAtOpen;
    private boolean latestAllocated;
    private int preparedFor = NO_CYCLE;
    private final IntArrayList precreatedCycles = new IntArrayList();

    private CycleFileAllocator(
        final File dir, final SingleChronicleQueue queue, final long stepBytes, final PosixAPI posix)
    {
        this.dir = dir;
        this.queue = queue;
        this.fileNames = DateTimeFormatter.ofPattern(queue.rollCycle().format()).withZone(ZoneOffset.UTC);
        this.cycleMs = queue.rollCycle().lengthInMillis();
        this.epochMs = queue.epoch();
        this.posix = posix;
        this.stepBytes = stepBytes;
        this.enabled = posix != null;
        this.latestAtOpen = queue.lastCycle();
        final long indexArrayBytes = queue.indexCount() * 8L + 128;
        if (2 * indexArrayBytes + 64 * 1024 > Math.min(AHEAD_BYTES, PRECREATE_BYTES))
        {
            throw new IllegalStateException("index arrays of " + indexArrayBytes + " bytes do not fit the "
                + AHEAD_BYTES + " bytes allocated ahead (roll cycle " + queue.rollCycle() + ")");
        }
    }

    /**
     * Starts allocating for {@code queue} in {@code dir}: deletes pre-created files a previous run left, allocates
     * {@code metadata.cq4t} and the newest cycle file (see the class comment), and falls back (one WARN) when
     * fallocate is unavailable. Call before any appender writes; then {@link #prepare} before the first record.
     * Only for the process that writes the queue: a reader must not, it would delete the writer's files.
     *
     * @param stepBytes how far past a record an allocation reaches ({@link #STEP_BYTES} for the spool).
     */
    static CycleFileAllocator open(final File dir, final SingleChronicleQueue queue, final long stepBytes)
    {
        PosixAPI posix = null;
        String unavailable = null;
        try
        {
            posix = PosixAPI.posix();
        }
        catch (final LinkageError | RuntimeException ex)
        {
            unavailable = "the posix library did not load (" + ex + ")";
        }
        final CycleFileAllocator allocator = new CycleFileAllocator(dir, queue, stepBytes, posix);
        if (unavailable != null)
        {
            allocator.disable(unavailable);
            return allocator;
        }
        allocator.deleteLeftovers();
        final File metadata = new File(dir, SingleChronicleQueue.QUEUE_METADATA_FILE);
        if (metadata.isFile())
        {
            final int errno = allocator.allocate(metadata, 0, metadata.length());
            if (errno != 0 && !allocator.unsupported(errno, metadata))
            {
                allocator.onFailure(errno, "allocate", metadata);
            }
        }
        if (allocator.enabled)
        {
            allocator.latestAllocated = allocator.allocateLatest();
        }
        return allocator;
    }

    /**
     * Makes sure {@code [position, position + length)} of the file {@code appender} is writing, and
     * {@value #AHEAD_BYTES} bytes beyond, are allocated. Call inside {@code writingDocument()}, before copying.
     *
     * @param position the record's offset in the cycle file: {@code dc.wire().bytes().writePosition()}.
     * @return false when the file system has no room (roll the record back); true when allocated, or when
     * fallocate is unavailable.
     */
    boolean ensureAllocated(final ExcerptAppender appender, final long position, final long length)
    {
        final Window allocated = window;
        final long end = position + length + AHEAD_BYTES;
        if (allocated.cycle == appender.cycle() && end <= allocated.end || !enabled)
        {
            return true;
        }
        return extend(appender, end);
    }

    /**
     * Whether a record may be written now: the current cycle's file and the next one's (in case the clock passes
     * the boundary before Chronicle reads it) exist allocated, or wait pre-created and allocated, so the write
     * cannot make Chronicle create a file whose header pages are not backed. Any thread; no syscall.
     */
    boolean cycleReady()
    {
        if (!enabled)
        {
            return true;
        }
        final long ready = readyCycles;
        final int cycle = queue.cycle();
        return cycle >= (int)(ready >>> 32) && cycle < (int)ready;
    }

    /**
     * Keeps the files of the current cycle and the next {@value #CYCLES_AHEAD} ready (pre-created and allocated
     * unless they exist), deletes pre-created files of cycles gone by, and lets go of a file no longer written.
     * Does nothing while the cycle is unchanged and all is ready. One thread at a time: the spool's syncer, the
     * journal's writer (and the control thread at open).
     */
    void prepare()
    {
        if (!enabled)
        {
            return;
        }
        final int current = queue.cycle();
        if (current == preparedFor)
        {
            return;
        }
        if (!latestAllocated)
        {
            latestAllocated = allocateLatest();
            if (!latestAllocated)
            {
                return;
            }
        }
        releaseBefore(current);
        // before creating new ones: on a full file system the space of unused ones is what is left
        deletePrecreatedBefore(current - 1);
        int last = current - 1;
        while (last < current + CYCLES_AHEAD && enabled && fileReady(last + 1))
        {
            last++;
        }
        readyCycles = readyRange(current, last);
        if (last == current + CYCLES_AHEAD)
        {
            preparedFor = current;
        }
    }

    /** Calls to fallocate for the files being written (tests, metrics); any thread, racy read. */
    long fallocateCalls()
    {
        return fallocateCalls;
    }

    /** Allocations that failed (ENOSPC or other errors); any thread, racy read. */
    long failures()
    {
        return failures;
    }

    /** End of the allocated prefix of the file being written (tests). */
    long allocatedEnd()
    {
        return window.end;
    }

    boolean enabled()
    {
        return enabled;
    }

    /** Closes the file descriptor and deletes the pre-created files not used. Control thread, after the queue. */
    @Override
    public synchronized void close()
    {
        closeFd();
        window = NONE;
        for (int i = 0; i < precreatedCycles.size(); i++)
        {
            precreatedFile(precreatedCycles.getInt(i)).delete();
        }
        precreatedCycles.clear();
    }

    private synchronized boolean extend(final ExcerptAppender appender, final long end)
    {
        final int cycle = appender.cycle();
        Window allocated = window;
        if (!enabled || allocated.cycle == cycle && end <= allocated.end)
        {
            return true;
        }
        if (allocated.cycle != cycle)
        {
            // the appender rolled (or wrote its first record): the descriptor moves to this cycle's file
            closeFd();
            window = NONE;
            final File file = appender.currentFile();
            final int opened = file == null ? -1 : posix.open(file.getPath(), O_RDWR, 0);
            if (opened < 0)
            {
                return onFailure(file == null ? 0 : posix.lastError(), "open", file);
            }
            fd = opened;
            allocated = new Window(cycle, 0);
            window = allocated;
        }
        fallocateCalls++;
        if (posix.fallocate(fd, FALLOC_FL_KEEP_SIZE, allocated.end, end + stepBytes - allocated.end) == 0)
        {
            return allocated(cycle, end + stepBytes);
        }
        int errno = posix.lastError();
        if (errno == ENOSPC)
        {
            // no room for a whole step: is there for this record?
            fallocateCalls++;
            if (posix.fallocate(fd, FALLOC_FL_KEEP_SIZE, allocated.end, end - allocated.end) == 0)
            {
                return allocated(cycle, end);
            }
            errno = posix.lastError();
        }
        if (unsupported(errno, appender.currentFile()))
        {
            return true;
        }
        if (errno == ENOSPC && !full)
        {
            full = true;
            failuresWhenFull = failures;
            LOG.warn("file system full: no blocks for a record at offset {} of {} (ENOSPC); records that need new "
                + "blocks are refused until there is room", allocated.end, appender.currentFile());
        }
        return onFailure(errno, "allocate", appender.currentFile());
    }

    private boolean allocated(final int cycle, final long end)
    {
        window = new Window(cycle, end);
        if (full)
        {
            full = false;
            LOG.info("blocks allocated again in {}; {} allocation(s) refused while the file system was full", dir,
                failures - failuresWhenFull);
        }
        return true;
    }

    /**
     * Counts a failure to {@code action} {@code target}; one that is not ENOSPC is also logged, the first time.
     * Builds no string unless it logs. @return false.
     */
    private synchronized boolean onFailure(final int errno, final String action, final Object target)
    {
        failures++;
        if (errno != ENOSPC && !warnedFailure)
        {
            warnedFailure = true;
            LOG.warn("cannot {} {} ({}); such failures are counted, not logged again", action, target,
                errno > 0 ? "errno " + errno + ": " + posix.strerror(errno) : "no errno");
        }
        return false;
    }

    private boolean unsupported(final int errno, final File file)
    {
        if (errno == EOPNOTSUPP || errno == ENOSYS)
        {
            disable("fallocate is not supported on " + file + " (errno " + errno + ")");
            return true;
        }
        return false;
    }

    private void disable(final String why)
    {
        if (enabled || posix == null)
        {
            enabled = false;
            LOG.warn("{}; writes to {} are guarded only by the usable-space estimate, so another process taking "
                + "the last free space within ~100 ms of a write can still fault the writing thread (SIGBUS)",
                why, dir);
        }
    }

    /** The newest cycle file of an earlier run: {@code [0, end of data + AHEAD_BYTES)}. @return true when done. */
    private boolean allocateLatest()
    {
        if (latestAtOpen < 0)
        {
            return true;
        }
        final File file = cycleFile(latestAtOpen);
        if (!file.isFile())
        {
            return true;
        }
        final int errno = allocate(file, 0, Math.max(endOfData(latestAtOpen), PRECREATE_BYTES) + AHEAD_BYTES);
        if (errno == 0 || unsupported(errno, file))
        {
            return true;
        }
        onFailure(errno, "allocate", file);
        return false;
    }

    /** The file offset just past the last excerpt of {@code cycle}, 0 if it has none. */
    private long endOfData(final int cycle)
    {
        try (ExcerptTailer tailer = queue.createTailer())
        {
            tailer.direction(TailerDirection.BACKWARD).toEnd();
            try (DocumentContext dc = tailer.readingDocument())
            {
                if (dc.isPresent() && queue.rollCycle().toCycle(dc.index()) == cycle)
                {
                    return dc.wire().bytes().readLimit();
                }
            }
        }
        return 0;
    }

    private boolean fileReady(final int cycle)
    {
        final File file = cycleFile(cycle);
        if (file.exists())
        {
            // created in this run (from a pre-created file), or the newest of the last run (allocated at open)
            return cycle >= latestAtOpen;
        }
        final File precreated = PrecreatedFiles.preCreatedFile(file);
        return precreated.exists() || precreate(cycle, precreated);
    }

    /** Creates {@code precreated} empty with {@value #PRECREATE_BYTES} bytes allocated, atomically. */
    private boolean precreate(final int cycle, final File precreated)
    {
        final File partial = new File(dir, precreated.getName() + PARTIAL_SUFFIX);
        try
        {
            Files.deleteIfExists(partial.toPath());
            Files.createFile(partial.toPath());
            final int errno = allocate(partial, 0, PRECREATE_BYTES);
            if (errno != 0)
            {
                Files.deleteIfExists(partial.toPath());
                if (!unsupported(errno, partial))
                {
                    onFailure(errno, "pre-create", precreated);
                }
                return false;
            }
            Files.move(partial.toPath(), precreated.toPath(), StandardCopyOption.ATOMIC_MOVE);
            precreatedCycles.addInt(cycle);
            return true;
        }
        catch (final IOException ex)
        {
            partial.delete();
            onFailure(0, "pre-create", precreated + " (" + ex + ")");
            return false;
        }
    }

    /** fallocate on a file other than the one being written. @return 0, or the errno. */
    private int allocate(final File file, final long offset, final long length)
    {
        final int descriptor;
        try
        {
            descriptor = posix.open(file.getPath(), O_RDWR, 0);
        }
        catch (final RuntimeException ex)
        {
            // the no-op PosixAPI that posix() returns when the native library is missing
            disable("fallocate is unavailable (" + ex + ")");
            return 0;
        }
        if (descriptor < 0)
        {
            return posix.lastError();
        }
        try
        {
            return posix.fallocate(descriptor, FALLOC_FL_KEEP_SIZE, offset, length) == 0 ? 0 : posix.lastError();
        }
        finally
        {
            posix.close(descriptor);
        }
    }

    /** Lets go of the descriptor of a cycle before {@code cycle}: its file may be deleted once delivered. */
    private synchronized void releaseBefore(final int cycle)
    {
        if (window.cycle < cycle)
        {
            closeFd();
            window = NONE;
        }
    }

    private void closeFd()
    {
        if (fd >= 0)
        {
            posix.close(fd);
            fd = -1;
        }
    }

    private void deletePrecreatedBefore(final int cycle)
    {
        for (int i = precreatedCycles.size() - 1; i >= 0; i--)
        {
            final int precreated = precreatedCycles.getInt(i);
            if (precreated < cycle || cycleFile(precreated).exists())
            {
                precreatedFile(precreated).delete();
                precreatedCycles.fastUnorderedRemove(i);
            }
        }
    }

    /** Pre-created files of an earlier run: not known to be allocated (a crash may have cut one short). */
    private void deleteLeftovers()
    {
        final File[] leftovers = dir.listFiles((ignored, name) -> name.endsWith(".precreated")
            || name.endsWith(".precreated" + PARTIAL_SUFFIX));
        if (leftovers != null)
        {
            for (final File leftover : leftovers)
            {
                leftover.delete();
            }
        }
    }

    /** {@code <dir>/<cycle as the roll cycle formats it>.cq4}, as Chronicle names it (UTC, the queue's epoch). */
    File cycleFile(final int cycle)
    {
        return new File(dir, fileNames.format(Instant.ofEpochMilli(cycle * cycleMs + epochMs)) + ".cq4");
    }

    File precreatedFile(final int cycle)
    {
        return PrecreatedFiles.preCreatedFile(cycleFile(cycle));
    }

    private static long readyRange(final int first, final int last)
    {
        return (long)first << 32 | last & 0xFFFF_FFFFL;
    }
}
