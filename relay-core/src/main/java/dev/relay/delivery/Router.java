package dev.relay.delivery;

import dev.relay.config.Routing;
import dev.relay.config.Route;
import dev.relay.config.TlsLevel;
import dev.relay.smtp.MailAddresses;

import java.util.HashMap;
import java.util.Map;

/**
 * Maps a recipient domain to its {@link NextHop}: {@code delivery.routes} first (exact domain, then the longest
 * {@code .parent} match, then {@code *}), else an MX lookup of the domain itself. Address literals
 * ({@code user@[192.0.2.1]}) go straight to that address. The hop carries the domain's TLS level
 * ({@code delivery.tls.policy}, matched the same way, else {@code delivery.tls}). Results are memoised per domain
 * (a reload of {@code delivery.routes} makes a new Router). Owned by the delivery thread.
 */
public final class Router
{
    private final Routing routing;
    private final int smtpPort;
    private final Map<String, NextHop> cache = new HashMap<>();

    public Router(final Routing routing)
    {
        this.routing = routing;
        this.smtpPort = routing.smtpPort();
    }

    /** The next hop of {@code recipient}'s domain ({@link MailAddresses#domainOf}). */
    public NextHop routeRecipient(final byte[] recipient)
    {
        return route(MailAddresses.domainOf(recipient));
    }

    public NextHop route(final String domainLowercase)
    {
        NextHop hop = cache.get(domainLowercase);
        if (hop == null)
        {
            hop = resolve(domainLowercase);
            if (cache.size() < 100_000)
            {
                cache.put(domainLowercase, hop);
            }
        }
        return hop;
    }

    private NextHop resolve(final String domain)
    {
        final TlsLevel tls = routing.tlsLevelFor(domain);
        final Route route = routing.routeFor(domain);
        if (route != null)
        {
            // an unbracketed route without a port is looked up like a domain (Postfix relayhost semantics)
            return route.noMxLookup() ? NextHop.direct(route.host(), route.port(), tls) : NextHop.mx(route.host(),
                smtpPort, tls);
        }
        if (domain.startsWith("[") && domain.endsWith("]"))
        {
            String literal = domain.substring(1, domain.length() - 1);
            if (literal.regionMatches(true, 0, "IPv6:", 0, 5))
            {
                literal = literal.substring(5);
            }
            return NextHop.direct(literal, smtpPort, tls);
        }
        return NextHop.mx(domain, smtpPort, tls);
    }
}
