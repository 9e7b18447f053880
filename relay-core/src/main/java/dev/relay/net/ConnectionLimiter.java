package dev.relay.net;

import java.net.InetAddress;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * Admission of new connections, shared by all loops: a global cap and a per-client-IP cap (Postfix's
 * {@code smtpd_client_connection_count_limit}); clients matched by {@code exempt} are not counted per IP.
 * Called at accept and close only (allocates on that control path).
 */
public final class ConnectionLimiter
{
    public static final int ACCEPTED = 0;
    public static final int TOO_MANY_CONNECTIONS = 1;
    public static final int TOO_MANY_FROM_CLIENT = 2;
    public static final int TOO_FAST_FROM_CLIENT = 3;

    private final int maxConnections;
    private final int maxPerClient;
    private final Predicate<InetAddress> exempt;
    private final AtomicInteger open = new AtomicInteger();
    private final ConcurrentHashMap<InetAddress, Integer> perClient = new ConcurrentHashMap<>();
    private final ClientRates rates;

    /**
     * @param maxPerClient 0 for no per-client limit.
     */
    public ConnectionLimiter(final int maxConnections, final int maxPerClient, final Predicate<InetAddress> exempt)
    {
        this(maxConnections, maxPerClient, exempt, new ClientRates(0, 0));
    }

    /** With per-client rate limits too (exempt clients are not rate limited either). */
    public ConnectionLimiter(
        final int maxConnections, final int maxPerClient, final Predicate<InetAddress> exempt, final ClientRates rates)
    {
        this.maxConnections = maxConnections;
        this.maxPerClient = maxPerClient;
        this.exempt = exempt;
        this.rates = rates;
    }

    /** Whether {@code client} is exempt from per-client limits (allocates: call once per connection). */
    public boolean isExempt(final InetAddress client)
    {
        return exempt.test(client);
    }

    /** Counts a message from a non-exempt client; false when it is over its message rate (450 4.7.1). */
    public boolean tryMessage(final InetAddress client, final long nowMs)
    {
        return rates.tryMessage(client, nowMs);
    }

    /** Whether a non-exempt client may try AUTH now (under its failure rate). */
    public boolean mayAuthenticate(final InetAddress client, final long nowMs)
    {
        return rates.mayAuthenticate(client, nowMs);
    }

    /** Counts a failed AUTH attempt of a non-exempt client. */
    public void countAuthFailure(final InetAddress client, final long nowMs)
    {
        rates.countAuthFailure(client, nowMs);
    }

    /** Counts the connection in if admitted; only an admitted connection may later call {@link #release}. */
    public int tryAcquire(final InetAddress client)
    {
        if (open.incrementAndGet() > maxConnections)
        {
            open.decrementAndGet();
            return TOO_MANY_CONNECTIONS;
        }
        final boolean exemptClient = exempt.test(client);
        if (!exemptClient && !rates.tryConnection(client, System.currentTimeMillis()))
        {
            open.decrementAndGet();
            return TOO_FAST_FROM_CLIENT;
        }
        if (maxPerClient > 0 && !exemptClient)
        {
            // compute() is atomic per key: two loops accepting the same client cannot both pass the limit.
            final boolean[] refused = new boolean[1];
            perClient.compute(client, (ignored, count) ->
            {
                if (count == null)
                {
                    return 1;
                }
                if (count >= maxPerClient)
                {
                    refused[0] = true;
                    return count;
                }
                return count + 1;
            });
            if (refused[0])
            {
                open.decrementAndGet();
                return TOO_MANY_FROM_CLIENT;
            }
        }
        return ACCEPTED;
    }

    public void release(final InetAddress client)
    {
        open.decrementAndGet();
        if (maxPerClient > 0 && !exempt.test(client))
        {
            perClient.computeIfPresent(client, (ignored, count) -> count <= 1 ? null : count - 1);
        }
    }

    public int openConnections()
    {
        return open.get();
    }

    public int clientConnections(final InetAddress client)
    {
        final Integer count = perClient.get(client);
        return count == null ? 0 : count;
    }
}
