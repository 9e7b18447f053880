package dev.relay.config;

import java.net.InetAddress;
import java.util.List;

/**
 * An ordered list of {@link Cidr} networks ({@code relay.networks}), asked whether a client address is in any of
 * them.
 * <p>
 * Immutable and thread-safe. {@link #contains(byte[])} does not allocate; {@link #contains(InetAddress)} copies
 * the address once.
 */
public final class NetworkList
{
    private final Cidr[] networks;
    private final List<Cidr> list;

    /**
     * @param networks the networks, in the order written.
     */
    public NetworkList(final List<Cidr> networks)
    {
        this.list = List.copyOf(networks);
        this.networks = this.list.toArray(new Cidr[0]);
    }

    /**
     * @param address a client address.
     * @return true when the address is in at least one network.
     */
    public boolean contains(final InetAddress address)
    {
        return contains(address.getAddress());
    }

    /**
     * @param address 4 or 16 address bytes in network order.
     * @return true when the address is in at least one network. No allocation.
     */
    public boolean contains(final byte[] address)
    {
        for (final Cidr network : networks)
        {
            if (network.matches(address))
            {
                return true;
            }
        }

        return false;
    }

    /**
     * @return the networks, unmodifiable.
     */
    public List<Cidr> cidrs()
    {
        return list;
    }

    /**
     * @return true when the list has no network (nothing matches).
     */
    public boolean isEmpty()
    {
        return 0 == networks.length;
    }

    /**
     * @return the networks as written in a properties file, comma-separated.
     */
    public String toString()
    {
        final StringBuilder sb = new StringBuilder();
        for (final Cidr network : networks)
        {
            if (sb.length() > 0)
            {
                sb.append(',');
            }
            sb.append(network);
        }

        return sb.toString();
    }
}
