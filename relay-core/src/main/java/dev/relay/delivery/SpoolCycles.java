package dev.relay.delivery;

import dev.relay.spool.DeferredIndex;
import dev.relay.spool.LiveByCycle;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolInjector;
import dev.relay.spool.SpooledMessage;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.BiConsumer;

/**
 * Disk use follows live mail (the design's promise 4): which spool cycle files live messages pin (the cycle of each
 * one's first record: active ones here, deferred ones in the {@link DeferredIndex}'s counts), moving the live mail
 * out of cycles that hold little of it ({@link SpoolInjector#requeue}), and deleting every spool and journal cycle
 * file that nothing needs any more.
 * <p>
 * What is moved: a cycle older than the previous one whose live bytes are under a quarter of the bytes spooled in it
 * ({@link #isSparse}). A cycle full of deferred mail, the normal state during an outage, stays where it is: moving it
 * would copy the whole backlog at every roll and free nothing. Once most of a cycle's mail is delivered, the rest (a
 * quarter at most) is copied into the current cycle and the file goes; so disk use stays under about four times the
 * live mail in old cycles, and every byte moved frees three.
 * <p>
 * Owned by the queue manager's thread (it also owns the tailer and the journal's appender).
 */
final class SpoolCycles
{
    /** A cycle is moved out of when its live bytes are under 1/{@value} of its spooled bytes. */
    static final int SPARSE_RATIO = 4;
    /** What a message's envelope and records are counted for, beside its body. */
    private static final long MESSAGE_OVERHEAD_BYTES = 512;

    private final Spool spool;
    private final OutcomeJournal journal;
    /** The deferred index's live entries per cycle (the same object for the index's life). */
    private final LiveByCycle deferredByCycle;
    private final SpoolInjector injector;
    /** Active messages by the spool cycle of their first record. */
    private final TreeMap<Integer, Set<QueuedMessage>> activeByCycle = new TreeMap<>();
    /** Bytes the tailer (and the mover) put in each cycle that still has a file. */
    private final TreeMap<Integer, Long> spooledBytes = new TreeMap<>();
    /** Messages the injector is asked to move, by queue id. */
    private final Map<Long, QueuedMessage> moving = new HashMap<>();
    private final BiConsumer<QueuedMessage, SpooledMessage> onMoved;
    private final SpoolInjector.Requeued requeued = new SpoolInjector.Requeued()
    {
        @Override
        public void onCopied(final long queueId, final SpooledMessage copy)
        {
            final QueuedMessage queued = moving.remove(queueId);
            if (queued != null && queued.moving && !queued.finished)
            {
                DeliveryLog.info("{}: moved forward to the current spool cycle", queued.queueIdText());
                unpin(queued);
                queued.message = copy;
                queued.moving = false;
                pin(queued);
                addSpooled(copy);
                onMoved.accept(queued, copy);
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

    /** @param onMoved told (on this thread) when a message's copy is committed and it now reads from the copy. */
    SpoolCycles(final Spool spool, final OutcomeJournal journal, final DeferredIndex index,
        final SpoolInjector injector, final BiConsumer<QueuedMessage, SpooledMessage> onMoved)
    {
        this.spool = spool;
        this.journal = journal;
        this.deferredByCycle = index.buckets().liveByCycle();
        this.injector = injector;
        this.onMoved = onMoved;
    }

    int cycleOf(final QueuedMessage queued)
    {
        return spool.cycleOf(queued.message.startIndex());
    }

    void pin(final QueuedMessage queued)
    {
        activeByCycle.computeIfAbsent(cycleOf(queued), ignored -> new HashSet<>()).add(queued);
    }

    void unpin(final QueuedMessage queued)
    {
        final int cycle = cycleOf(queued);
        final Set<QueuedMessage> pinned = activeByCycle.get(cycle);
        if (pinned != null && pinned.remove(queued) && pinned.isEmpty())
        {
            activeByCycle.remove(cycle);
        }
    }

    /** The bytes spooled per cycle as a checkpoint had them (recovery). */
    void restoreSpooled(final Map<Integer, Long> bytes)
    {
        spooledBytes.putAll(bytes);
    }

    /** Bytes spooled per cycle, read only (the checkpoint). */
    Map<Integer, Long> spooledBytes()
    {
        return spooledBytes;
    }

    /** The tailer read {@code message}: its bytes count in its cycle. */
    void addSpooled(final SpooledMessage message)
    {
        spooledBytes.merge(spool.cycleOf(message.startIndex()), sizeOf(message.bodyBytes()), Long::sum);
    }

    /**
     * The spool bytes a message is counted for: its body and a fixed allowance for its envelope and records, the
     * same for mail read, active and deferred, so a cycle whose every message is live is never sparse.
     */
    private static long sizeOf(final long bodyBytes)
    {
        return bodyBytes + MESSAGE_OVERHEAD_BYTES;
    }

    /**
     * Whether {@code cycle} is older than the previous one and its live mail (active and deferred) is under
     * 1/{@value #SPARSE_RATIO} of what was spooled in it; a cycle whose spooled bytes are unknown (from before the
     * counts) is never sparse.
     */
    boolean isSparse(final int cycle)
    {
        if (cycle >= spool.currentCycle() - 1)
        {
            return false;
        }
        final Long spooled = spooledBytes.get(cycle);
        if (spooled == null || spooled <= 0)
        {
            return false;
        }
        long live = deferredByCycle.bytesIn(cycle) + deferredByCycle.countIn(cycle) * MESSAGE_OVERHEAD_BYTES;
        final Set<QueuedMessage> active = activeByCycle.get(cycle);
        if (active != null)
        {
            for (final QueuedMessage queued : active)
            {
                live += sizeOf(queued.message.bodyBytes());
            }
        }
        return live * SPARSE_RATIO < spooled;
    }

    /** The sparse cycles that deferred mail is in (worth a look at the deferred index for its messages). */
    Set<Integer> sparseCycles()
    {
        final Set<Integer> sparse = new HashSet<>();
        for (final int cycle : spooledBytes.headMap(spool.currentCycle() - 1).keySet())
        {
            if (deferredByCycle.bytesIn(cycle) > 0 && isSparse(cycle))
            {
                sparse.add(cycle);
            }
        }
        return sparse;
    }

    /** Active messages in sparse cycles, not in a round, are moved (as many as the injector takes now). */
    void moveActive()
    {
        for (final Map.Entry<Integer, Set<QueuedMessage>> cycle : activeByCycle.headMap(spool.currentCycle() - 1)
            .entrySet())
        {
            if (!isSparse(cycle.getKey()))
            {
                continue;
            }
            for (final QueuedMessage queued : cycle.getValue())
            {
                if (queued.jobsOut == 0 && !queued.moving && !queued.bouncing && !queued.finished && !move(queued))
                {
                    return;
                }
            }
        }
    }

    /**
     * Asks the injector to copy {@code queued} into the current cycle (a slice per pass); the copy takes over when
     * it is committed.
     *
     * @return false when the injector has enough waiting (ask again later).
     */
    boolean move(final QueuedMessage queued)
    {
        if (queued.moving)
        {
            return true;
        }
        if (!injector.requeue(queued.message, requeued))
        {
            return false;
        }
        queued.moving = true;
        moving.put(queued.queueId(), queued);
        return true;
    }

    /** Whether the injector would take another message to move now. */
    boolean canMove()
    {
        return moving.size() < SpoolInjector.MAX_WAITING;
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

    /** The earliest cycle an active message is in; {@link Integer#MAX_VALUE} when none. */
    int minActiveCycle()
    {
        return activeByCycle.isEmpty() ? Integer.MAX_VALUE : activeByCycle.firstKey();
    }

    /**
     * Deletes the spool cycles before {@code keepFrom} (and before every live message and the current cycle) and
     * the journal cycles before {@code journalKeepFrom} as well.
     */
    void deleteBefore(final int keepFrom, final int journalKeepFrom)
    {
        int spoolKeep = Math.min(keepFrom, spool.currentCycle());
        spoolKeep = Math.min(spoolKeep, minActiveCycle());
        spoolKeep = Math.min(spoolKeep, deferredByCycle.minCycle());
        final int deleted = spool.deleteCyclesBefore(spoolKeep);
        final int deletedJournal = journal.deleteCyclesBefore(Math.min(spoolKeep, journalKeepFrom));
        spooledBytes.headMap(spoolKeep).clear();
        if (deleted + deletedJournal > 0)
        {
            DeliveryLog.info("spool: deleted {} finished cycle files ({} journal)", deleted, deletedJournal);
        }
    }
}
