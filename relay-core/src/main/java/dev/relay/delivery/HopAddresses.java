package dev.relay.delivery;

import java.util.List;

/**
 * The outcome of resolving a {@link NextHop}: addresses to try, in MX preference order (each host's addresses
 * together, equal preferences already shuffled), or why there are none. A direct route is a one-host list.
 *
 * @param permanent when there are no addresses: true means bounce (NXDOMAIN → 5.1.2, null MX → 5.1.10),
 *                  false means defer (SERVFAIL, timeout, MX hosts without addresses).
 * @param statusCode the RFC 3463 code for a failure ("5.1.2", "4.4.3").
 */
public record HopAddresses(
    List<HopAddress> addresses, boolean permanent, String statusCode, String reason, long expiresAtMs)
{
    public static HopAddresses of(final List<HopAddress> addresses, final long expiresAtMs)
    {
        return new HopAddresses(List.copyOf(addresses), false, null, null, expiresAtMs);
    }

    public static HopAddresses failure(
        final boolean permanent, final String statusCode, final String reason, final long expiresAtMs)
    {
        return new HopAddresses(List.of(), permanent, statusCode, reason, expiresAtMs);
    }

    public boolean ok()
    {
        return !addresses.isEmpty();
    }
}
