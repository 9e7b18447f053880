package dev.relay.delivery;

import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolReader;

import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.Set;
import java.util.TreeMap;

/**
 * Disk use follows live mail (the design's promise 4): which spool cycle files the live messages pin (the cycle of
 * each one's first record), which of them are old enough that their messages should move forward, and the deletion
 * of every spool and journal cycle file no live message, no message still being received and no reader position
 * needs any more.
 * <p>
 * Owned by the queue manager's thread (it also owns the tailer and the journal's appender).
 */
final class SpoolCycles
{
    private final Spool spool;
    private final OutcomeJournal journal;
    private final SpoolReader reader;
    /** Live messages by the spool cycle of their first record. */
    private final TreeMap<Integer, Set<QueuedMessage>> liveByCycle = new TreeMap<>();

    SpoolCycles(final Spool spool, final OutcomeJournal journal, final SpoolReader reader)
    {
        this.spool = spool;
        this.journal = journal;
        this.reader = reader;
    }

    void pin(final QueuedMessage queued)
    {
        liveByCycle.computeIfAbsent(spool.cycleOf(queued.message.startIndex()), ignored -> new HashSet<>()).add(queued);
    }

    void unpin(final QueuedMessage queued)
    {
        final int cycle = spool.cycleOf(queued.message.startIndex());
        final Set<QueuedMessage> pinned = liveByCycle.get(cycle);
        if (pinned != null && pinned.remove(queued) && pinned.isEmpty())
        {
            liveByCycle.remove(cycle);
        }
    }

    /**
     * Postfix moves mail it cannot deliver to its deferred queue; here, deferred messages whose records sit in a
     * cycle older than the previous one are copied into the current cycle (same queue id, same recipients), so a
     * few old deferred messages never pin hours of spool files. The copy takes over when the tailer reads it.
     * Messages in a round, being moved or bounced are left alone.
     */
    void moveForward(final SpoolMover mover)
    {
        for (final QueuedMessage queued : stale())
        {
            if (queued.jobsOut == 0 && !queued.moving && !queued.copyPending && !queued.bouncing &&
                !queued.finished && queued.newerCopy == null && !mover.offer(queued))
            {
                break;
            }
        }
    }

    /** The live messages of the oldest pinned cycle when it is older than the previous one, else none. */
    private Collection<QueuedMessage> stale()
    {
        if (liveByCycle.isEmpty())
        {
            return Collections.emptySet();
        }
        final int oldest = liveByCycle.firstKey();
        if (oldest >= spool.currentCycle() - 1)
        {
            return Collections.emptySet();
        }
        return liveByCycle.get(oldest);
    }

    /**
     * Deletes the spool (and journal) cycles older than every live message, every message still being received,
     * and the tailer's own position; nothing while {@code replaying} (nothing is known finished yet).
     */
    void deleteFinished(final boolean replaying)
    {
        if (replaying)
        {
            return;
        }
        int keepFrom = spool.currentCycle();
        if (!liveByCycle.isEmpty())
        {
            keepFrom = Math.min(keepFrom, liveByCycle.firstKey());
        }
        final long resumeIndex = reader.resumeIndex();
        if (resumeIndex > 0)
        {
            keepFrom = Math.min(keepFrom, spool.cycleOf(resumeIndex));
        }
        final int deleted = spool.deleteCyclesBefore(keepFrom);
        final int deletedJournal = journal.deleteCyclesBefore(keepFrom);
        if (deleted + deletedJournal > 0)
        {
            DeliveryLog.info("spool: deleted {} finished cycle files ({} journal)", deleted, deletedJournal);
        }
    }
}
