package dev.relay.delivery;

import java.util.ArrayDeque;

/**
 * The bound on {@link MxResolver}'s DNS queries outstanding at once ({@code delivery.dns.max_in_flight}) and the
 * two lines of queries waiting for a slot: the address queries of lookups already under way are served before the
 * MX queries of new ones, so a burst of new domains finishes lookups instead of starting them all.
 * <p>
 * Any thread: one lock guards the count in flight, its peak and the lines (a few field and deque operations per
 * query). Allocates only as the lines grow.
 */
final class DnsQuerySlots
{
    private final int maxInFlight;
    private int inFlight;
    private volatile int peakInFlight;
    /** Address queries of lookups under way, waiting for a slot: served first. */
    private final ArrayDeque<MxLookup.Query> waitingAddressQueries = new ArrayDeque<>();
    /** MX queries of new lookups, waiting for a slot. */
    private final ArrayDeque<MxLookup.Query> waitingMxQueries = new ArrayDeque<>();

    DnsQuerySlots(final int maxInFlight)
    {
        this.maxInFlight = maxInFlight;
    }

    /** @return true when {@code query} holds a slot now and may be sent; false when it waits in its line. */
    synchronized boolean take(final MxLookup.Query query)
    {
        if (inFlight >= maxInFlight)
        {
            (query.hostIndex < 0 ? waitingMxQueries : waitingAddressQueries).addLast(query);
            return false;
        }
        inFlight++;
        if (inFlight > peakInFlight)
        {
            peakInFlight = inFlight;
        }
        return true;
    }

    /**
     * A query was answered: its slot passes to the next waiting query, which the caller sends, or is freed.
     *
     * @return the query that holds the slot now, or null when none waited.
     */
    synchronized MxLookup.Query handOver()
    {
        MxLookup.Query waiting = waitingAddressQueries.pollFirst();
        if (waiting == null)
        {
            waiting = waitingMxQueries.pollFirst();
        }
        if (waiting == null)
        {
            inFlight--;
        }
        return waiting;
    }

    synchronized int inFlight()
    {
        return inFlight;
    }

    /** The most queries that were ever outstanding at once (never above the limit); without the lock. */
    int peakInFlight()
    {
        return peakInFlight;
    }

    synchronized int waiting()
    {
        return waitingAddressQueries.size() + waitingMxQueries.size();
    }
}
