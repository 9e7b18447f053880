package dev.relay.delivery;

import dev.relay.smtp.SmtpClientSession;

/**
 * One pooled client connection of a {@link Hop}: the address it went to (one of the hop's MX addresses), its SMTP
 * session, the job in flight, and how much it was used.
 * Owned by the delivery thread.
 */
final class HopConnection
{
    final Hop hop;
    final HopAddress address;
    SmtpClientSession session;
    boolean ready;
    boolean closed;
    DeliveryJob job;
    int transactions;
    /** A transaction on it ended because the session broke (timeout, garbage, drop, 421), not by the peer's reply. */
    boolean brokeInFlight;
    long idleSinceMs;

    HopConnection(final Hop hop, final HopAddress address)
    {
        this.hop = hop;
        this.address = address;
    }
}
