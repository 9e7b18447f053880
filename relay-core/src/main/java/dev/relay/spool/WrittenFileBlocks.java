package dev.relay.spool;

import net.openhft.chronicle.queue.ExcerptAppender;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.File;

/**
 * The allocated prefix {@code [0, end)} of the cycle file an appender is writing, for one {@link CycleFileAllocator}:
 * {@link #ensureAllocated} keeps it {@link CycleFileAllocator#AHEAD_BYTES} past each record and grows it in steps of
 * {@code stepBytes}, holding one descriptor on that file (moved to the next file when the appender rolls, let go by
 * {@link #releaseBefore} once the cycle is over). On {@code ENOSPC} it tries the record alone, and says when the file
 * system is full and when blocks are allocated again (one line each per episode).
 * <p>
 * Threads: {@link #ensureAllocated} from any writer thread, lock-free unless a syscall is due (the syscall runs
 * under this object's lock); {@link #releaseBefore} from the preparing thread; {@link #close} on the control thread.
 * No allocation on the fast path; one small object per step.
 */
final class WrittenFileBlocks
{
    private static final int NO_CYCLE = Integer.MIN_VALUE;
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
    private final Fallocate fallocate;
    private final long stepBytes;
    private volatile Window window = NONE;

    // under this object's lock
    private int fd = -1;
    private long fallocateCalls;
    private long failuresWhenFull;
    private boolean full;

    WrittenFileBlocks(final File dir, final Fallocate fallocate, final long stepBytes)
    {
        this.dir = dir;
        this.fallocate = fallocate;
        this.stepBytes = stepBytes;
    }

    /** See {@link CycleFileAllocator#ensureAllocated}. */
    boolean ensureAllocated(final ExcerptAppender appender, final long position, final long length)
    {
        final Window allocated = window;
        final long end = position + length + CycleFileAllocator.AHEAD_BYTES;
        if (allocated.cycle == appender.cycle() && end <= allocated.end || !fallocate.enabled())
        {
            return true;
        }
        return extend(appender, end);
    }

    /** Calls to fallocate for the files being written (tests, metrics); any thread, racy read. */
    long fallocateCalls()
    {
        return fallocateCalls;
    }

    /** End of the allocated prefix of the file being written (tests). */
    long allocatedEnd()
    {
        return window.end;
    }

    /** Lets go of the descriptor of a cycle before {@code cycle}: its file may be deleted once delivered. */
    synchronized void releaseBefore(final int cycle)
    {
        if (window.cycle < cycle)
        {
            closeFd();
            window = NONE;
        }
    }

    /** Closes the descriptor. Control thread, after the queue. */
    synchronized void close()
    {
        closeFd();
        window = NONE;
    }

    private synchronized boolean extend(final ExcerptAppender appender, final long end)
    {
        final int cycle = appender.cycle();
        Window allocated = window;
        if (!fallocate.enabled() || allocated.cycle == cycle && end <= allocated.end)
        {
            return true;
        }
        if (allocated.cycle != cycle)
        {
            // the appender rolled (or wrote its first record): the descriptor moves to this cycle's file
            closeFd();
            window = NONE;
            final File file = appender.currentFile();
            final int opened = fallocate.open(file);
            if (opened < 0)
            {
                return fallocate.onFailure(file == null ? 0 : fallocate.lastError(), "open", file);
            }
            fd = opened;
            allocated = new Window(cycle, 0);
            window = allocated;
        }
        fallocateCalls++;
        int errno = fallocate.allocate(fd, allocated.end, end + stepBytes - allocated.end);
        if (errno == 0)
        {
            return allocated(cycle, end + stepBytes);
        }
        if (errno == Fallocate.ENOSPC)
        {
            // no room for a whole step: is there for this record?
            fallocateCalls++;
            errno = fallocate.allocate(fd, allocated.end, end - allocated.end);
            if (errno == 0)
            {
                return allocated(cycle, end);
            }
        }
        if (fallocate.unsupported(errno, appender.currentFile()))
        {
            return true;
        }
        if (errno == Fallocate.ENOSPC && !full)
        {
            full = true;
            failuresWhenFull = fallocate.failures();
            LOG.warn("file system full: no blocks for a record at offset {} of {} (ENOSPC); records that need new "
                + "blocks are refused until there is room", allocated.end, appender.currentFile());
        }
        return fallocate.onFailure(errno, "allocate", appender.currentFile());
    }

    private boolean allocated(final int cycle, final long end)
    {
        window = new Window(cycle, end);
        if (full)
        {
            full = false;
            LOG.info("blocks allocated again in {}; {} allocation(s) refused while the file system was full", dir,
                fallocate.failures() - failuresWhenFull);
        }
        return true;
    }

    private void closeFd()
    {
        if (fd >= 0)
        {
            fallocate.close(fd);
            fd = -1;
        }
    }
}
