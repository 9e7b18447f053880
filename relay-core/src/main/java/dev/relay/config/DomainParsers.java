package dev.relay.config;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The domain value syntaxes of the configuration: host names (RFC 1035 §2.3.1), domain lists ({@code relay.domains},
 * {@code .domain} for subdomains), routes ({@code delivery.routes}) and TLS policies ({@code delivery.tls.policy}).
 * Each parser takes the trimmed text and returns the typed value, or throws {@link IllegalArgumentException} whose
 * message reads after the quoted value, as {@link ValueParsers}' do. Stateless; start-up only.
 */
final class DomainParsers
{
    private DomainParsers()
    {
    }

    /**
     * Empty means "use the machine name": the caller resolves it.
     */
    static String parseHostname(final String text)
    {
        if (text.isEmpty())
        {
            return text;
        }
        final String lower = text.toLowerCase(Locale.ROOT);
        if (!isHostName(lower))
        {
            throw new IllegalArgumentException("is not a valid domain name");
        }

        return lower;
    }

    static Set<String> parseDomains(final String text)
    {
        final Set<String> domains = new LinkedHashSet<>();
        for (final String item : ValueParsers.splitList(text))
        {
            final String lower = item.toLowerCase(Locale.ROOT);
            final String name = lower.startsWith(".") ? lower.substring(1) : lower;
            if (!isHostName(name))
            {
                throw new IllegalArgumentException("is not a domain list: \"" + item + "\" is not a domain name");
            }
            domains.add(lower);
        }

        return Collections.unmodifiableSet(domains);
    }

    /**
     * {@code domain=host}, comma-separated; see {@link Route} and {@link Routing#routeFor(String)}.
     */
    static List<Route> parseRoutes(final String text)
    {
        final List<Route> routes = new ArrayList<>();
        final Set<String> seen = new LinkedHashSet<>();
        for (final String item : ValueParsers.splitList(text))
        {
            final Route route;
            try
            {
                route = parseRoute(item);
            }
            catch (final IllegalArgumentException ex)
            {
                throw new IllegalArgumentException("is not a route list: \"" + item + "\" " + ex.getMessage());
            }
            if (!seen.add(route.domain()))
            {
                throw new IllegalArgumentException("is not a route list: \"" + route.domain() + "\" is routed twice");
            }
            routes.add(route);
        }

        return List.copyOf(routes);
    }

    private static Route parseRoute(final String item)
    {
        final int equals = item.indexOf('=');
        if (equals < 0)
        {
            throw new IllegalArgumentException("is not domain=host[:port]");
        }
        final String domain = item.substring(0, equals).strip().toLowerCase(Locale.ROOT);
        final String target = item.substring(equals + 1).strip().toLowerCase(Locale.ROOT);
        if (!Route.CATCH_ALL.equals(domain) && !isHostName(domain.startsWith(".") ? domain.substring(1) : domain))
        {
            throw new IllegalArgumentException("has a bad domain \"" + domain + "\" (a domain, .domain or *)");
        }

        final String host;
        final String portText;
        final boolean bracketed;
        if (target.startsWith("["))
        {
            final int close = target.indexOf(']');
            if (close < 0)
            {
                throw new IllegalArgumentException("is not domain=host[:port]: missing ']'");
            }
            host = target.substring(1, close);
            final String rest = target.substring(close + 1);
            if (!rest.isEmpty() && !rest.startsWith(":"))
            {
                throw new IllegalArgumentException("is not domain=host[:port]: unexpected text after ']'");
            }
            portText = rest.isEmpty() ? null : rest.substring(1);
            bracketed = true;
        }
        else
        {
            final int colon = target.lastIndexOf(':');
            if (colon >= 0 && target.indexOf(':') != colon)
            {
                throw new IllegalArgumentException("is not domain=host[:port]: write IPv6 in brackets, [2001:db8::1]");
            }
            host = colon < 0 ? target : target.substring(0, colon);
            portText = colon < 0 ? null : target.substring(colon + 1);
            bracketed = false;
        }

        final byte[] literal = Cidr.parseAddress(host);
        if (null == literal && !isHostName(host))
        {
            throw new IllegalArgumentException("has a bad host \"" + host + "\" (a host name or IP address)");
        }
        final int port = null == portText ? 25 : AddressParsers.parsePort(portText, 1);
        final boolean noMxLookup = bracketed || null != portText || null != literal;

        return new Route(domain, host, port, noMxLookup);
    }

    /**
     * {@code domain=level}, comma-separated, domains as in routes; see {@link TlsPolicy} and
     * {@link Routing#tlsLevelFor(String)}.
     */
    static List<TlsPolicy> parseTlsPolicy(final String text)
    {
        final List<TlsPolicy> policies = new ArrayList<>();
        final Set<String> seen = new LinkedHashSet<>();
        for (final String item : ValueParsers.splitList(text))
        {
            final int equals = item.indexOf('=');
            if (equals < 0)
            {
                throw new IllegalArgumentException("is not a policy list: \"" + item + "\" is not domain=level");
            }
            final String domain = item.substring(0, equals).strip().toLowerCase(Locale.ROOT);
            if (!Route.CATCH_ALL.equals(domain) && !isHostName(domain.startsWith(".") ? domain.substring(1) : domain))
            {
                throw new IllegalArgumentException("is not a policy list: \"" + item + "\" has a bad domain \"" +
                    domain + "\" (a domain, .domain or *)");
            }
            final TlsLevel level;
            try
            {
                level = TlsLevel.parse(item.substring(equals + 1).strip().toLowerCase(Locale.ROOT));
            }
            catch (final IllegalArgumentException ex)
            {
                throw new IllegalArgumentException("is not a policy list: \"" + item + "\": the level " +
                    ex.getMessage());
            }
            if (!seen.add(domain))
            {
                throw new IllegalArgumentException("is not a policy list: \"" + domain + "\" is listed twice");
            }
            policies.add(new TlsPolicy(domain, level));
        }

        return List.copyOf(policies);
    }

    /**
     * RFC 1035 §2.3.1 host name syntax (letters, digits, hyphens; labels of 1..63 not starting or ending with a
     * hyphen; at most 253 characters; no trailing dot), expecting lowercase input. A single label is accepted.
     */
    static boolean isDomainName(final String name)
    {
        if (name.isEmpty() || name.length() > 253)
        {
            return false;
        }
        int labelLength = 0;
        for (int i = 0; i < name.length(); i++)
        {
            final char c = name.charAt(i);
            if (c == '.')
            {
                if (0 == labelLength || name.charAt(i - 1) == '-')
                {
                    return false;
                }
                labelLength = 0;
                continue;
            }
            final boolean ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && labelLength > 0);
            if (!ok || ++labelLength > 63)
            {
                return false;
            }
        }

        return labelLength > 0 && name.charAt(name.length() - 1) != '-';
    }

    /**
     * A domain name ({@link #isDomainName(String)}) whose last label is not all digits, so it cannot be
     * mistaken for an IPv4 address.
     */
    static boolean isHostName(final String name)
    {
        return isDomainName(name) && !ValueParsers.isNumeric(name.substring(name.lastIndexOf('.') + 1));
    }
}
