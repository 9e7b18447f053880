package dev.relay.delivery;

import java.net.InetAddress;
import java.util.List;

/**
 * One next-hop host of an {@link MxResult}: an MX exchange (or the domain itself for an implicit MX, RFC 5321
 * §5.1) with its preference and every address its A and AAAA records gave, IPv4 first, each family in the order
 * the server returned them.
 * <p>
 * Immutable; any thread.
 *
 * @param name       lowercase host name without the trailing dot, or the IP literal as written (e.g.
 *                   {@code [192.0.2.1]}).
 * @param preference MX preference, 0..65535; 0 for an implicit MX or an IP literal.
 * @param addresses  at least one address when part of an {@link MxResult.Status#OK} result; copied.
 */
public record MxHost(String name, int preference, List<InetAddress> addresses)
{
    /**
     * Copies {@code addresses} so the record stays immutable.
     */
    public MxHost
    {
        addresses = List.copyOf(addresses);
    }
}
