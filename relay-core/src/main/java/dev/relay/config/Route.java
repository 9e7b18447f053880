package dev.relay.config;

/**
 * One entry of {@code delivery.routes}: mail for {@code domain} goes to {@code host:port}.
 * <p>
 * {@code domain} is lowercase and is either an exact domain ({@code example.com}), a suffix matching every
 * subdomain ({@code .example.com}, not {@code example.com} itself) or {@code *} (everything not otherwise routed).
 * {@code host} is lowercase, without brackets; it is a domain name or an IP literal (IPv6 without brackets).
 * When {@code noMxLookup} is true the host is connected to directly (its A/AAAA records, or the literal);
 * otherwise the host's MX records are looked up first, as Postfix does for a {@code relayhost} without brackets.
 *
 * @param domain     lowercase domain, {@code .suffix} or {@code *}.
 * @param host       lowercase next-hop host name or IP literal.
 * @param port       TCP port, 1..65535.
 * @param noMxLookup true when the host was written in brackets or with an explicit port, or is an IP literal.
 */
public record Route(String domain, String host, int port, boolean noMxLookup)
{
    /**
     * The domain that matches every domain not routed otherwise.
     */
    public static final String CATCH_ALL = "*";
}
