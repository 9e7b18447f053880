package dev.relay.spool;

import net.openhft.chronicle.queue.RollCycle;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Function;

/**
 * Readies the spool directory before {@link Spool#open} opens its lanes: creates it and proves it writable, then
 * repairs each lane's damaged cycle file ({@link QueueRepair}); also measures what the files in it take
 * ({@link #filesBytes}). Static; called on the control thread that opens the spool.
 */
final class SpoolDirectory
{
    private SpoolDirectory()
    {
    }

    /**
     * Creates {@code absolute} when needed and writes a probe file in it.
     *
     * @throws IOException naming the directory and the reason when it cannot be created or written.
     */
    static void createWritable(final Path absolute) throws IOException
    {
        try
        {
            Files.createDirectories(absolute);
        }
        catch (final IOException | SecurityException ex)
        {
            throw new IOException("cannot open spool at " + absolute + ": cannot create directory (" + ex + ")", ex);
        }
        if (!Files.isDirectory(absolute))
        {
            throw new IOException("cannot open spool at " + absolute + ": not a directory");
        }
        try
        {
            // isWritable() is not enough (root ignores modes, read-only mounts): write a real file.
            Files.delete(Files.createTempFile(absolute, ".probe", ".tmp"));
        }
        catch (final IOException | SecurityException ex)
        {
            throw new IOException("cannot open spool at " + absolute + ": directory is not writable (" + ex + ")", ex);
        }
    }

    /**
     * Repairs the first {@code laneCount} lanes of the spool in {@code absolute} that are on disk, each up to the
     * index the deferred index's checkpoint says was synced.
     *
     * @return the first cycle a repair carried over (see {@link Spool#repairedFromCycle()}); MAX_VALUE when none.
     * @throws IOException from {@link QueueRepair#repair}: a repair is needed and cannot be done.
     */
    static int repairLanes(
        final Path absolute,
        final int laneCount,
        final Function<Path, SingleChronicleQueue> open,
        final RollCycle cycle) throws IOException
    {
        int repairedFrom = Integer.MAX_VALUE;
        final long[] synced = QueueCheckpoint.spoolSyncedIndexes(absolute.resolve("deferred"));
        for (int lane = 0; lane < laneCount; lane++)
        {
            if (lane > 0 && !SpoolLanes.existsOnDisk(absolute, lane))
            {
                continue;
            }
            final QueueRepair.Outcome repaired = QueueRepair.repair(SpoolLanes.dir(absolute, lane), open,
                new RecordChecksum()::intact, lane < synced.length ? synced[lane] : -1);
            if (repaired != null)
            {
                repairedFrom = Math.min(repairedFrom, CycleFiles.cycleOfFile(repaired.damagedFile().getName(), cycle));
            }
        }
        return repairedFrom;
    }

    /** The length of every regular file under {@code root}; files that vanish meanwhile count 0. */
    static long filesBytes(final Path root)
    {
        try (java.util.stream.Stream<Path> files = Files.walk(root))
        {
            return files.mapToLong(file ->
            {
                try
                {
                    return Files.isRegularFile(file) ? Files.size(file) : 0;
                }
                catch (final IOException ex)
                {
                    return 0;
                }
            }).sum();
        }
        catch (final IOException | java.io.UncheckedIOException ex)
        {
            return 0;
        }
    }
}
