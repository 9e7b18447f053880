package dev.relay.spool;

import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Opens the lanes of a spool read-only, without creating anything, for {@link SpoolReader#open}: works while a relay
 * appends to it (Chronicle supports readers in other processes) and on a stopped relay. Static; called once by the
 * thread that will own the reader.
 */
final class ReadOnlyLanes
{
    private ReadOnlyLanes()
    {
    }

    /**
     * The lanes of the spool in {@code dir}, each opened read-only (a lane absent on disk stays null).
     *
     * @throws NoSuchFileException "no spool at DIR" when the directory or its queue metadata is absent.
     */
    static SpoolLanes open(final Path dir) throws IOException
    {
        final Path absolute = dir.toAbsolutePath().normalize();
        if (!Files.isDirectory(absolute) || !Files.exists(absolute.resolve(SingleChronicleQueue.QUEUE_METADATA_FILE)))
        {
            throw new NoSuchFileException(absolute.toString(), null, "no spool at " + absolute);
        }
        final SpoolLanes lanes = new SpoolLanes();
        try
        {
            lanes.openAll(absolute, SpoolLanes.countOnDisk(absolute), laneDir ->
                Files.exists(laneDir.resolve(SingleChronicleQueue.QUEUE_METADATA_FILE)) ?
                    SingleChronicleQueueBuilder.binary(laneDir).readOnly(true).blockSize(Spool.BLOCK_SIZE).build() :
                    null);
        }
        catch (final RuntimeException ex)
        {
            lanes.closeAll();
            throw new IOException("cannot read spool at " + absolute + ": " + ex, ex);
        }
        return lanes;
    }
}
