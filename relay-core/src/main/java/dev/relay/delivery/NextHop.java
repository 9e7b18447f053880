package dev.relay.delivery;

import dev.relay.config.TlsLevel;

/**
 * Where mail for a domain goes next: a host to connect to directly ({@code mxLookup == false}: a bracketed route,
 * a route with a port, or an IP literal) or a name whose MX records decide ({@code mxLookup == true}: an unrouted
 * recipient domain, or an unbracketed route host, as Postfix treats {@code relayhost}), and the TLS level its
 * recipients' domain is delivered at ({@code delivery.tls}, {@code delivery.tls.policy}).
 * <p>
 * Mail for equal next hops shares connections: the level is part of the identity (as Postfix keys its connection
 * cache by destination and TLS level), so domains with different levels never share a connection, while
 * {@link #key()} names the destination alone (logs, and which delivery loop owns it).
 *
 * @param key the destination: {@code example.com:25}, {@code [192.0.2.1]:2525}.
 */
public record NextHop(String key, String host, int port, boolean mxLookup, TlsLevel tls)
{
    public static NextHop direct(final String host, final int port, final TlsLevel tls)
    {
        return new NextHop("[" + host + "]:" + port, host, port, false, tls);
    }

    public static NextHop mx(final String name, final int port, final TlsLevel tls)
    {
        return new NextHop(name + ":" + port, name, port, true, tls);
    }

    @Override
    public String toString()
    {
        return key;
    }
}
