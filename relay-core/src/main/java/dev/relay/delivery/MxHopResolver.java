package dev.relay.delivery;

import dev.relay.config.DnsSettings;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * MX next hops through {@link MxResolver} (dnsjava, asynchronous): the addresses of every MX host in preference
 * order, each with its host name (what delivery logs and backs off). NXDOMAIN bounces (5.1.2), a null MX bounces
 * (5.1.10, RFC 7505), everything else that yields no address defers (4.4.3), as Postfix does.
 * <p>
 * A hop keeps the addresses for what is left of their TTL, at least {@value #MIN_REFRESH_MS} ms and at most
 * {@value #ADDRESS_REFRESH_MS} ms (then it asks again, answered from the resolver's cache while the TTL lasts); a
 * failure for {@value #RETRY_LOOKUP_MS} ms. The resolver's cache holds {@code delivery.dns.cache_size} domains,
 * and {@code delivery.dns.max_in_flight} bounds its queries.
 */
public final class MxHopResolver implements HopResolver
{
    private static final Duration DNS_TIMEOUT = Duration.ofSeconds(10);
    private static final long RETRY_LOOKUP_MS = 10_000;
    private static final long MIN_REFRESH_MS = 1_000;
    private static final long ADDRESS_REFRESH_MS = 60_000;

    private final MxResolver resolver;

    public MxHopResolver(final MxResolver resolver)
    {
        this.resolver = resolver;
    }

    public static MxHopResolver create(final DnsSettings settings)
    {
        return new MxHopResolver(new MxResolver(settings.servers(), DNS_TIMEOUT, settings.cacheSize(),
            settings.maxInFlight()));
    }

    /** The resolver behind it, for its counters. */
    public MxResolver resolver()
    {
        return resolver;
    }

    @Override
    public void flush()
    {
        resolver.forgetTemporaryFailures();
    }

    @Override
    public void resolve(final NextHop hop, final long nowMs, final Consumer<HopAddresses> callback)
    {
        resolver.resolve(hop.host(), result -> callback.accept(toAddresses(hop, result)));
    }

    static HopAddresses toAddresses(final NextHop hop, final MxResult result)
    {
        final long now = System.currentTimeMillis();
        switch (result.status())
        {
            case OK:
            {
                final List<HopAddress> addresses = new ArrayList<>();
                for (final MxHost host : result.hosts())
                {
                    for (final InetAddress address : host.addresses())
                    {
                        // an IP literal ([192.0.2.1]) is named by its address, as Postfix logs relay=192.0.2.1[...]
                        final String name = host.name().startsWith("[") ? address.getHostAddress() : host.name();
                        addresses.add(
                            new HopAddress(name, host.preference(), new InetSocketAddress(address, hop.port())));
                    }
                }
                if (addresses.isEmpty())
                {
                    return HopAddresses.failure(false, "4.4.3", "no address for the MX hosts of " + hop.host(),
                        now + RETRY_LOOKUP_MS);
                }
                // the resolver caches by TTL itself: the hop asks again when the TTL ends, or after a minute
                // (answered from the cache then)
                final long keepMs = Math.min(ADDRESS_REFRESH_MS, Math.max(MIN_REFRESH_MS, result.validForMs()));
                return HopAddresses.of(addresses, now + keepMs);
            }
            case NULL_MX:
                return HopAddresses.failure(true, "5.1.10",
                    "domain " + hop.host() + " does not accept mail (null MX, RFC 7505)", now + RETRY_LOOKUP_MS);
            case NXDOMAIN:
                return HopAddresses.failure(true, "5.1.2", result.message(), now + RETRY_LOOKUP_MS);
            default:
                return HopAddresses.failure(false, "4.4.3", result.message(), now + RETRY_LOOKUP_MS);
        }
    }

    @Override
    public void close()
    {
        resolver.close();
    }
}
