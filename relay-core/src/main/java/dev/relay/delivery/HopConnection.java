package dev.relay.delivery;

import dev.relay.smtp.SmtpClientSession;

import java.net.InetSocketAddress;

/**
 * One pooled client connection of a {@link Hop}: its SMTP session, the job in flight, and how much it was used.
 * Owned by the delivery thread.
 */
final class HopConnection
{
    final Hop hop;
    final InetSocketAddress address;
    SmtpClientSession session;
    boolean ready;
    boolean closed;
    DeliveryJob job;
    int transactions;
    long idleSinceMs;

    HopConnection(final Hop hop, final InetSocketAddress address)
    {
        this.hop = hop;
        this.address = address;
    }
}
