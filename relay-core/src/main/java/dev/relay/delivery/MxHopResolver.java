package dev.relay.delivery;

import dev.relay.config.RelayConfig;

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
 */
public final class MxHopResolver implements HopResolver
{
    private static final Duration DNS_TIMEOUT = Duration.ofSeconds(10);
    private static final int CACHE_SIZE = 10_000;
    private static final long RETRY_LOOKUP_MS = 10_000;
    private static final long ADDRESS_REFRESH_MS = 60_000;

    private final MxResolver resolver;

    public MxHopResolver(final MxResolver resolver)
    {
        this.resolver = resolver;
    }

    public static MxHopResolver create(final RelayConfig config)
    {
        return new MxHopResolver(new MxResolver(config.deliveryDnsServers(), DNS_TIMEOUT, CACHE_SIZE));
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
                // the resolver caches by TTL itself; the hop asks again after a minute (cheap when cached)
                return HopAddresses.of(addresses, now + ADDRESS_REFRESH_MS);
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
