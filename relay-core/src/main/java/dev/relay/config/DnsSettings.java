package dev.relay.config;

import java.net.InetSocketAddress;
import java.util.List;

/**
 * The MX lookups of delivery: which servers, how many queries at once, how many answers kept. Read when the
 * delivery stage builds its resolver; immutable, any thread.
 *
 * @param servers     {@code delivery.dns.servers}; empty means the system resolver.
 * @param maxInFlight {@code delivery.dns.max_in_flight}: DNS queries outstanding at once.
 * @param cacheSize   {@code delivery.dns.cache_size}: domains whose lookup result is cached; 0 = none.
 */
public record DnsSettings(List<InetSocketAddress> servers, int maxInFlight, int cacheSize)
{
    static DnsSettings from(final ConfigValues values)
    {
        return new DnsSettings(
            values.get(ConfigKey.DELIVERY_DNS_SERVERS),
            values.get(ConfigKey.DELIVERY_DNS_MAX_IN_FLIGHT),
            values.get(ConfigKey.DELIVERY_DNS_CACHE_SIZE));
    }
}
