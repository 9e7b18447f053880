package dev.relay.spool;

import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.impl.single.PrecreatedFiles;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;

import java.io.File;

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
 * The parts, one job each: {@link Fallocate} (the syscalls, their failures, turning fallocate off),
 * {@link WrittenFileBlocks} (the allocated prefix of the file being written), {@link CycleFilesAhead} (pre-created
 * files and the cycles ready); this class opens them together and is what the spool and the journal call.
 * <p>
 * Threads: {@link #ensureAllocated} and {@link #cycleReady} from any writer thread (lock-free unless a syscall is
 * due; the syscall runs under a lock); {@link #prepare} on one thread (the spool's syncer; the journal's writer);
 * {@link #open} and {@link #close} on the control thread. No allocation on the fast paths; one small object per
 * step.
 */
final class CycleFileAllocator implements AutoCloseable
{
    /** The spool's step; the outcome journal, with small records, takes {@link #SMALL_STEP_BYTES}. */
    static final long STEP_BYTES = 8L * 1024 * 1024;
    static final long SMALL_STEP_BYTES = 1024 * 1024;
    static final long AHEAD_BYTES = 1024 * 1024;
    static final long PRECREATE_BYTES = 1024 * 1024;
    static final int CYCLES_AHEAD = 2;

    private final Fallocate fallocate;
    private final WrittenFileBlocks written;
    private final CycleFilesAhead ahead;

    private CycleFileAllocator(
        final File dir, final SingleChronicleQueue queue, final long stepBytes, final Fallocate fallocate)
    {
        this.fallocate = fallocate;
        this.written = new WrittenFileBlocks(dir, fallocate, stepBytes);
        this.ahead = new CycleFilesAhead(dir, queue, fallocate, written);
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
        final Fallocate fallocate = Fallocate.load(dir);
        final CycleFileAllocator allocator = new CycleFileAllocator(dir, queue, stepBytes, fallocate);
        if (fallocate.enabled())
        {
            allocator.ahead.openExisting();
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
        return written.ensureAllocated(appender, position, length);
    }

    /**
     * Whether a record may be written now: the current cycle's file and the next one's (in case the clock passes
     * the boundary before Chronicle reads it) exist allocated, or wait pre-created and allocated, so the write
     * cannot make Chronicle create a file whose header pages are not backed. Any thread; no syscall.
     */
    boolean cycleReady()
    {
        return ahead.cycleReady();
    }

    /**
     * Keeps the files of the current cycle and the next {@value #CYCLES_AHEAD} ready (pre-created and allocated
     * unless they exist), deletes pre-created files of cycles gone by, and lets go of a file no longer written.
     * Does nothing while the cycle is unchanged and all is ready. One thread at a time: the spool's syncer, the
     * journal's writer (and the control thread at open).
     */
    void prepare()
    {
        ahead.prepare();
    }

    /** Calls to fallocate for the files being written (tests, metrics); any thread, racy read. */
    long fallocateCalls()
    {
        return written.fallocateCalls();
    }

    /** Allocations that failed (ENOSPC or other errors); any thread. */
    long failures()
    {
        return fallocate.failures();
    }

    /** End of the allocated prefix of the file being written (tests). */
    long allocatedEnd()
    {
        return written.allocatedEnd();
    }

    boolean enabled()
    {
        return fallocate.enabled();
    }

    /** Closes the file descriptor and deletes the pre-created files not used. Control thread, after the queue. */
    @Override
    public synchronized void close()
    {
        written.close();
        ahead.close();
    }

    /** {@code <dir>/<cycle as the roll cycle formats it>.cq4}, as Chronicle names it (UTC, the queue's epoch). */
    File cycleFile(final int cycle)
    {
        return ahead.cycleFile(cycle);
    }

    File precreatedFile(final int cycle)
    {
        return ahead.precreatedFile(cycle);
    }
}
