package dev.relay.spool;

import net.openhft.chronicle.queue.RollCycle;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The roll cycle a queue directory's spool and journal were made with, which they keep for as long as they exist.
 *
 * <p>Chronicle stores a queue's roll cycle in its {@code metadata.cq4t}, and a queue opened with another one goes on
 * with the one on disk. The relay must do the same in what it reads itself: cycle file names (repair, clean-up,
 * {@code spool list}) and cycle numbers, which the queue manager compares between the spool and the journal when it
 * deletes finished cycles. Opened with the configured cycle instead, after an operator changed
 * {@code queue.roll_cycle} or a release changed its default, the files on disk would not parse under the new names:
 * never repaired, never deleted (disk use growing with history), and the journal's clean-up handed cycle numbers of
 * another length. So the cycle on disk wins, for the spool and the journal alike ({@link Spool#open} says so at WARN
 * when the configured one differs); {@code queue.roll_cycle} applies to a queue directory that has no spool yet.
 */
final class RollCycleOnDisk
{
    private static final String METADATA = "metadata.cq4t";

    private RollCycleOnDisk()
    {
    }

    /**
     * The roll cycle (one of {@code secondly}, {@code minutely}, {@code hourly}, {@code daily}) for the spool in
     * {@code queueDir} and its journal in {@code queueDir/journal}: the one they were made with, or
     * {@code configured} when neither exists yet.
     *
     * @throws IllegalStateException when the spool and the journal on disk have different roll cycles, or one this
     *                               relay does not know.
     */
    static String of(final Path queueDir, final String configured)
    {
        final String spool = onDisk(queueDir);
        final String journal = onDisk(queueDir.resolve("journal"));
        if (spool != null && journal != null && !spool.equals(journal))
        {
            throw new IllegalStateException("the spool in " + queueDir + " has roll cycle " + spool +
                " and its journal " + journal + "; they must share one (restore the queue directory as it was)");
        }
        return spool != null ? spool : journal != null ? journal : configured;
    }

    /** The name of the roll cycle the Chronicle queue in {@code dir} has on disk; null when there is none. */
    private static String onDisk(final Path dir)
    {
        if (!Files.isRegularFile(dir.resolve(METADATA)))
        {
            return null;
        }
        // Opened with no cycle, Chronicle takes the one in the metadata without a warning; no cycle file is touched.
        final RollCycle stored;
        try (SingleChronicleQueue queue = SingleChronicleQueueBuilder.binary(dir).build())
        {
            stored = queue.rollCycle();
        }
        for (final String name : Spool.ROLL_CYCLE_NAMES)
        {
            final RollCycle known = Spool.rollCycle(name);
            if (known.format().equals(stored.format()) && known.lengthInMillis() == stored.lengthInMillis())
            {
                return name;
            }
        }
        throw new IllegalStateException("the queue in " + dir + " has a roll cycle this relay does not know (files " +
            stored.format() + ", " + stored.lengthInMillis() + " ms each)");
    }
}
