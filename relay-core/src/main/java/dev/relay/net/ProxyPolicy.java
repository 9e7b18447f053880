package dev.relay.net;

import java.net.InetAddress;
import java.util.function.Predicate;

/**
 * The PROXY protocol on a listener ({@code smtp.proxy_protocol}): which peers may send the header
 * ({@code smtp.proxy_networks}; others are closed at accept) and how long the whole header may take
 * ({@code smtp.proxy_timeout}). Shared by the loops; the trusted peers can be replaced while running (a reload) and
 * are read once per accepted connection. Any thread.
 */
public final class ProxyPolicy
{
    private final long headerTimeoutMs;
    private volatile Predicate<InetAddress> trustedPeers;

    /**
     * @param trustedPeers    peers allowed to send a header.
     * @param headerTimeoutMs the header must have arrived whole this long after accept, however its bytes trickle.
     */
    public ProxyPolicy(final Predicate<InetAddress> trustedPeers, final long headerTimeoutMs)
    {
        if (headerTimeoutMs <= 0)
        {
            throw new IllegalArgumentException("header timeout must be positive: " + headerTimeoutMs);
        }
        this.trustedPeers = trustedPeers;
        this.headerTimeoutMs = headerTimeoutMs;
    }

    /** Peers trusted from now on (a reload); connections already accepted are not looked at again. */
    public void trustedPeers(final Predicate<InetAddress> trustedPeers)
    {
        this.trustedPeers = trustedPeers;
    }

    /** Whether {@code peer} may send a PROXY header (allocates: once per connection). */
    public boolean trusts(final InetAddress peer)
    {
        return trustedPeers.test(peer);
    }

    public long headerTimeoutMs()
    {
        return headerTimeoutMs;
    }
}
