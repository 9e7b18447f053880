package dev.relay.delivery;

import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolInjector;
import dev.relay.spool.SpoolReader;

import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Disk use follows live mail (the design's promise 4): which spool cycle files the live messages pin (the cycle of
 * each one's first record), moving the messages of old ones forward ({@link SpoolInjector#requeue}), and the
 * deletion of every spool and journal cycle file no live message, no message still being received and no reader
 * position needs any more.
 * <p>
 * Owned by the queue manager's thread (it also owns the tailer and the journal's appender).
 */
final class SpoolCycles
{
    private final Spool spool;
    private final OutcomeJournal journal;
    private final SpoolReader reader;
    private final SpoolInjector injector;
    /** Live messages by the spool cycle of their first record. */
    private final TreeMap<Integer, Set<QueuedMessage>> liveByCycle = new TreeMap<>();
    /** Messages the injector is asked to move, by queue id. */
    private final Map<Long, QueuedMessage> moving = new HashMap<>();
    private final SpoolInjector.Requeued requeued = new SpoolInjector.Requeued()
    {
        @Override
        public void onCopied(final long queueId)
        {
            final QueuedMessage queued = moving.remove(queueId);
            if (queued != null)
            {
                // the copy takes over when the tailer reads it; until then the tailer knows to skip it if finished
                queued.copyPending = true;
                DeliveryLog.info("{}: moved forward to the current spool cycle", queued.queueIdText());
            }
        }

        @Override
        public void onFailed(final long queueId, final String why)
        {
            final QueuedMessage queued = moving.remove(queueId);
            if (queued != null)
            {
                queued.moving = false;
                DeliveryLog.warn("{}: cannot move forward: {}", queued.queueIdText(), why);
            }
        }
    };

    SpoolCycles(final Spool spool, final OutcomeJournal journal, final SpoolReader reader, final SpoolInjector injector)
    {
        this.spool = spool;
        this.journal = journal;
        this.reader = reader;
        this.injector = injector;
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
     * Messages in a round, being moved or bounced are left alone; a copy is made a slice per pass of the queue
     * manager ({@link SpoolInjector#doWork()}).
     */
    void moveForward()
    {
        for (final QueuedMessage queued : stale())
        {
            if (queued.jobsOut == 0 && !queued.moving && !queued.copyPending && !queued.bouncing &&
                !queued.finished && queued.newerCopy == null)
            {
                if (!injector.requeue(queued.message, requeued))
                {
                    break;
                }
                queued.moving = true;
                moving.put(queued.queueId(), queued);
            }
        }
    }

    /** A round of {@code queued} starts: stop moving it (a partial copy is left without its END). */
    void stopMoving(final QueuedMessage queued)
    {
        if (queued.moving)
        {
            injector.abandon(queued.queueId());
            moving.remove(queued.queueId());
            queued.moving = false;
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
