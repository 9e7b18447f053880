package dev.relay.config;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Where mail for a recipient domain goes and how hard TLS is asked for on the way: {@code delivery.routes},
 * {@code delivery.tls}, {@code delivery.tls.policy} and {@code delivery.smtp_port}, each domain list matched the
 * same way (an exact entry, then the longest {@code .suffix}, then {@code *}). Read by the queue manager's router
 * (a reload brings a new one) and, for whether TLS is wanted at all, by the root package at start.
 * <p>
 * Immutable, any thread; {@link #routeFor} and {@link #tlsLevelFor} may create suffix strings.
 */
public final class Routing
{
    private final List<Route> routes;
    private final TlsLevel defaultTls;
    private final List<TlsPolicy> tlsPolicy;
    private final int smtpPort;
    private final Map<String, Route> exactRoutes = new HashMap<>();
    private final Map<String, Route> suffixRoutes = new HashMap<>();
    private final Route catchAllRoute;
    private final Map<String, TlsLevel> exactTlsLevels = new HashMap<>();
    private final Map<String, TlsLevel> suffixTlsLevels = new HashMap<>();
    private final TlsLevel catchAllTlsLevel;

    /**
     * @param routes     {@code delivery.routes} in the order written.
     * @param defaultTls {@code delivery.tls}: the level of domains {@code tlsPolicy} does not name.
     * @param tlsPolicy  {@code delivery.tls.policy} in the order written.
     * @param smtpPort   {@code delivery.smtp_port}: the port of MX-resolved next hops and of routes without one.
     */
    public Routing(final List<Route> routes, final TlsLevel defaultTls, final List<TlsPolicy> tlsPolicy,
        final int smtpPort)
    {
        this.routes = List.copyOf(routes);
        this.defaultTls = defaultTls;
        this.tlsPolicy = List.copyOf(tlsPolicy);
        this.smtpPort = smtpPort;
        Route catchAll = null;
        for (final Route route : routes)
        {
            if (Route.CATCH_ALL.equals(route.domain()))
            {
                catchAll = route;
            }
            else if (route.domain().startsWith("."))
            {
                suffixRoutes.put(route.domain(), route);
            }
            else
            {
                exactRoutes.put(route.domain(), route);
            }
        }
        catchAllRoute = catchAll;
        TlsLevel catchAllLevel = defaultTls;
        for (final TlsPolicy policy : tlsPolicy)
        {
            if (Route.CATCH_ALL.equals(policy.domain()))
            {
                catchAllLevel = policy.level();
            }
            else
            {
                (policy.domain().startsWith(".") ? suffixTlsLevels : exactTlsLevels).put(policy.domain(),
                    policy.level());
            }
        }
        catchAllTlsLevel = catchAllLevel;
    }

    static Routing from(final ConfigValues values)
    {
        return new Routing(
            values.get(ConfigKey.DELIVERY_ROUTES),
            values.get(ConfigKey.DELIVERY_TLS),
            values.get(ConfigKey.DELIVERY_TLS_POLICY),
            values.get(ConfigKey.DELIVERY_SMTP_PORT));
    }

    /**
     * The route for a recipient domain: an exact entry first, then the longest matching {@code .suffix} entry,
     * then {@code *}.
     *
     * @param domainLowercase a recipient domain, lowercase, without trailing dot.
     * @return the route, or null when the domain is unrouted and its MX records decide.
     */
    public Route routeFor(final String domainLowercase)
    {
        return matchDomain(exactRoutes, suffixRoutes, catchAllRoute, domainLowercase);
    }

    /**
     * The outbound TLS level for a recipient domain: {@code delivery.tls.policy} matched as routes are (exact,
     * longest {@code .suffix}, {@code *}), else {@code delivery.tls}.
     *
     * @param domainLowercase a recipient domain, lowercase, without trailing dot.
     */
    public TlsLevel tlsLevelFor(final String domainLowercase)
    {
        return matchDomain(exactTlsLevels, suffixTlsLevels, catchAllTlsLevel, domainLowercase);
    }

    /** @return whether any domain may get TLS (a level other than {@code none} anywhere): a client context is used. */
    public boolean usesTls()
    {
        boolean wanted = defaultTls != TlsLevel.NONE;
        for (final TlsPolicy policy : tlsPolicy)
        {
            wanted |= policy.level() != TlsLevel.NONE;
        }
        return wanted;
    }

    /** @return {@code delivery.routes} in the order written, unmodifiable; see {@link #routeFor(String)}. */
    public List<Route> routes()
    {
        return routes;
    }

    /** @return {@code delivery.tls}: the level of domains {@code delivery.tls.policy} does not name. */
    public TlsLevel defaultTls()
    {
        return defaultTls;
    }

    /** @return {@code delivery.tls.policy} in the order written; see {@link #tlsLevelFor(String)}. */
    public List<TlsPolicy> tlsPolicy()
    {
        return tlsPolicy;
    }

    /** @return {@code delivery.smtp_port}: the port of MX-resolved next hops and of routes without a port. */
    public int smtpPort()
    {
        return smtpPort;
    }

    private static <T> T matchDomain(
        final Map<String, T> exact, final Map<String, T> suffixes, final T otherwise, final String domainLowercase)
    {
        final T found = exact.get(domainLowercase);
        if (null != found)
        {
            return found;
        }
        if (!suffixes.isEmpty())
        {
            for (int dot = domainLowercase.indexOf('.'); dot >= 0; dot = domainLowercase.indexOf('.', dot + 1))
            {
                final T value = suffixes.get(domainLowercase.substring(dot));
                if (null != value)
                {
                    return value;
                }
            }
        }

        return otherwise;
    }
}
