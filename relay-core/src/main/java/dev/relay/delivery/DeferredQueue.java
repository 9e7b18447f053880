package dev.relay.delivery;

import dev.relay.spool.DeferredIndex;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.QueueEntry;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpooledMessage;

import java.util.function.IntPredicate;

/**
 * The queue manager's deferred queue (Postfix's {@code deferred/}): a message whose next attempt is not soon leaves
 * the active set for the {@link DeferredIndex} ({@link #park}), and comes back when its slot has begun
 * ({@link #takeDue}) or when its spool cycle is being emptied ({@link #pullNext}), its envelope read back from the
 * spool. Each move is journaled (SCHEDULED after the entry is written, ACTIVATED before it is taken), which is what
 * a start after a crash needs to know where the message is ({@code QueueRecovery}).
 * <p>
 * Owned by the queue manager's thread. Allocates the message taken back (envelope and state), nothing per park.
 */
final class DeferredQueue
{
    private final DeferredIndex index;
    private final OutcomeJournal journal;
    private final SpoolReader reader;
    private final Spool spool;
    private final QueueEntry scratch = new QueueEntry();
    private final DeferredIndex.ScanCursor pullCursor = new DeferredIndex.ScanCursor();
    private long lost;

    DeferredQueue(final DeferredIndex index, final OutcomeJournal journal, final SpoolReader reader, final Spool spool)
    {
        this.index = index;
        this.journal = journal;
        this.reader = reader;
        this.spool = spool;
    }

    DeferredIndex index()
    {
        return index;
    }

    /**
     * Writes {@code queued} to disk to wait until {@code dueMs}; the caller then drops it from the active set.
     *
     * @return false when the index could not take it (a full file system): it stays active.
     */
    boolean park(final QueuedMessage queued, final long dueMs)
    {
        queued.toEntry(scratch, dueMs, spool.cycleOf(queued.message.startIndex()));
        if (!index.append(scratch))
        {
            return false;
        }
        journal.recordScheduled(queued.queueId(), queued.attempts, dueMs, scratch.slot, scratch.position);
        return true;
    }

    /**
     * The next message waiting on disk whose slot has begun by {@code horizonMs}, taken back; null when there is
     * none. A message whose records are gone from the spool is reported and dropped.
     */
    QueuedMessage takeDue(final long horizonMs)
    {
        while (index.next(horizonMs, scratch))
        {
            final QueuedMessage queued = take();
            if (queued != null)
            {
                return queued;
            }
        }
        return null;
    }

    /**
     * The next message waiting on disk whose records are in a cycle {@code cycles} accepts (any due time), taken
     * back to be moved forward; null when a pass over the index found none more (the next call starts over).
     *
     * @param budget entries to look at, at most: {@code budget[0]} is counted down.
     */
    QueuedMessage pullNext(final IntPredicate cycles, final int[] budget)
    {
        while (budget[0] > 0 && index.scanNext(pullCursor, scratch))
        {
            budget[0]--;
            if (cycles.test(scratch.cycle))
            {
                final QueuedMessage queued = take();
                if (queued != null)
                {
                    return queued;
                }
            }
        }
        return null;
    }

    /** Messages dropped because their records were gone (a spool damaged under them). */
    long lost()
    {
        return lost;
    }

    private QueuedMessage take()
    {
        final SpooledMessage message = reader.readMessage(scratch.queueId, scratch.startIndex, scratch.endIndex,
            scratch.bodyBytes, scratch.chunkCount);
        journal.recordActivated(scratch.queueId, scratch.slot, scratch.position);
        index.take(scratch);
        if (message == null)
        {
            lost++;
            DeliveryLog.error("{}: deferred, but its records are no longer in the spool (damaged); not delivered",
                dev.relay.smtp.QueueIds.format(scratch.queueId));
            return null;
        }
        return QueuedMessage.fromEntry(scratch, message);
    }
}
