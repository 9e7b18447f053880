package dev.relay.net;

/**
 * The timeouts of one selector loop's connections, kept as intrusive deadline lists: one doubly linked list per
 * distinct timeout duration, whose links are fields of the {@link Timer} itself (a connection is its own timer).
 * <p>
 * Why lists and not a wheel or a heap: every timeout a loop arms is "now + one of a handful of configured durations"
 * (command, data, connect, the delivery phases, the close grace). On a clock that never goes back, a timer appended
 * to a list later than another of the same duration is never due earlier, so each list is sorted by construction:
 * {@link #arm} appends at the tail (moving the timer if it was armed), {@link #cancel} unlinks, and {@link #poll}
 * walks each list from its head while the head is due. Every operation is O(1) (a scan of at most
 * {@link #MAX_DURATIONS} list heads aside) and allocates nothing; the memory is two links and a deadline inside each
 * live connection plus a fixed table of heads, so nothing grows with a burst of connections and stays after it.
 * (Agrona's {@code DeadlineTimerWheel}, used before, grows a tick's slot array when many timers share a tick and
 * never shrinks it: 5000 connections opened in one burst left 10-15 MiB of live heap behind.)
 * <p>
 * Owned by one loop thread; not thread safe. Allocates nothing after construction.
 */
final class DeadlineLists<T extends DeadlineLists.Timer>
{
    /** Distinct durations one loop may use; more is a bug (a timeout computed rather than configured). */
    static final int MAX_DURATIONS = 16;
    static final long NOT_ARMED = Long.MAX_VALUE;

    /** The links and deadline a timed object carries; only {@link DeadlineLists} changes them. */
    abstract static class Timer
    {
        private Timer previous;
        private Timer next;
        private long deadlineMs = NOT_ARMED;
        private int list = -1;

        /** When this timer is due, or {@link #NOT_ARMED}. */
        final long deadlineMs()
        {
            return deadlineMs;
        }

        final boolean isArmed()
        {
            return list >= 0;
        }
    }

    /** Called for each expired timer, which is no longer armed; it may arm or cancel any timer, itself included. */
    @FunctionalInterface
    interface ExpiryHandler<T>
    {
        void onExpiry(T timer, long nowMs);
    }

    private final long[] durationsMs = new long[MAX_DURATIONS];
    private final Timer[] heads = new Timer[MAX_DURATIONS];
    private final Timer[] tails = new Timer[MAX_DURATIONS];
    private int lists;
    private int armed;

    /**
     * Arms {@code timer} to expire at {@code nowMs + durationMs}, replacing any earlier arming (shorter or longer).
     * {@code nowMs} must not go back between calls (a monotonic clock); if it does, the timer is due no earlier than
     * the last one armed with the same duration, so lists stay sorted and it is late by at most the step back.
     *
     * @throws IllegalArgumentException when {@code durationMs} is not positive.
     * @throws IllegalStateException    when this would be the {@link #MAX_DURATIONS}+1st distinct duration.
     */
    void arm(final T timer, final long nowMs, final long durationMs)
    {
        if (durationMs <= 0)
        {
            throw new IllegalArgumentException("timeout must be positive: " + durationMs);
        }
        final Timer node = timer;
        final int list = node.list >= 0 && durationsMs[node.list] == durationMs ? node.list : listFor(durationMs);
        final Timer tail = tails[list];
        final long deadlineMs = tail == null ? nowMs + durationMs : Math.max(nowMs + durationMs, tail.deadlineMs);
        if (tail == node)
        {
            node.deadlineMs = deadlineMs;
            return;
        }
        cancel(node);
        node.deadlineMs = deadlineMs;
        node.list = list;
        node.previous = tail;
        if (tail == null)
        {
            heads[list] = node;
        }
        else
        {
            tail.next = node;
        }
        tails[list] = node;
        armed++;
    }

    /** Disarms {@code timer}; nothing happens if it is not armed. */
    void cancel(final Timer timer)
    {
        final int list = timer.list;
        if (list < 0)
        {
            return;
        }
        final Timer previous = timer.previous;
        final Timer next = timer.next;
        if (previous == null)
        {
            heads[list] = next;
        }
        else
        {
            previous.next = next;
        }
        if (next == null)
        {
            tails[list] = previous;
        }
        else
        {
            next.previous = previous;
        }
        timer.previous = null;
        timer.next = null;
        timer.deadlineMs = NOT_ARMED;
        timer.list = -1;
        armed--;
    }

    /**
     * Expires at most {@code limit} timers due at {@code nowMs} (deadline {@code <= nowMs}), each disarmed before
     * {@code handler} sees it. Those beyond the limit stay due for the next poll.
     *
     * @return how many expired.
     */
    @SuppressWarnings("unchecked")
    int poll(final long nowMs, final ExpiryHandler<? super T> handler, final int limit)
    {
        int expired = 0;
        for (int list = 0; list < lists && expired < limit; list++)
        {
            Timer head;
            while (expired < limit && (head = heads[list]) != null && head.deadlineMs <= nowMs)
            {
                cancel(head);
                expired++;
                handler.onExpiry((T)head, nowMs);
            }
        }
        return expired;
    }

    /** The earliest deadline of any armed timer, or {@link #NOT_ARMED} when none is armed. */
    long nextDeadlineMs()
    {
        long earliest = NOT_ARMED;
        for (int list = 0; list < lists; list++)
        {
            final Timer head = heads[list];
            if (head != null && head.deadlineMs < earliest)
            {
                earliest = head.deadlineMs;
            }
        }
        return earliest;
    }

    /** How many timers are armed. */
    int size()
    {
        return armed;
    }

    private int listFor(final long durationMs)
    {
        for (int list = 0; list < lists; list++)
        {
            if (durationsMs[list] == durationMs)
            {
                return list;
            }
        }
        if (lists == MAX_DURATIONS)
        {
            throw new IllegalStateException("more than " + MAX_DURATIONS + " distinct timeouts; new: " + durationMs);
        }
        durationsMs[lists] = durationMs;
        return lists++;
    }
}
