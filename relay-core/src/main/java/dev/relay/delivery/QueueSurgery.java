package dev.relay.delivery;

import dev.relay.smtp.QueueIds;
import dev.relay.spool.DeferredIndex;
import dev.relay.spool.OutcomeJournal;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.TreeMap;

/**
 * Queue surgery, Postfix's postsuper verbs: runs an operator's {@link QueueCommand} (hold, release, delete, requeue)
 * over the queue manager's active set, then over the {@link DeferredQueue} on disk, whole, in one pass, and logs each
 * message it touches with the operator's command. A message in the active set changes through the moves only the
 * queue manager may make ({@link ActiveSet}); one waiting on disk is changed there ({@link DeferredQueue#apply}).
 * <ul>
 * <li>hold: no round starts; the message waits in the hold bucket (at once, or when its round or its move forward
 * ends).</li>
 * <li>release: due now, held no more; requeue: due now (held mail is left alone). Both end the delivery loops'
 * back-offs first, as a flush does.</li>
 * <li>delete: every recipient not yet final is journaled DELETED, then the message is done; no DSN. One with a round
 * out is deleted when the round ends.</li>
 * </ul>
 * Owned by the queue manager's thread. Allocates per command and per message touched.
 */
final class QueueSurgery
{
    /** What the queue manager lends: its active set, and the moves of an active message that it alone makes. */
    interface ActiveSet
    {
        Collection<QueuedMessage> messages();

        /** Takes the message off the retry schedule (it stays active). */
        void unschedule(QueuedMessage queued);

        /** Writes the message to the deferred queue (a held one to the hold bucket) and drops it from memory. */
        void park(QueuedMessage queued);

        void startRound(QueuedMessage queued);

        /** The message is finished: DONE journaled, dropped from the active set. */
        void done(QueuedMessage queued);
    }

    private final OutcomeJournal journal;
    private final DeferredQueue deferred;
    private final DeferredIndex index;
    private final DeliveryLoopProxy[] loops;
    private final ActiveSet active;

    QueueSurgery(
        final OutcomeJournal journal,
        final DeferredQueue deferred,
        final DeferredIndex index,
        final DeliveryLoopProxy[] loops,
        final ActiveSet active)
    {
        this.journal = journal;
        this.deferred = deferred;
        this.index = index;
        this.loops = loops;
        this.active = active;
    }

    /**
     * One command over the active set, then over the deferred index up to where each bucket ended before it began
     * (so what it writes itself is not met again).
     *
     * @return messages touched.
     */
    int run(final QueueCommand command, final long nowMs)
    {
        final TreeMap<Long, Long> ends = index.buckets().liveWriteEnds();
        final List<QueuedMessage> dueNow = new ArrayList<>();
        int touched = 0;
        for (final QueuedMessage queued : new ArrayList<>(active.messages()))
        {
            if (!queued.finished && !queued.bouncing && selects(command, queued) && applyActive(command, queued,
                dueNow))
            {
                touched++;
                logTouched(command, queued.queueId());
            }
        }
        touched += deferred.apply(command, ends, nowMs, this::logTouched);
        if (!dueNow.isEmpty() || (touched > 0 && (command.verb == QueueCommand.Verb.RELEASE ||
            command.verb == QueueCommand.Verb.REQUEUE)))
        {
            // due now means tried now: back-offs end, as for a flush, before the loops see the jobs
            for (final DeliveryLoopProxy loop : loops)
            {
                loop.flush();
            }
        }
        for (final QueuedMessage queued : dueNow)
        {
            queued.nextAttemptMs = nowMs;
            active.startRound(queued);
        }
        DeliveryLog.info("queue command {}: {} messages ({})", command, touched, command.operator);
        return touched;
    }

    private boolean selects(final QueueCommand command, final QueuedMessage queued)
    {
        if (command.selects(queued.queueId()))
        {
            return true;
        }
        if (!command.needsEnvelope())
        {
            return false;
        }
        final boolean[] pending = new boolean[queued.recipientCount()];
        for (int i = 0; i < pending.length; i++)
        {
            final byte status = queued.status[i];
            pending[i] = status != QueuedMessage.DELIVERED && status != QueuedMessage.BOUNCED &&
                status != QueuedMessage.DELETED;
        }
        return command.selects(queued.message.reversePath(), queued.message.recipients(), pending);
    }

    /** {@code command} on one active message; whether it changed anything. */
    private boolean applyActive(final QueueCommand command, final QueuedMessage queued,
        final List<QueuedMessage> dueNow)
    {
        switch (command.verb)
        {
            case HOLD:
                if (queued.held)
                {
                    return false;
                }
                queued.held = true;
                journal.recordHeld(queued.queueId(), true);
                active.unschedule(queued);
                if (queued.jobsOut == 0 && queued.moving)
                {
                    queued.parkWhenMoved = true;
                }
                else if (queued.jobsOut == 0)
                {
                    active.park(queued);
                }
                return true;
            case RELEASE:
                if (!queued.held)
                {
                    return false;
                }
                queued.held = false;
                journal.recordHeld(queued.queueId(), false);
                if (queued.jobsOut == 0)
                {
                    dueNow.add(queued);
                }
                return true;
            case REQUEUE:
                if (queued.held)
                {
                    return false;
                }
                if (queued.jobsOut == 0)
                {
                    dueNow.add(queued);
                }
                return true;
            default:
                if (queued.jobsOut > 0)
                {
                    queued.deleteAfterRound = true;
                }
                else
                {
                    delete(queued);
                }
                return true;
        }
    }

    /** An operator deleted the message: every recipient not yet final is finished as deleted, no DSN. */
    void delete(final QueuedMessage queued)
    {
        for (int i = 0; i < queued.recipientCount(); i++)
        {
            final byte status = queued.status[i];
            if (status != QueuedMessage.DELIVERED && status != QueuedMessage.BOUNCED &&
                status != QueuedMessage.DELETED)
            {
                queued.status[i] = QueuedMessage.DELETED;
                journal.recordResult(queued.queueId(), i, OutcomeJournal.DELETED, queued.attempts, 0,
                    DeferredQueue.DELETED_TEXT);
            }
        }
        active.done(queued);
    }

    /** As postsuper logs it, with who asked: {@code 6H27MCQFW0000: placed on hold (alice: relay spool hold ID)}. */
    private void logTouched(final QueueCommand command, final long queueId)
    {
        DeliveryLog.info("{}: {} ({})", QueueIds.format(queueId), command.verb.logged, command.operator);
    }
}
