package dev.relay.spool;

import net.openhft.posix.PosixAPI;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.File;

/**
 * The {@code fallocate(2)} calls of one {@link CycleFileAllocator} ({@code FALLOC_FL_KEEP_SIZE}: the file length,
 * which Chronicle manages, is left alone) and what their failures mean: a failure is counted and, unless it is
 * {@code ENOSPC}, logged the first time; {@code EOPNOTSUPP}/{@code ENOSYS}, or a posix library that does not load,
 * turns fallocate off for the directory (one WARN), after which every caller says yes.
 * <p>
 * Threads: any (the writer's and the preparing thread); {@link #onFailure} under this object's lock, {@link #enabled}
 * volatile. Allocates only to log.
 */
final class Fallocate
{
    static final int ENOSPC = 28;
    private static final int ENOSYS = 38;
    private static final int EOPNOTSUPP = 95;
    private static final int FALLOC_FL_KEEP_SIZE = 1;
    private static final int O_RDWR = 2;
    private static final Logger LOG = LoggerFactory.getLogger(CycleFileAllocator.class);

    private final File dir;
    private final PosixAPI posix;
    private volatile boolean enabled;

    // under this object's lock
    private long failures;
    private boolean warnedFailure;

    private Fallocate(final File dir, final PosixAPI posix)
    {
        this.dir = dir;
        this.posix = posix;
        this.enabled = posix != null;
    }

    /** Loads the posix library for {@code dir}'s files; when it does not load, fallocate is off (one WARN). */
    static Fallocate load(final File dir)
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
        final Fallocate fallocate = new Fallocate(dir, posix);
        if (unavailable != null)
        {
            fallocate.disable(unavailable);
        }
        return fallocate;
    }

    /** False once fallocate is known to be unavailable here: every caller then says yes. */
    boolean enabled()
    {
        return enabled;
    }

    /** Allocations that failed (ENOSPC or other errors); any thread. */
    synchronized long failures()
    {
        return failures;
    }

    /** fallocate on a file other than the one being written. @return 0, or the errno. */
    int allocate(final File file, final long offset, final long length)
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
            return allocate(descriptor, offset, length);
        }
        finally
        {
            posix.close(descriptor);
        }
    }

    /** fallocate on an open descriptor. @return 0, or the errno. */
    int allocate(final int descriptor, final long offset, final long length)
    {
        return posix.fallocate(descriptor, FALLOC_FL_KEEP_SIZE, offset, length) == 0 ? 0 : posix.lastError();
    }

    /** Opens {@code file} read-write. @return the descriptor, or -1 (the errno is {@link #lastError}). */
    int open(final File file)
    {
        return file == null ? -1 : posix.open(file.getPath(), O_RDWR, 0);
    }

    int lastError()
    {
        return posix.lastError();
    }

    void close(final int descriptor)
    {
        posix.close(descriptor);
    }

    /**
     * Counts a failure to {@code action} {@code target}; one that is not ENOSPC is also logged, the first time.
     * Builds no string unless it logs. @return false.
     */
    synchronized boolean onFailure(final int errno, final String action, final Object target)
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

    /** Whether {@code errno} says fallocate is not supported on {@code file}; if so, turns it off (one WARN). */
    boolean unsupported(final int errno, final File file)
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
}
