package dev.relay.delivery;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * One next hop as delivery sees it: jobs waiting for a connection, its bounded pool of connections (busy and
 * idle), its resolved addresses, and its health. A hop that refuses connections or times out is marked down
 * until {@code downUntilMs}: its mail is deferred meanwhile, then a single probe connection tests it before the
 * pool opens up again (no reconnect storm). Owned by the delivery thread.
 */
final class Hop
{
    final NextHop nextHop;
    final ArrayDeque<DeliveryJob> jobs = new ArrayDeque<>();
    final List<HopConnection> connections = new ArrayList<>();
    final ArrayDeque<HopConnection> idle = new ArrayDeque<>();

    HopAddresses addresses;
    boolean resolving;
    int nextAddress;

    int failures;
    long downUntilMs;
    String downReason;
    boolean probing;
    /** Queued for dispatch in this pass (in the agent's dirty list). */
    boolean dirty;

    Hop(final NextHop nextHop)
    {
        this.nextHop = nextHop;
    }

    boolean isDown(final long nowMs)
    {
        return failures > 0 && nowMs < downUntilMs;
    }

    int connecting()
    {
        int count = 0;
        for (int i = 0; i < connections.size(); i++)
        {
            if (!connections.get(i).ready)
            {
                count++;
            }
        }
        return count;
    }

    @Override
    public String toString()
    {
        return nextHop.key();
    }
}
