package dev.relay.spool;

import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Function;

/**
 * The spool's Chronicle queues, one per writer (a <i>lane</i>): each inbound loop appends to a queue of its own, so
 * no two loops contend on one queue's write lock. Lane 0 is the spool directory itself (where the single queue of
 * the layout before per-loop queues lives, so such a spool is read and delivered as it is: upgrade in place); lane
 * {@code i > 0} is the subdirectory {@code lane-i}. A position in the spool is a lane and a Chronicle index in it;
 * ordering holds within a lane only. A lane is never removed: one nobody writes any more (fewer
 * {@code smtp.io_threads} than before) is still read until its mail is delivered, and its cycle files are cleaned
 * up with everyone's.
 * <p>
 * Threads: {@link #add} on a control thread (under the spool's lock); {@link #count} and {@link #queue} from any
 * thread (the array is replaced, never changed, on growth). A missing lane below {@link #count} (a read-only view
 * of a spool where {@code lane-1} is absent but {@code lane-2} is present) is null.
 */
public final class SpoolLanes
{
    /** The subdirectory name of lane {@code i > 0} is this prefix and {@code i}. */
    public static final String DIR_PREFIX = "lane-";
    /** Lanes the queue entry's flag byte can name (at most 64 inbound loops and the injector fit). */
    public static final int MAX_LANES = 256;

    private volatile SingleChronicleQueue[] queues = new SingleChronicleQueue[0];
    /** Clean-ups that deleted cycle files so far: a reader checks its tailers only after one. */
    private volatile long cleanUps;

    /** The directory of {@code lane} in the spool at {@code spoolDir}. */
    public static Path dir(final Path spoolDir, final int lane)
    {
        return lane == 0 ? spoolDir : spoolDir.resolve(DIR_PREFIX + lane);
    }

    /**
     * How many lanes the spool at {@code spoolDir} has on disk: one more than the highest {@code lane-i}
     * subdirectory, at least 1 (lane 0, the directory itself).
     */
    public static int countOnDisk(final Path spoolDir)
    {
        int count = 1;
        final File[] dirs = spoolDir.toFile().listFiles(
            (parent, name) -> name.startsWith(DIR_PREFIX) && new File(parent, name).isDirectory());
        if (dirs == null)
        {
            return count;
        }
        for (final File dir : dirs)
        {
            try
            {
                final int lane = Integer.parseInt(dir.getName().substring(DIR_PREFIX.length()));
                if (lane > 0 && lane < MAX_LANES)
                {
                    count = Math.max(count, lane + 1);
                }
            }
            catch (final NumberFormatException ignored)
            {
                // not a lane
            }
        }
        return count;
    }

    /** Whether lane {@code lane}'s directory holds a Chronicle queue. */
    public static boolean existsOnDisk(final Path spoolDir, final int lane)
    {
        final Path dir = dir(spoolDir, lane);
        return Files.isDirectory(dir) && Files.exists(dir.resolve(SingleChronicleQueue.QUEUE_METADATA_FILE));
    }

    /** Opens every lane below {@code count} with {@code open} (which may return null for a lane it skips). */
    void openAll(final Path spoolDir, final int count, final Function<Path, SingleChronicleQueue> open)
    {
        final SingleChronicleQueue[] opened = new SingleChronicleQueue[count];
        for (int lane = 0; lane < count; lane++)
        {
            opened[lane] = open.apply(dir(spoolDir, lane));
        }
        queues = opened;
    }

    /** Opens lane {@code lane} (and any missing below it) if it is not open yet. Control thread. */
    synchronized SingleChronicleQueue add(
        final Path spoolDir, final int lane, final Function<Path, SingleChronicleQueue> open)
    {
        if (lane >= MAX_LANES)
        {
            throw new IllegalArgumentException("spool lane " + lane + " is not in 0.." + (MAX_LANES - 1));
        }
        SingleChronicleQueue[] current = queues;
        if (lane >= current.length)
        {
            current = java.util.Arrays.copyOf(current, lane + 1);
        }
        else if (current[lane] != null)
        {
            return current[lane];
        }
        for (int i = 0; i <= lane; i++)
        {
            if (current[i] == null)
            {
                current[i] = open.apply(dir(spoolDir, i));
            }
        }
        queues = current;
        return current[lane];
    }

    /** Counts a clean-up that deleted cycle files (the one thread that deletes them). */
    void onCleanUp()
    {
        cleanUps++;
    }

    /** Clean-ups that deleted cycle files so far; any thread. */
    long cleanUps()
    {
        return cleanUps;
    }

    /** The lanes open now. */
    public int count()
    {
        return queues.length;
    }

    /** Lane {@code lane}'s queue; null when it is not open (absent on disk in a read-only view). */
    public SingleChronicleQueue queue(final int lane)
    {
        final SingleChronicleQueue[] current = queues;
        return lane < current.length ? current[lane] : null;
    }

    /** Closes every lane's queue. */
    void closeAll()
    {
        for (final SingleChronicleQueue queue : queues)
        {
            if (queue != null)
            {
                queue.close();
            }
        }
    }
}
