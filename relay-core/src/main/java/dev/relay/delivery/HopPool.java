package dev.relay.delivery;

import dev.relay.config.TlsLevel;
import dev.relay.delivery.client.ClientTls;
import dev.relay.delivery.client.SmtpClientSession;

import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;

/**
 * The client connections of one next hop on its delivery loop, and the jobs waiting for them: Postfix's per-
 * destination concurrency and connection cache (smtp_connection_cache_on_demand) in one small class.
 * <p>
 * {@link #dispatch} matches waiting jobs with connections: idle ones first (most recently used first, so the
 * others age out), then new ones up to {@code delivery.max_connections_per_hop}, each to the address its
 * {@link Hop} picks (MX order, back-off, one probe). A connection that finished a transaction takes the next
 * waiting job at once, or waits idle until {@code delivery.idle_timeout}, and is closed after
 * {@code delivery.max_messages_per_connection} transactions. When every address is backed off and no connection
 * is left, the waiting jobs go back deferred ("delivery temporarily suspended"), as qmgr defers mail for a dead
 * destination; a lookup that found no address sends them back bounced or deferred as it says.
 * <p>
 * TLS: each connection asks for the hop's level ({@link NextHop#tls()}) with the address's host as the name to
 * verify. At {@code may} a failed handshake is logged and its address gets plaintext for a while (the next
 * connection, opened at once, skips STARTTLS); at {@code encrypt} and {@code verify} a peer that cannot give TLS is
 * a failed address like one that refuses connections, and the mail waits with 4.7.4 or 4.7.5.
 * <p>
 * The loop's share of {@code delivery.max_connections} bounds the connections of all its pools together: a pool
 * refused a new connection waits in the loop's line for the next free one (its jobs wait too: they are not
 * deferred for it), and while pools wait, a connection that runs out of work is closed rather than kept idle
 * (Postfix's connection cache is on demand) and idle ones are closed for them.
 * <p>
 * A pool with no job, no connection, no lookup under way and no back-off in force, unused for
 * {@code delivery.idle_timeout}, is dropped by its loop ({@link #reclaimable}); mail for the hop later makes a new one
 * (its lookup answered from the resolver's cache). Until then an idle pool holds its hop's addresses and small
 * empty queues (a job queue that grew in a burst is replaced when it empties): about a kilobyte.
 * <p>
 * Owned by one delivery loop: every method runs on its thread, most from inside the connections' callbacks.
 */
final class HopPool
{
    /** A job queue that grew past this many is replaced by a small one once it is empty. */
    private static final int JOBS_KEPT_CAPACITY = 16;

    private final Hop hop;
    private final DeliveryLoop loop;
    private ArrayDeque<DeliveryJob> jobs = new ArrayDeque<>();
    private boolean jobsGrew;
    /** When the last job came. */
    private long lastUsedMs;
    private final ArrayList<HopConnection> connections = new ArrayList<>();
    /** Ready connections without a job, most recently used first. */
    private final ArrayDeque<HopConnection> idle = new ArrayDeque<>();
    /** In the loop's list of pools to dispatch this pass. */
    private boolean dirty;
    /** In the loop's line of pools waiting for a connection under {@code delivery.max_connections}. */
    boolean waitingForConnection;

    HopPool(final NextHop nextHop, final DeliveryLoop loop)
    {
        this.hop = new Hop(nextHop);
        this.loop = loop;
    }

    /** Marks the pool for {@link #dispatch} in this pass; false when it already was. */
    boolean markDirty()
    {
        if (dirty)
        {
            return false;
        }
        dirty = true;
        return true;
    }

    void add(final DeliveryJob job)
    {
        jobs.addLast(job);
        jobsGrew |= jobs.size() > JOBS_KEPT_CAPACITY;
        lastUsedMs = loop.nowMs();
        loop.markDirty(this);
    }

    /**
     * Matches waiting jobs with connections: idle ones first, then new ones up to the hop's limit, each to the most
     * preferred address not backed off ({@link Hop#nextAddress}); when every address is backed off and no
     * connection is left, the waiting mail is deferred.
     */
    void dispatch(final long nowMs)
    {
        dirty = false;
        if (jobs.isEmpty() || loop.isDraining())
        {
            return;
        }
        if (hop.needsLookup(nowMs, !connections.isEmpty()))
        {
            if (hop.startLookup())
            {
                loop.resolve(this, hop.nextHop);
            }
            return;
        }
        final HopAddresses addresses = hop.addresses();
        if (!addresses.ok())
        {
            failAll(addresses.permanent(), addresses.statusCode(), addresses.reason());
            return;
        }
        while (!jobs.isEmpty() && !idle.isEmpty())
        {
            final HopConnection connection = takeIdle(true);
            if (!connection.isClosed())
            {
                send(connection, jobs.pollFirst());
            }
        }
        // a connect may fail inside open() (onClosed at once): the conditions are read again on every turn, and the
        // turns are bounded in case an address is neither taken nor backed off
        final int max = loop.maxConnectionsPerHop();
        boolean waitsForConnection = false;
        for (int opened = 0; opened < max && !jobs.isEmpty() && connecting() < jobs.size() &&
            connections.size() < max; opened++)
        {
            final HopAddress address = hop.nextAddress(nowMs);
            if (address == null)
            {
                break;
            }
            if (!loop.mayOpenConnection(this))
            {
                // the loop is at its share of delivery.max_connections: the jobs wait in line, not deferred
                waitsForConnection = true;
                break;
            }
            open(address, nowMs);
        }
        if (!jobs.isEmpty() && connections.isEmpty() && !waitsForConnection)
        {
            // every address is backed off: the mail waits for its next retry (Postfix qmgr's dead destination)
            failAll(false, hop.lastFailureCode(), "delivery temporarily suspended: " + hop.lastFailure());
        }
    }

    /** A lookup answered (posted to this loop by the resolver's thread). */
    void onResolved(final HopAddresses result)
    {
        hop.resolved(result);
        if (!result.ok())
        {
            DeliveryLog.info("{}: lookup failed: {}", hop.nextHop.key(), result.reason());
        }
        loop.markDirty(this);
    }

    void onReady(final HopConnection connection)
    {
        // a greeting is not yet proof of health (a peer may greet and then break every session): a probe stays the
        // hop's only one until it finishes a transaction
        becomeIdleOrWork(connection);
        loop.markDirty(this);
    }

    /**
     * A transaction on {@code connection} ended and {@code job} has its outcome.
     *
     * @param completed     the peer spoke SMTP to the end of it (whatever its replies): the address is healthy.
     * @param sessionClosed the session ended with it (the server answered mid-body, the transfer was too slow, or
     *                      it broke): {@link #onClosed} follows.
     */
    void onTransactionDone(
        final HopConnection connection, final DeliveryJob job, final boolean completed, final boolean sessionClosed)
    {
        if (completed)
        {
            hop.transactionCompleted(connection);
        }
        loop.complete(job);
        if (sessionClosed)
        {
            return;
        }
        if (connection.transactions() >= loop.maxTransactionsPerConnection() || loop.isDraining())
        {
            connection.quit();
        }
        else
        {
            becomeIdleOrWork(connection);
        }
    }

    /** A connection's TLS handshake finished: Postfix's log line, and the count. */
    void onTlsEstablished(final HopConnection connection, final SmtpClientSession session)
    {
        loop.onTlsHandshake(true);
        DeliveryLog.info("{} TLS connection established to {}: {} with cipher {}", session.tlsTrust(),
            DeliveryLog.relay(connection.address()), session.tlsProtocol(), session.tlsCipher());
    }

    /** {@code connection} is gone; {@code lostJob} (with its outcome) was in flight on it, or null. */
    void onClosed(final HopConnection connection, final DeliveryJob lostJob, final String reason)
    {
        connections.remove(connection);
        if (idle.remove(connection))
        {
            loop.idleConnectionGone();
        }
        loop.connectionClosed();
        if (lostJob != null)
        {
            loop.complete(lostJob);
        }
        final long nowMs = loop.nowMs();
        if (connection.tlsHandshakeFailed())
        {
            loop.onTlsHandshake(false);
            if (connection.tls().level() == TlsLevel.MAY)
            {
                // opportunistic TLS: the address is fine, its TLS is not; plaintext for a while, starting now
                final long untilMs = nowMs + loop.plaintextFallbackMs();
                hop.fallBackToPlaintext(connection.address(), untilMs);
                DeliveryLog.info("{}: {}: {}; delivering to it without TLS until {}", hop,
                    DeliveryLog.relay(connection.address()), reason, Instant.ofEpochMilli(untilMs));
                hop.closed(connection, null, null, nowMs);
                loop.markDirty(this);
                return;
            }
        }
        String failure = null;
        final String failureCode = connection.failureCode() == null ? "4.4.1" : connection.failureCode();
        if (connection.failed(lostJob))
        {
            // never got as far as a usable session (refused, timed out, greeting or HELO refused, TLS required and
            // not had), or lost one mid-transaction (timeout, garbage, drop, 421): this address backs off, the
            // next one is tried at once
            failure = (connection.isReady() ? "session with " : "connect to ") +
                DeliveryLog.relay(connection.address()) + ": " + reason;
            DeliveryLog.info("{}: {}", hop, failure);
        }
        hop.closed(connection, failure, failureCode, nowMs);
        if (failure != null && connections.isEmpty() && hop.allBackedOff(nowMs))
        {
            // the last usable address just failed: the waiting mail is deferred with what it met
            failAll(false, failureCode, failure);
        }
        loop.markDirty(this);
    }

    /**
     * Once a second: idle connections past {@code delivery.idle_timeout} are closed with QUIT, and transfers past
     * their limit are ended.
     */
    void housekeeping(final long nowMs, final long idleTimeoutMs)
    {
        for (int i = connections.size() - 1; i >= 0; i--)
        {
            if (i < connections.size())
            {
                connections.get(i).checkTransferDeadline(nowMs);
            }
        }
        HopConnection oldest;
        while ((oldest = idle.peekLast()) != null && oldest.idleLongerThan(nowMs, idleTimeoutMs))
        {
            takeIdle(false).quit();
        }
        if (jobsGrew && jobs.isEmpty())
        {
            jobs = new ArrayDeque<>();
            jobsGrew = false;
        }
    }

    /**
     * Nothing to keep: no job, no connection, no lookup under way, no back-off in force, not waiting to be
     * dispatched, and no job for {@code idleTimeoutMs}. The loop may drop it.
     */
    boolean reclaimable(final long nowMs, final long idleTimeoutMs)
    {
        return jobs.isEmpty() && connections.isEmpty() && !dirty && !waitingForConnection &&
            nowMs - lastUsedMs >= idleTimeoutMs && hop.isQuiet(nowMs);
    }

    /**
     * Closes up to {@code count} idle connections (the longest idle first) for other pools that wait for one.
     *
     * @return how many it closed.
     */
    int closeIdle(final int count)
    {
        int closed = 0;
        while (closed < count && !idle.isEmpty())
        {
            takeIdle(false).quit();
            closed++;
        }
        return closed;
    }

    /** An operator's flush: every back-off ends now, a failed lookup is asked again. */
    void flush()
    {
        hop.flush();
        loop.markDirty(this);
    }

    /** Shutting down: idle connections say QUIT; busy ones finish their transaction first. */
    void drain()
    {
        while (!idle.isEmpty())
        {
            takeIdle(true).quit();
        }
    }

    private void open(final HopAddress address, final long nowMs)
    {
        final HopConnection connection = new HopConnection(this, address, tlsFor(address, nowMs));
        connections.add(connection);
        hop.opened(connection);
        try
        {
            loop.connect(address, connection);
        }
        catch (final java.io.UncheckedIOException ex)
        {
            // no socket could even be opened (descriptor limit): the address counts as unreachable for now
            final String failure = "connect to " + DeliveryLog.relay(address) + ": cannot open a socket: " +
                ex.getCause().getMessage();
            DeliveryLog.info("{}: {}", hop, failure);
            connections.remove(connection);
            hop.closed(connection, failure, "4.4.1", nowMs);
        }
    }

    /** The hop's level, with the address's host as the name to verify; plaintext while a fallback lasts. */
    private ClientTls tlsFor(final HopAddress address, final long nowMs)
    {
        final TlsLevel level = hop.nextHop.tls();
        if (level == TlsLevel.NONE || level == TlsLevel.MAY && hop.plaintextOnly(address, nowMs))
        {
            return ClientTls.NONE;
        }
        return loop.clientTls(level, address);
    }

    private void send(final HopConnection connection, final DeliveryJob job)
    {
        if (!connection.send(job))
        {
            // the session was not idle after all: put the job back and drop this connection from the pool
            jobs.addFirst(job);
            connection.quit();
        }
    }

    private void becomeIdleOrWork(final HopConnection connection)
    {
        if (!jobs.isEmpty() && !loop.isDraining())
        {
            send(connection, jobs.pollFirst());
            return;
        }
        if (loop.connectionsWanted())
        {
            // other destinations wait for a connection: none is kept idle for this one (on demand, as Postfix)
            connection.quit();
            return;
        }
        connection.idleSince(loop.nowMs());
        idle.addFirst(connection);
        loop.idleConnectionAdded();
    }

    /** Takes the most ({@code newest}) or least recently used idle connection off the idle list. */
    private HopConnection takeIdle(final boolean newest)
    {
        loop.idleConnectionGone();
        return newest ? idle.pollFirst() : idle.pollLast();
    }

    private void failAll(final boolean permanent, final String statusCode, final String reason)
    {
        DeliveryJob job;
        while ((job = jobs.pollFirst()) != null)
        {
            job.recordNotTried(permanent, statusCode, reason);
            loop.complete(job);
        }
    }

    private int connecting()
    {
        int count = 0;
        for (int i = 0; i < connections.size(); i++)
        {
            if (!connections.get(i).isReady())
            {
                count++;
            }
        }
        return count;
    }

    @Override
    public String toString()
    {
        return hop.toString();
    }
}
