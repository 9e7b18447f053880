package dev.relay.delivery;

import dev.relay.smtp.QueueIds;
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
 * a start after a crash needs to know where the message is ({@code QueueRecovery}). An operator's command changes
 * a message waiting here without taking it into the active set ({@link #apply}): its entry is written again (to the
 * hold bucket, or due now) and the old one taken, or, deleted, just taken.
 * <p>
 * Owned by the queue manager's thread. Allocates the message taken back (envelope and state), nothing per park.
 */
final class DeferredQueue
{
    /** The journal's text for a recipient an operator deleted. */
    static final String DELETED_TEXT = "deleted by the operator";

    private final DeferredIndex index;
    private final OutcomeJournal journal;
    private final SpoolReader reader;
    private final Spool spool;
    private final QueueEntry scratch = new QueueEntry();
    private final QueueEntry rewritten = new QueueEntry();
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

    /**
     * An operator's {@code command} over the messages waiting here, each bucket up to its end in {@code ends} (where
     * it ended before the command began).
     *
     * @param onTouched told each message touched.
     * @return messages touched.
     */
    int apply(final QueueCommand command, final java.util.Map<Long, Long> ends, final long nowMs,
        final java.util.function.BiConsumer<QueueCommand, Long> onTouched)
    {
        int touched = 0;
        for (final java.util.Map.Entry<Long, Long> bucket : ends.entrySet())
        {
            long at = 0;
            while ((at = index.nextLive(bucket.getKey(), at, bucket.getValue(), scratch)) >= 0)
            {
                if (applyToEntry(command, nowMs))
                {
                    touched++;
                    onTouched.accept(command, scratch.queueId);
                }
            }
        }
        return touched;
    }

    /** {@code command} on the entry in {@link #scratch}; whether it changed anything. */
    private boolean applyToEntry(final QueueCommand command, final long nowMs)
    {
        final boolean held = scratch.held();
        final QueueCommand.Verb verb = command.verb;
        if (held ? verb == QueueCommand.Verb.HOLD || verb == QueueCommand.Verb.REQUEUE :
            verb == QueueCommand.Verb.RELEASE)
        {
            return false;
        }
        if (!command.selects(scratch.queueId) && !selectsEnvelope(command))
        {
            return false;
        }
        final long queueId = scratch.queueId;
        if (verb == QueueCommand.Verb.DELETE)
        {
            journal.recordActivated(queueId, scratch.slot, scratch.position);
            index.take(scratch);
            for (int i = 0; i < scratch.recipientCount(); i++)
            {
                if (scratch.status[i] != QueueEntry.DELIVERED && scratch.status[i] != QueueEntry.BOUNCED)
                {
                    journal.recordResult(queueId, i, OutcomeJournal.DELETED, scratch.attempts, 0, DELETED_TEXT);
                }
            }
            journal.recordDone(queueId);
            return true;
        }
        // the new entry first: a crash before the journal names it leaves the old one in force
        rewritten.copyFrom(scratch);
        if (verb == QueueCommand.Verb.HOLD)
        {
            rewritten.flags |= QueueEntry.FLAG_HELD;
            rewritten.dueMs = DeferredIndex.HOLD_SLOT;
        }
        else
        {
            rewritten.flags &= ~QueueEntry.FLAG_HELD;
            rewritten.dueMs = nowMs;
        }
        if (!index.append(rewritten))
        {
            DeliveryLog.warn("{}: not {}: the deferred index cannot be written", QueueIds.format(queueId),
                verb.logged);
            return false;
        }
        journal.recordActivated(queueId, scratch.slot, scratch.position);
        index.take(scratch);
        journal.recordScheduled(queueId, rewritten.attempts, rewritten.dueMs, rewritten.slot, rewritten.position);
        if (verb != QueueCommand.Verb.REQUEUE)
        {
            journal.recordHeld(queueId, verb == QueueCommand.Verb.HOLD);
        }
        return true;
    }

    /** Whether the command's sender or recipient-domain selection takes the message of {@link #scratch}. */
    private boolean selectsEnvelope(final QueueCommand command)
    {
        if (!command.needsEnvelope())
        {
            return false;
        }
        final SpooledMessage message = reader.readMessage(scratch.lane, scratch.queueId, scratch.startIndex,
            scratch.endIndex, scratch.bodyBytes, scratch.chunkCount);
        if (message == null)
        {
            return false;
        }
        final boolean[] pending = new boolean[message.recipients().size()];
        for (int i = 0; i < pending.length; i++)
        {
            final byte status = i < scratch.recipientCount() ? scratch.status[i] : QueueEntry.READY;
            pending[i] = status != QueueEntry.DELIVERED && status != QueueEntry.BOUNCED;
        }
        return command.selects(message.reversePath(), message.recipients(), pending);
    }

    /** Messages dropped because their records were gone (a spool damaged under them). */
    long lost()
    {
        return lost;
    }

    private QueuedMessage take()
    {
        final SpooledMessage message = reader.readMessage(scratch.lane, scratch.queueId, scratch.startIndex,
            scratch.endIndex, scratch.bodyBytes, scratch.chunkCount);
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
