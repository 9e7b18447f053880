package dev.relay.delivery;

import dev.relay.delivery.client.ClientListener;
import dev.relay.delivery.client.ClientTls;
import dev.relay.delivery.client.OutboundMessage;
import dev.relay.delivery.client.SmtpClientSession;
import dev.relay.delivery.client.TransactionResult;

/**
 * One pooled client connection of a {@link HopPool}: the address it went to (one of the hop's MX addresses), the
 * TLS it asked for, its SMTP session, the job in flight, and how much it was used. It is the session's
 * {@link ClientListener}: each callback updates this connection's own state, then tells its pool.
 * <p>
 * Phases: connecting (no session ready yet) → ready: busy with one job, or idle in the pool since a time → closed.
 * Owned by the delivery loop of its hop.
 */
final class HopConnection implements ClientListener
{
    private final HopPool pool;
    private final HopAddress address;
    private final ClientTls tls;
    private SmtpClientSession session;
    private boolean ready;
    private boolean closed;
    private DeliveryJob job;
    private int transactions;
    /** A transaction on it ended because the session broke (timeout, garbage, drop, 421), not by the peer's reply. */
    private boolean brokeInFlight;
    private long idleSinceMs;

    HopConnection(final HopPool pool, final HopAddress address, final ClientTls tls)
    {
        this.pool = pool;
        this.address = address;
        this.tls = tls;
    }

    /** The session the loop made for this connection's socket; set before any callback. */
    SmtpClientSession attach(final SmtpClientSession session)
    {
        this.session = session;
        return session;
    }

    HopAddress address()
    {
        return address;
    }

    /** The TLS its session asks for. */
    ClientTls tls()
    {
        return tls;
    }

    /** The session ended in its TLS handshake ({@link SmtpClientSession#tlsHandshakeFailed()}). */
    boolean tlsHandshakeFailed()
    {
        return session != null && session.tlsHandshakeFailed();
    }

    /** The RFC 3463 code of a session ended by TLS's demands (4.7.4, 4.7.5), else null. */
    String failureCode()
    {
        return session == null ? null : session.failureCode();
    }

    /** Greeted and said EHLO (or HELO): a transaction can start on it. */
    boolean isReady()
    {
        return ready;
    }

    boolean isClosed()
    {
        return closed;
    }

    /** The job in flight, null when idle or not ready. */
    DeliveryJob job()
    {
        return job;
    }

    int transactions()
    {
        return transactions;
    }

    /** Never got a usable session, lost one mid-transaction, or a transaction on it broke: the address failed. */
    boolean failed(final DeliveryJob lostJob)
    {
        return !ready || lostJob != null || brokeInFlight;
    }

    /**
     * Starts {@code next} on this connection.
     *
     * @return false when the session was not idle after all (the job stays the caller's).
     */
    boolean send(final DeliveryJob next)
    {
        job = next;
        if (!session.send(next))
        {
            job = null;
            return false;
        }
        return true;
    }

    /** The connection joins the pool's idle list now. */
    void idleSince(final long nowMs)
    {
        idleSinceMs = nowMs;
    }

    boolean idleLongerThan(final long nowMs, final long idleTimeoutMs)
    {
        return nowMs - idleSinceMs >= idleTimeoutMs;
    }

    /** QUIT (or close at once mid-body); {@link #onClosed} follows. */
    void quit()
    {
        if (session != null)
        {
            session.quit();
        }
    }

    /** Ends a transfer that ran past its limit ({@link SmtpClientSession#checkTransferDeadline}). */
    void checkTransferDeadline(final long nowMs)
    {
        if (job != null && session != null)
        {
            session.checkTransferDeadline(nowMs);
        }
    }

    @Override
    public void onReady(final SmtpClientSession session)
    {
        ready = true;
        pool.onReady(this);
    }

    @Override
    public void onTlsEstablished(final SmtpClientSession session)
    {
        pool.onTlsEstablished(this, session);
    }

    @Override
    public void onTransactionDone(
        final SmtpClientSession session, final OutboundMessage message, final TransactionResult results)
    {
        final DeliveryJob done = job;
        if (done == null)
        {
            return;
        }
        job = null;
        transactions++;
        if (results.sessionBroke())
        {
            // a hop failure, counted when onClosed follows
            brokeInFlight = true;
        }
        done.recordTransaction(results, address, session.capabilities().dsn(), session.tlsProtocol());
        pool.onTransactionDone(this, done, !results.sessionBroke(), session.isClosed());
    }

    @Override
    public void onClosed(final SmtpClientSession session, final String reason)
    {
        if (closed)
        {
            return;
        }
        closed = true;
        final DeliveryJob lost = job;
        job = null;
        if (lost != null)
        {
            lost.close();
            lost.recordLostSession(address, reason, session.tlsProtocol());
        }
        pool.onClosed(this, lost, reason);
    }
}
