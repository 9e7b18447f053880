package dev.relay.net;

import java.net.InetAddress;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Per-client-address event rates, like Postfix's anvil: new connections, messages and failed AUTH attempts per
 * minute, over a sliding
 * window estimated from the current and the previous minute. Shared by all loops; each client's counters are
 * updated under that client's own lock. Memory is bounded: at most {@link #MAX_CLIENTS} addresses are tracked,
 * and idle ones are dropped.
 */
public final class ClientRates
{
    static final int MAX_CLIENTS = 100_000;
    private static final long WINDOW_MS = 60_000;

    /** The limits in force, replaced whole by a reload; each decision reads them once. */
    private volatile Limits limits;
    private final ConcurrentHashMap<InetAddress, Counter> clients = new ConcurrentHashMap<>();
    private volatile long nextSweepMs;

    private static final class Counter
    {
        long windowStartMs;
        int connections;
        int messages;
        int authFailures;
        int previousConnections;
        int previousMessages;
        int previousAuthFailures;

        void roll(final long nowMs)
        {
            final long elapsed = nowMs - windowStartMs;
            if (elapsed >= 2 * WINDOW_MS)
            {
                previousConnections = 0;
                previousMessages = 0;
                previousAuthFailures = 0;
                connections = 0;
                messages = 0;
                authFailures = 0;
                windowStartMs = nowMs;
            }
            else if (elapsed >= WINDOW_MS)
            {
                previousConnections = connections;
                previousMessages = messages;
                previousAuthFailures = authFailures;
                connections = 0;
                messages = 0;
                authFailures = 0;
                windowStartMs += WINDOW_MS;
            }
        }

        /** The previous minute's count weighted by how much of it still overlaps the last 60 s, plus this one's. */
        double estimate(final int previous, final int current, final long nowMs)
        {
            final double overlap = 1.0 - (double)(nowMs - windowStartMs) / WINDOW_MS;
            return previous * Math.max(0, overlap) + current;
        }
    }

    /** @param connectionsPerMinute 0 = unlimited; the same for {@code messagesPerMinute}. */
    public ClientRates(final int connectionsPerMinute, final int messagesPerMinute)
    {
        this(connectionsPerMinute, messagesPerMinute, 0);
    }

    /** @param authFailuresPerMinute failed AUTH attempts allowed per minute; 0 = unlimited. */
    public ClientRates(final int connectionsPerMinute, final int messagesPerMinute, final int authFailuresPerMinute)
    {
        this.limits = new Limits(connectionsPerMinute, messagesPerMinute, authFailuresPerMinute);
    }

    /**
     * Events per minute allowed per client address; 0 = unlimited.
     */
    public record Limits(int connectionsPerMinute, int messagesPerMinute, int authFailuresPerMinute)
    {
    }

    /** New limits from now on (a reload); the counts so far stay. Any thread. */
    public void limits(final Limits limits)
    {
        this.limits = limits;
    }

    public Limits limits()
    {
        return limits;
    }

    /** Whether the client may try AUTH now: false once it failed too often in the last minute. Any thread. */
    public boolean mayAuthenticate(final InetAddress client, final long nowMs)
    {
        final int authFailuresPerMinute = limits.authFailuresPerMinute();
        if (authFailuresPerMinute <= 0)
        {
            return true;
        }
        final Counter counter = clients.get(client);
        if (counter == null)
        {
            return true;
        }
        synchronized (counter)
        {
            counter.roll(nowMs);
            return counter.estimate(counter.previousAuthFailures, counter.authFailures, nowMs) < authFailuresPerMinute;
        }
    }

    /** Counts a failed AUTH attempt (wrong password, unknown user). Any thread. */
    public void countAuthFailure(final InetAddress client, final long nowMs)
    {
        if (limits.authFailuresPerMinute() <= 0)
        {
            return;
        }
        final Counter counter = counter(client, nowMs);
        synchronized (counter)
        {
            counter.roll(nowMs);
            counter.authFailures++;
        }
    }

    /** Counts a new connection; false when the client is over its connection rate. Any thread. */
    public boolean tryConnection(final InetAddress client, final long nowMs)
    {
        final int connectionsPerMinute = limits.connectionsPerMinute();
        if (connectionsPerMinute <= 0)
        {
            return true;
        }
        final Counter counter = counter(client, nowMs);
        synchronized (counter)
        {
            counter.roll(nowMs);
            if (counter.estimate(counter.previousConnections, counter.connections, nowMs) >= connectionsPerMinute)
            {
                return false;
            }
            counter.connections++;
            return true;
        }
    }

    /** Counts a new message (MAIL FROM); false when the client is over its message rate. Any thread. */
    public boolean tryMessage(final InetAddress client, final long nowMs)
    {
        final int messagesPerMinute = limits.messagesPerMinute();
        if (messagesPerMinute <= 0)
        {
            return true;
        }
        final Counter counter = counter(client, nowMs);
        synchronized (counter)
        {
            counter.roll(nowMs);
            if (counter.estimate(counter.previousMessages, counter.messages, nowMs) >= messagesPerMinute)
            {
                return false;
            }
            counter.messages++;
            return true;
        }
    }

    public int trackedClients()
    {
        return clients.size();
    }

    private Counter counter(final InetAddress client, final long nowMs)
    {
        Counter counter = clients.get(client);
        if (counter == null)
        {
            if (clients.size() >= MAX_CLIENTS || nowMs >= nextSweepMs)
            {
                sweep(nowMs);
            }
            counter = clients.computeIfAbsent(client, ignored ->
            {
                final Counter created = new Counter();
                created.windowStartMs = nowMs;
                return created;
            });
        }
        return counter;
    }

    /** Drops clients idle for two windows; if still full, drops arbitrary ones (a flood of new addresses). */
    private void sweep(final long nowMs)
    {
        nextSweepMs = nowMs + WINDOW_MS;
        final Iterator<Map.Entry<InetAddress, Counter>> it = clients.entrySet().iterator();
        while (it.hasNext())
        {
            final Counter counter = it.next().getValue();
            if (nowMs - counter.windowStartMs >= 2 * WINDOW_MS)
            {
                it.remove();
            }
        }
        final Iterator<InetAddress> extra = clients.keySet().iterator();
        while (clients.size() >= MAX_CLIENTS && extra.hasNext())
        {
            extra.next();
            extra.remove();
        }
    }
}
