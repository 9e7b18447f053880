package dev.relay.delivery;

/**
 * Where mail for a domain goes next: a host to connect to directly ({@code mxLookup == false}: a bracketed route,
 * a route with a port, or an IP literal) or a name whose MX records decide ({@code mxLookup == true}: an unrouted
 * recipient domain, or an unbracketed route host, as Postfix treats {@code relayhost}).
 *
 * @param key the hop's identity: mail for the same key shares connections.
 */
public record NextHop(String key, String host, int port, boolean mxLookup)
{
    public static NextHop direct(final String host, final int port)
    {
        return new NextHop("[" + host + "]:" + port, host, port, false);
    }

    public static NextHop mx(final String name, final int port)
    {
        return new NextHop(name + ":" + port, name, port, true);
    }

    @Override
    public String toString()
    {
        return key;
    }
}
