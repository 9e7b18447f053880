package dev.relay.spool;

import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Collection;

/**
 * Where a {@link SpoolReader}'s lanes stand: the index per lane a new reader must resume from, the oldest cycle
 * that must stay on disk for it, and whether a clean-up deleted the cycle a tailer stood in. Static: the reader
 * passes its lanes, tailers and pending messages, so this owns no state; called on the reader's thread.
 */
final class ReaderPositions
{
    // logs under the reader it serves, as it did when this lived there
    private static final Logger LOG = LoggerFactory.getLogger(SpoolReader.class);

    private ReaderPositions()
    {
    }

    /**
     * Moves {@code tailer} of lane {@code lane} to {@code index} ({@link SpoolReader#startAt}); -1 leaves it at the
     * start, and an index whose cycle is gone starts at the beginning.
     */
    static void moveTo(final ExcerptTailer tailer, final int lane, final long index)
    {
        if (index < 0 || tailer.moveToIndex(index) || tailer.index() == index)
        {
            return;
        }
        tailer.toStart();
        if (tailer.index() > index)
        {
            // its cycle was cleaned up: the lane had been read past it (a lane read to its end keeps only
            // the last cycle), so what is there now is all unread
            return;
        }
        LOG.warn("spool: index {} of lane {} to resume from is not there; reading the lane from its start",
            Long.toHexString(index), lane);
        tailer.toStart();
    }

    /** Per lane of {@code lanes}, the index of its last record; -1 when it is empty or absent. */
    static long[] lastIndexes(final SpoolLanes lanes)
    {
        final long[] last = new long[lanes.count()];
        for (int lane = 0; lane < last.length; lane++)
        {
            final SingleChronicleQueue queue = lanes.queue(lane);
            last[lane] = queue == null ? -1 : Math.max(-1, queue.lastIndex());
        }
        return last;
    }

    /**
     * Per lane, the lowest index a new reader must start from to miss nothing not yet returned: {@code readIndexes}
     * (changed in place and returned), lowered to the START of each lane's oldest {@code pending} message.
     */
    static long[] resumeIndexes(final long[] readIndexes, final Collection<SpooledMessage> pending)
    {
        final long[] resume = readIndexes;
        final boolean[] seen = new boolean[resume.length];
        for (final SpooledMessage message : pending)
        {
            // insertion order is record order within a lane: the first one seen is the lane's oldest
            if (message.lane < resume.length && !seen[message.lane])
            {
                seen[message.lane] = true;
                resume[message.lane] = Math.min(resume[message.lane], message.startIndex);
            }
        }
        return resume;
    }

    /** The oldest cycle a new reader would start in; see {@link SpoolReader#resumeCycle()}. */
    static int resumeCycle(
        final SpoolLanes lanes, final long[] resume, final long[] last, final Collection<SpooledMessage> pending)
    {
        final boolean[] hasPending = new boolean[resume.length];
        for (final SpooledMessage message : pending)
        {
            if (message.lane < hasPending.length)
            {
                hasPending[message.lane] = true;
            }
        }
        int cycle = Integer.MAX_VALUE;
        for (int lane = 0; lane < resume.length; lane++)
        {
            final SingleChronicleQueue queue = lanes.queue(lane);
            if (queue == null || resume[lane] < 0)
            {
                continue;
            }
            if (!hasPending[lane] && resume[lane] > last[lane])
            {
                cycle = Math.min(cycle, queue.cycle() - 1);
                continue;
            }
            cycle = Math.min(cycle, queue.rollCycle().toCycle(resume[lane]));
        }
        return cycle;
    }

    /**
     * Whether the cycle file {@code tailer} of {@code queue} stood in was deleted under it; if so, moves it to the
     * start of the first cycle on disk, which holds only records written after the ones it read.
     */
    static boolean overtakenByCleanUp(final SingleChronicleQueue queue, final ExcerptTailer tailer)
    {
        final long index = tailer.index();
        final int firstCycle = queue.firstCycle();
        if (index <= 0 || firstCycle == Integer.MAX_VALUE || queue.rollCycle().toCycle(index) >= firstCycle)
        {
            return false;
        }
        tailer.toStart();
        return true;
    }
}
