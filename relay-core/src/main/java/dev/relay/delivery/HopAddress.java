package dev.relay.delivery;

import java.net.InetSocketAddress;

/**
 * One address a {@link NextHop} may be reached at, with the host it belongs to: what delivery connects to, backs
 * off when it fails, and names in its log ({@code relay=mx2.example[192.0.2.3]:25}) and deferral reasons.
 * <p>
 * Immutable; any thread.
 *
 * @param host       the MX host name (lowercase, no trailing dot), the domain itself for an implicit MX, the
 *                   address for an IP literal, or the route host of a direct route.
 * @param preference MX preference (lower first); 0 for a direct route, an implicit MX or an IP literal.
 * @param address    where to connect.
 */
public record HopAddress(String host, int preference, InetSocketAddress address)
{
}
