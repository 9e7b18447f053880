package dev.relay.net;

import java.net.InetAddress;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * Admission of new connections, shared by all loops: a global cap and a per-client-IP cap (Postfix's
 * {@code smtpd_client_connection_count_limit}); clients matched by {@code exempt} are not limited per IP.
 * <p>
 * Admission has two steps, a connection slot ({@link #tryAcquireConnection()}) and the client's own limits
 * ({@link #tryAdmitClient}), because behind a PROXY-protocol load balancer the client is known only once its header
 * is read: the proxy's connection takes a slot at accept and the client named in the header is admitted then
 * (SelectorLoop). Directly connected clients take both at once ({@link #tryAcquire}).
 * <p>
 * The limits can be replaced while connections are open ({@link #limits(Limits)}, a reload): each decision reads them
 * once. Every admitted client is counted, exempt or not, so a reload that changes who is exempt or the per-IP limit
 * finds the counts right. Called at accept and close only (allocates on that control path); any thread.
 */
public final class ConnectionLimiter
{
    public static final int ACCEPTED = 0;
    public static final int TOO_MANY_CONNECTIONS = 1;
    public static final int TOO_MANY_FROM_CLIENT = 2;
    public static final int TOO_FAST_FROM_CLIENT = 3;

    /**
     * The limits in force, replaced whole.
     *
     * @param maxPerClient 0 for no per-client limit.
     * @param exempt       clients free of per-client limits and rates.
     */
    public record Limits(int maxConnections, int maxPerClient, Predicate<InetAddress> exempt)
    {
    }

    private final AtomicInteger open = new AtomicInteger();
    private final ConcurrentHashMap<InetAddress, Integer> perClient = new ConcurrentHashMap<>();
    private final ClientRates rates;
    private volatile Limits limits;

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
        this.limits = new Limits(maxConnections, maxPerClient, exempt);
        this.rates = rates;
    }

    /** New limits for the connections admitted from now on (a reload); open ones stay. */
    public void limits(final Limits limits)
    {
        this.limits = limits;
    }

    public Limits limits()
    {
        return limits;
    }

    /** The per-client rates (their limits are replaced by a reload too). */
    public ClientRates rates()
    {
        return rates;
    }

    /** Whether {@code client} is exempt from per-client limits (allocates: call once per connection). */
    public boolean isExempt(final InetAddress client)
    {
        return limits.exempt().test(client);
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

    /**
     * Both steps for a client that connected directly; only an admitted connection may later call
     * {@link #release}.
     */
    public int tryAcquire(final InetAddress client)
    {
        final int slot = tryAcquireConnection();
        if (slot != ACCEPTED)
        {
            return slot;
        }
        final int admission = tryAdmitClient(client);
        if (admission != ACCEPTED)
        {
            releaseConnection();
        }
        return admission;
    }

    /** A connection slot under {@code smtp.max_connections}; given back by {@link #releaseConnection()}. */
    public int tryAcquireConnection()
    {
        if (open.incrementAndGet() > limits.maxConnections())
        {
            open.decrementAndGet();
            return TOO_MANY_CONNECTIONS;
        }
        return ACCEPTED;
    }

    /**
     * The client's connection rate and concurrent connections (for a connection that holds a slot); an admitted
     * client is counted until {@link #release}.
     */
    public int tryAdmitClient(final InetAddress client)
    {
        final Limits in = limits;
        final boolean exemptClient = in.exempt().test(client);
        if (!exemptClient && !rates.tryConnection(client, System.currentTimeMillis()))
        {
            return TOO_FAST_FROM_CLIENT;
        }
        final int max = exemptClient || in.maxPerClient() <= 0 ? Integer.MAX_VALUE : in.maxPerClient();
        // compute() is atomic per key: two loops admitting the same client cannot both pass the limit.
        final boolean[] refused = new boolean[1];
        perClient.compute(client, (ignored, count) ->
        {
            if (count == null)
            {
                return 1;
            }
            if (count >= max)
            {
                refused[0] = true;
                return count;
            }
            return count + 1;
        });
        return refused[0] ? TOO_MANY_FROM_CLIENT : ACCEPTED;
    }

    /** An admitted client's connection closed: its count and its slot. */
    public void release(final InetAddress client)
    {
        perClient.computeIfPresent(client, (ignored, count) -> count <= 1 ? null : count - 1);
        releaseConnection();
    }

    /** A connection that held a slot but whose client was never admitted closed. */
    public void releaseConnection()
    {
        open.decrementAndGet();
    }

    public int openConnections()
    {
        return open.get();
    }

    /** Open connections of {@code client} (exempt clients are counted too). */
    public int clientConnections(final InetAddress client)
    {
        final Integer count = perClient.get(client);
        return count == null ? 0 : count;
    }
}
