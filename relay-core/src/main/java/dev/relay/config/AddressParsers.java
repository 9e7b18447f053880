package dev.relay.config;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The network value syntaxes of the configuration: CIDR lists ({@code relay.networks}, {@code smtp.proxy_networks}),
 * listen addresses ({@code host:port}, {@code [ipv6]:port}, {@code off}), DNS server lists and ports. Each parser
 * takes the trimmed text and returns the typed value, or throws {@link IllegalArgumentException} whose message reads
 * after the quoted value, as {@link ValueParsers}' do. Stateless; start-up only (host names are resolved now).
 */
final class AddressParsers
{
    private AddressParsers()
    {
    }

    static NetworkList parseNetworks(final String text)
    {
        final List<Cidr> networks = new ArrayList<>();
        for (final String item : ValueParsers.splitList(text))
        {
            try
            {
                networks.add(Cidr.parse(item));
            }
            catch (final IllegalArgumentException ex)
            {
                throw new IllegalArgumentException("is not a CIDR list: \"" + item + "\" " + ex.getMessage());
            }
        }

        return new NetworkList(networks);
    }

    static List<InetSocketAddress> listenList(final String text)
    {
        final List<InetSocketAddress> addresses = socketAddressList(text, -1, 0);
        if (addresses.isEmpty())
        {
            throw new IllegalArgumentException("is not a list of host:port: at least one is needed");
        }

        return addresses;
    }

    /** A listen list that may be empty (no such listener). */
    static List<InetSocketAddress> listenListOrEmpty(final String text)
    {
        return socketAddressList(text, -1, 0);
    }

    static List<InetSocketAddress> dnsServerList(final String text)
    {
        return socketAddressList(text, 53, 1);
    }

    static InetSocketAddress listenOrOff(final String text)
    {
        if ("off".equals(text))
        {
            return null;
        }

        return socketAddress(text, -1, 0);
    }

    private static List<InetSocketAddress> socketAddressList(
        final String text, final int defaultPort, final int minPort)
    {
        final List<InetSocketAddress> addresses = new ArrayList<>();
        for (final String item : ValueParsers.splitList(text))
        {
            try
            {
                addresses.add(socketAddress(item, defaultPort, minPort));
            }
            catch (final IllegalArgumentException ex)
            {
                throw new IllegalArgumentException("is not a list of host:port: \"" + item + "\" " + ex.getMessage());
            }
        }

        return List.copyOf(addresses);
    }

    /**
     * {@code host:port}, {@code [ipv6]:port} or, when {@code defaultPort >= 0}, just the host. IP literals are
     * not looked up; a host name must resolve now.
     */
    static InetSocketAddress socketAddress(final String text, final int defaultPort, final int minPort)
    {
        final String host;
        final String portText;
        if (text.startsWith("["))
        {
            final int close = text.indexOf(']');
            if (close < 0)
            {
                throw new IllegalArgumentException("is not host:port: missing ']'");
            }
            host = text.substring(1, close);
            final String rest = text.substring(close + 1);
            if (rest.isEmpty())
            {
                portText = null;
            }
            else if (rest.startsWith(":"))
            {
                portText = rest.substring(1);
            }
            else
            {
                throw new IllegalArgumentException("is not host:port: unexpected text after ']'");
            }
        }
        else
        {
            final int colon = text.lastIndexOf(':');
            if (colon >= 0 && text.indexOf(':') != colon)
            {
                throw new IllegalArgumentException("is not host:port: write an IPv6 address in brackets, [::1]:25");
            }
            host = colon < 0 ? text : text.substring(0, colon);
            portText = colon < 0 ? null : text.substring(colon + 1);
        }

        final int port;
        if (null == portText)
        {
            if (defaultPort < 0)
            {
                throw new IllegalArgumentException("is not host:port: the port is missing");
            }
            port = defaultPort;
        }
        else
        {
            port = parsePort(portText, minPort);
        }

        final byte[] literal = Cidr.parseAddress(host);
        try
        {
            if (null != literal)
            {
                return new InetSocketAddress(InetAddress.getByAddress(literal), port);
            }
            if (!DomainParsers.isHostName(host.toLowerCase(Locale.ROOT)))
            {
                throw new IllegalArgumentException("is not host:port: \"" + host +
                    "\" is not a host name or IP address");
            }

            return new InetSocketAddress(InetAddress.getByName(host), port);
        }
        catch (final UnknownHostException ex)
        {
            throw new IllegalArgumentException("is not host:port: \"" + host + "\" does not resolve");
        }
    }

    static int parsePort(final String text, final int minPort)
    {
        if (!text.isEmpty() && text.length() <= 5 && ValueParsers.isNumeric(text))
        {
            final int port = Integer.parseInt(text);
            if (port >= minPort && port <= 65535)
            {
                return port;
            }
        }
        throw new IllegalArgumentException("has a bad port \"" + text + "\" (" + minPort + "..65535)");
    }
}
