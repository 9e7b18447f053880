package dev.relay.delivery;

import dev.relay.config.DeliverySettings;
import dev.relay.config.TlsLevel;
import dev.relay.metrics.RelayMetrics;
import dev.relay.net.LoopHook;
import dev.relay.net.SelectorLoop;
import dev.relay.delivery.client.ClientSettings;
import dev.relay.delivery.client.ClientTls;
import dev.relay.delivery.client.ClientTlsContext;
import dev.relay.delivery.client.SmtpClientSession;
import dev.relay.spool.Spool;
import org.jctools.queues.MessagePassingQueue;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;

/**
 * One delivery loop (Postfix's smtp processes, as one selector loop): the {@link HopPool}s of the next hops the
 * {@link QueueManager} assigns to this loop, their client connections, and the hand-offs with the queue manager.
 * It runs as a {@link LoopHook} on its own {@link SelectorLoop} ("smtp-out-N"), which owns every socket here.
 * <p>
 * A pass: take the jobs the queue manager offered through this loop's {@link DeliveryLoopProxy} (a bounded SPSC
 * queue; the queue manager wakes the loop only when it is parked) → a flush or drain it asked for → dispatch the
 * pools that changed → pools waiting for a connection, while this loop has some of its share of
 * {@code delivery.max_connections} free (idle connections of other pools are closed for them) → once a second,
 * close idle connections, end transfers past their limit and drop the pools of hops idle for
 * {@code delivery.idle_timeout} ({@link HopPool#reclaimable}). Each job goes
 * back, with an outcome for every recipient, through the {@link QueueManagerProxy} as soon as its transaction ends
 * (the queue manager journals them at once: the window for a duplicate after a crash is that hand-off); a result
 * the queue cannot take now waits here and is offered again next pass.
 * <p>
 * Threads: the loop's thread only (other threads go through the proxies). Allocates per connection and per lookup,
 * not per job.
 */
public final class DeliveryLoop implements LoopHook
{
    private static final int JOBS_PER_PASS = 1024;
    private static final long HOUSEKEEPING_INTERVAL_MS = 1_000;

    private final SelectorLoop loop;
    private final HopResolver resolver;
    private final RelayMetrics metrics;
    private final ClientSettings clientSettings;
    private final ClientTlsContext tls;
    private final int maxConnectionsPerHop;
    /** This loop's share of {@code delivery.max_connections}. */
    private final int maxConnections;
    private final int maxTransactionsPerConnection;
    private final long idleTimeoutMs;
    private final long connectTimeoutMs;
    private final DeliveryLoopProxy jobs;
    private final QueueManagerProxy queueManager;
    private final ArrayDeque<DeliveryJob> unsentResults = new ArrayDeque<>();
    private final BodyCursorPool cursors;
    /** By next hop: destination and TLS level (domains with different levels never share a connection). */
    private final HashMap<NextHop, HopPool> pools = new HashMap<>();
    private final ArrayList<HopPool> dirtyPools = new ArrayList<>();
    /** Pools refused a connection at {@link #maxConnections}, in the order they asked. */
    private final ArrayDeque<HopPool> waitingForConnection = new ArrayDeque<>();
    private final MessagePassingQueue.Consumer<DeliveryJob> onJob = this::onJob;

    private long plaintextFallbackMs = Hop.PLAINTEXT_FALLBACK_MS;
    private int openConnections;
    private volatile int peakOpenConnections;
    private int idleConnections;
    private boolean closeIdleRequested;
    private volatile int hopCount;
    private volatile long hopsReclaimed;
    private long flushesDone;
    private long nowMs;
    private long nextHousekeepingMs;
    private boolean draining;

    /**
     * @param jobs         where the queue manager puts this loop's jobs (made with this loop's wakeup).
     * @param queueManager where finished jobs go back (shared by every loop).
     * @param tls          the relay's client TLS (STARTTLS to next hops).
     */
    public DeliveryLoop(
        final DeliverySettings settings,
        final SelectorLoop loop,
        final Spool spool,
        final HopResolver resolver,
        final DeliveryLoopProxy jobs,
        final QueueManagerProxy queueManager,
        final RelayMetrics metrics,
        final ClientTlsContext tls)
    {
        this.loop = loop;
        this.tls = tls;
        this.resolver = resolver;
        this.jobs = jobs;
        this.queueManager = queueManager;
        this.metrics = metrics;
        this.cursors = new BodyCursorPool(spool);
        this.clientSettings = new ClientSettings(
            settings.hostname(),
            settings.commandTimeout().toMillis(),
            settings.dataInitTimeout().toMillis(),
            settings.dataBlockTimeout().toMillis(),
            settings.dataDoneTimeout().toMillis(),
            settings.maxRecipientsPerTransaction(),
            settings.minDataRate());
        this.maxConnectionsPerHop = settings.maxConnectionsPerHop();
        this.maxConnections = shareOf(settings.maxConnections(), settings.ioThreads());
        this.maxTransactionsPerConnection = settings.maxMessagesPerConnection();
        this.idleTimeoutMs = settings.idleTimeout().toMillis();
        this.connectTimeoutMs = settings.connectTimeout().toMillis();
        this.nowMs = System.currentTimeMillis();
    }

    /** Client connections open or opening (for the drain at shutdown); any thread, racy. */
    public int connectionCount()
    {
        return loop.connectionCount();
    }

    /** Next hops with a pool on this loop now; any thread, racy. */
    public int hopCount()
    {
        return hopCount;
    }

    /** Pools dropped after their hop was idle for {@code delivery.idle_timeout}, since start; any thread, racy. */
    public long hopsReclaimed()
    {
        return hopsReclaimed;
    }

    /** The most client connections this loop had open or opening at once; any thread. */
    int peakOpenConnections()
    {
        return peakOpenConnections;
    }

    /** One loop's share of {@code total}: every loop gets at least one. */
    static int shareOf(final int total, final int loops)
    {
        return Math.max(1, (total + loops - 1) / loops);
    }

    @Override
    public int doWork(final long nowMs)
    {
        this.nowMs = nowMs;
        int work = offerUnsentResults();
        work += jobs.drainJobs(onJob, JOBS_PER_PASS);
        final long flushes = jobs.flushRequests();
        if (flushes != flushesDone)
        {
            // read after the jobs: a job offered after the flush request and taken above finds the flush done here
            flushesDone = flushes;
            onFlush();
            work++;
        }
        if (!draining && jobs.drainRequested())
        {
            onDrain();
            work++;
        }
        for (int i = 0; i < dirtyPools.size(); i++)
        {
            dirtyPools.get(i).dispatch(nowMs);
            work++;
        }
        dirtyPools.clear();
        work += serveWaitingPools(nowMs);
        if (closeIdleRequested)
        {
            closeIdleRequested = false;
            work += closeIdleForWaitingPools();
        }
        if (nowMs >= nextHousekeepingMs)
        {
            nextHousekeepingMs = nowMs + HOUSEKEEPING_INTERVAL_MS;
            housekeeping(nowMs);
        }
        return work;
    }

    @Override
    public boolean hasPendingWork()
    {
        return jobs.hasJobs() || !dirtyPools.isEmpty() || !unsentResults.isEmpty() ||
            jobs.flushRequests() != flushesDone || (!draining && jobs.drainRequested()) || closeIdleRequested ||
            (!waitingForConnection.isEmpty() && openConnections < maxConnections && !draining);
    }

    // ---- for the pools, on the loop thread

    long nowMs()
    {
        return nowMs;
    }

    boolean isDraining()
    {
        return draining;
    }

    int maxConnectionsPerHop()
    {
        return maxConnectionsPerHop;
    }

    int maxTransactionsPerConnection()
    {
        return maxTransactionsPerConnection;
    }

    /** How long an address whose TLS handshake failed at {@code may} gets plaintext. */
    long plaintextFallbackMs()
    {
        return plaintextFallbackMs;
    }

    /** Tests: a shorter {@link #plaintextFallbackMs()} than the hour. Before the loop starts. */
    void plaintextFallbackMs(final long ms)
    {
        this.plaintextFallbackMs = ms;
    }

    /** What a connection to {@code address} asks for at {@code level} (not {@code none}). */
    ClientTls clientTls(final TlsLevel level, final HopAddress address)
    {
        return new ClientTls(level, tls, address.host(), address.address().getPort());
    }

    /** An outbound TLS handshake finished or failed. */
    void onTlsHandshake(final boolean established)
    {
        metrics.onTlsOut(established);
    }

    void markDirty(final HopPool pool)
    {
        if (pool.markDirty())
        {
            dirtyPools.add(pool);
        }
    }

    /**
     * May {@code pool} open a connection now? No when this loop is at its share of {@code delivery.max_connections}:
     * then the pool waits in line for the next free one (and idle connections of other pools are closed for it).
     */
    boolean mayOpenConnection(final HopPool pool)
    {
        if (openConnections < maxConnections)
        {
            return true;
        }
        if (!pool.waitingForConnection)
        {
            pool.waitingForConnection = true;
            waitingForConnection.addLast(pool);
        }
        closeIdleRequested |= idleConnections > 0;
        return false;
    }

    /** Pools wait for a connection: a connection out of work closes rather than wait idle. */
    boolean connectionsWanted()
    {
        return !waitingForConnection.isEmpty();
    }

    void idleConnectionAdded()
    {
        idleConnections++;
    }

    void idleConnectionGone()
    {
        idleConnections--;
    }

    /** A connection of a pool closed (after {@link #connect}): its place under the limit is free. */
    void connectionClosed()
    {
        openConnections--;
    }

    /** Opens a client connection for {@code connection}; its session reports to it. */
    void connect(final HopAddress address, final HopConnection connection)
    {
        metrics.onConnectionOut();
        if (++openConnections > peakOpenConnections)
        {
            peakOpenConnections = openConnections;
        }
        try
        {
            loop.connect(address.address(),
                socket -> connection.attach(new SmtpClientSession(clientSettings, socket, connection,
                    connection.tls())),
                connectTimeoutMs);
        }
        catch (final RuntimeException ex)
        {
            // no socket (its pool is told by the exception): no onClosed will follow
            openConnections--;
            throw ex;
        }
    }

    /** Looks {@code nextHop} up off the loop; the answer comes back to {@code pool} on this loop. */
    void resolve(final HopPool pool, final NextHop nextHop)
    {
        resolver.resolve(nextHop, nowMs, result -> loop.execute(() -> pool.onResolved(result)));
    }

    /** {@code job} has its outcome: back to the queue manager now. */
    void complete(final DeliveryJob job)
    {
        if (!unsentResults.isEmpty() || !queueManager.offerResult(job))
        {
            unsentResults.addLast(job);
        }
    }

    /** Pools that waited for a connection get their turn, in order, while this loop's share has room. */
    private int serveWaitingPools(final long nowMs)
    {
        int served = 0;
        for (int turns = waitingForConnection.size(); turns > 0 && openConnections < maxConnections && !draining;
            turns--)
        {
            final HopPool pool = waitingForConnection.pollFirst();
            pool.waitingForConnection = false;
            // it takes what it needs now, or joins the line again at the end when the share is used up
            pool.dispatch(nowMs);
            served++;
        }
        return served;
    }

    /** At the limit with pools waiting: idle connections (of any pool) close, one for each waiting pool. */
    private int closeIdleForWaitingPools()
    {
        final int wanted = Math.min(waitingForConnection.size(), idleConnections);
        int closed = 0;
        for (final HopPool pool : pools.values())
        {
            if (closed >= wanted)
            {
                break;
            }
            closed += pool.closeIdle(wanted - closed);
        }
        return closed;
    }

    /** Once a second: idle connections and slow transfers per pool, then the pools nothing needs any more go. */
    private void housekeeping(final long nowMs)
    {
        final Iterator<HopPool> all = pools.values().iterator();
        while (all.hasNext())
        {
            final HopPool pool = all.next();
            pool.housekeeping(nowMs, idleTimeoutMs);
            if (pool.reclaimable(nowMs, idleTimeoutMs))
            {
                all.remove();
                hopsReclaimed++;
            }
        }
        hopCount = pools.size();
    }

    private int offerUnsentResults()
    {
        int offered = 0;
        DeliveryJob job;
        while ((job = unsentResults.peekFirst()) != null && queueManager.offerResult(job))
        {
            unsentResults.pollFirst();
            offered++;
        }
        return offered;
    }

    private void onJob(final DeliveryJob job)
    {
        job.bodyCursors(cursors);
        HopPool pool = pools.get(job.nextHop);
        if (pool == null)
        {
            pool = new HopPool(job.nextHop, this);
            pools.put(job.nextHop, pool);
            hopCount = pools.size();
        }
        pool.add(job);
    }

    private void onFlush()
    {
        for (final HopPool pool : pools.values())
        {
            pool.flush();
        }
    }

    private void onDrain()
    {
        draining = true;
        for (final HopPool pool : pools.values())
        {
            pool.drain();
        }
    }
}
