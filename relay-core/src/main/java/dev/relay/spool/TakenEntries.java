package dev.relay.spool;

import java.util.ArrayDeque;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * The {@link DeferredIndex} entries taken back into the active set and not yet killed on disk, oldest first: an entry
 * is killed only once a checkpoint that names it is durable ({@link DeferredIndex#take}). Those taken ahead of their
 * bucket's read position (pulled to be moved forward, or named by the journal at recovery) are also kept by slot, so
 * that reading the bucket in order skips them; and counted by slot, so that a bucket's file is not deleted while a
 * kill for it waits (the kill would hit the next file of that slot). Holds what was taken between two checkpoints,
 * and the kills the last durable one allows that are not done yet, no more.
 * <p>
 * Owned by the index's thread.
 */
final class TakenEntries
{
    /** Kills an entry on disk. */
    @FunctionalInterface
    interface Killer
    {
        void kill(long slot, long position);
    }

    private final ArrayDeque<DeferredIndex.Kill> pending = new ArrayDeque<>();
    private final Map<Long, Set<Long>> ahead = new HashMap<>();
    private final Map<Long, int[]> pendingBySlot = new HashMap<>();

    /** The entry at {@code slot}, {@code position} was taken; {@code aheadOfRead}: its bucket's reader is before it. */
    void add(final long slot, final long position, final boolean aheadOfRead)
    {
        pending.addLast(new DeferredIndex.Kill(slot, position));
        pendingBySlot.computeIfAbsent(slot, ignored -> new int[1])[0]++;
        if (aheadOfRead)
        {
            ahead.computeIfAbsent(slot, ignored -> new HashSet<>()).add(position);
        }
    }

    /** Whether the entry at {@code slot}, {@code position} was taken ahead of its bucket's reader. */
    boolean isTakenAhead(final long slot, final long position)
    {
        if (ahead.isEmpty())
        {
            return false;
        }
        final Set<Long> taken = ahead.get(slot);
        return taken != null && taken.contains(position);
    }

    /** Whether an entry of {@code slot} is taken and not yet killed. */
    boolean anyPendingIn(final long slot)
    {
        return pendingBySlot.containsKey(slot);
    }

    /** Taken and not yet killed, oldest first. */
    Collection<DeferredIndex.Kill> pending()
    {
        return pending;
    }

    /** Hands the oldest {@code count} to {@code killer} and forgets them. */
    void kill(final int count, final Killer killer)
    {
        for (int i = 0; i < count && !pending.isEmpty(); i++)
        {
            final DeferredIndex.Kill kill = pending.pollFirst();
            killer.kill(kill.slot(), kill.position());
            final int[] inSlot = pendingBySlot.get(kill.slot());
            if (inSlot != null && --inSlot[0] == 0)
            {
                pendingBySlot.remove(kill.slot());
            }
            final Set<Long> taken = ahead.get(kill.slot());
            if (taken != null && taken.remove(kill.position()) && taken.isEmpty())
            {
                ahead.remove(kill.slot());
            }
        }
    }

    /** The slot's file is gone: nothing in it is to be skipped. */
    void forgetSlot(final long slot)
    {
        ahead.remove(slot);
    }
}
