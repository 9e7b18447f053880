package dev.relay.config;

import dev.relay.spool.SyncMode;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The value syntaxes of the configuration. Each parser takes the trimmed text and returns the typed value, or
 * throws {@link IllegalArgumentException} whose message reads after the quoted value, for example
 * {@code is not a positive integer}. Start-up only.
 */
final class ValueParsers
{
    /**
     * Parses one configuration value.
     */
    @FunctionalInterface
    interface ValueParser
    {
        /**
         * @param text trimmed value text.
         * @return the typed value.
         * @throws IllegalArgumentException with a reason ("is not ...").
         */
        Object parse(String text);
    }

    private static final Pattern INTEGER = Pattern.compile("[+-]?[0-9]{1,10}");
    private static final Pattern DURATION = Pattern.compile("([0-9]{1,15})(ms|s|m|h|d)");
    private static final Pattern SIZE = Pattern.compile("([0-9]{1,19})\\s*(|b|k|kb|kib|m|mb|mib|g|gb|gib)");

    private ValueParsers()
    {
    }

    static ValueParser intRange(final int min, final int max)
    {
        return (text) -> parseInt(text, min, max);
    }

    static ValueParser intRangeOrAuto(final int min, final int max, final int auto)
    {
        return (text) -> "auto".equals(text) ? Integer.valueOf(auto) : parseInt(text, min, max);
    }

    private static Integer parseInt(final String text, final int min, final int max)
    {
        if (INTEGER.matcher(text).matches())
        {
            final long value = Long.parseLong(text);
            if (value >= min && value <= max)
            {
                return (int)value;
            }
        }
        throw new IllegalArgumentException(describeRange(min, max));
    }

    private static String describeRange(final long min, final long max)
    {
        if (max == Integer.MAX_VALUE || max == Long.MAX_VALUE)
        {
            return 1 == min ? "is not a positive integer" :
                0 == min ? "is not a non-negative integer" : "is not an integer >= " + min;
        }

        return "is not an integer in " + min + ".." + max;
    }

    static Boolean parseBoolean(final String text)
    {
        if ("true".equals(text))
        {
            return Boolean.TRUE;
        }
        if ("false".equals(text))
        {
            return Boolean.FALSE;
        }
        throw new IllegalArgumentException("is not true or false");
    }

    /**
     * Sizes in bytes with an optional binary unit, case-insensitive: {@code k}, {@code kb}, {@code kib} = 1024;
     * {@code m}, {@code mb}, {@code mib} = 1024²; {@code g}, {@code gb}, {@code gib} = 1024³; {@code b} or none =
     * bytes. So {@code 10MB} is 10,485,760 bytes, as in Postfix and most servers' configs.
     */
    static long parseSize(final String text, final long min, final long max)
    {
        final Matcher m = SIZE.matcher(text.toLowerCase(Locale.ROOT));
        final String reason = "is not a size in bytes " +
            (max == Long.MAX_VALUE ? ">= " + min : "in " + min + ".." + max) + " (units: k, M, G; binary)";
        if (!m.matches())
        {
            throw new IllegalArgumentException(reason);
        }
        final long multiplier;
        switch (m.group(2))
        {
            case "k":
            case "kb":
            case "kib":
                multiplier = 1L << 10;
                break;
            case "m":
            case "mb":
            case "mib":
                multiplier = 1L << 20;
                break;
            case "g":
            case "gb":
            case "gib":
                multiplier = 1L << 30;
                break;
            default:
                multiplier = 1;
                break;
        }
        try
        {
            final long value = Math.multiplyExact(Long.parseLong(m.group(1)), multiplier);
            if (value >= min && value <= max)
            {
                return value;
            }
        }
        catch (final ArithmeticException | NumberFormatException ex)
        {
            // fall through to the reason
        }
        throw new IllegalArgumentException(reason);
    }

    static ValueParser size(final long min, final long max)
    {
        return (text) -> parseSize(text, min, max);
    }

    /** A size, or {@code auto} (returned as -1: the caller decides). */
    static ValueParser sizeOrAuto(final long min, final long max)
    {
        return (text) -> "auto".equals(text) ? Long.valueOf(-1) : parseSize(text, min, max);
    }

    static ValueParser intSize(final int min, final int max)
    {
        return (text) -> (int)parseSize(text, min, max);
    }

    /**
     * Durations with a required unit: {@code ms}, {@code s}, {@code m}, {@code h}, {@code d}; only {@code 0} may
     * omit it. Combinations such as {@code 1h30m} are not accepted: write {@code 90m}.
     */
    static Duration parseDuration(final String text)
    {
        if ("0".equals(text))
        {
            return Duration.ZERO;
        }
        final Matcher m = DURATION.matcher(text);
        if (!m.matches())
        {
            throw new IllegalArgumentException("is not a duration (a number with unit ms, s, m, h or d, e.g. 30s)");
        }
        final long amount = Long.parseLong(m.group(1));
        try
        {
            switch (m.group(2))
            {
                case "ms":
                    return Duration.ofMillis(amount);
                case "s":
                    return Duration.ofSeconds(amount);
                case "m":
                    return Duration.ofMinutes(amount);
                case "h":
                    return Duration.ofHours(amount);
                default:
                    return Duration.ofDays(amount);
            }
        }
        catch (final ArithmeticException ex)
        {
            throw new IllegalArgumentException("is too long a duration");
        }
    }

    static Duration positiveDuration(final String text)
    {
        final Duration duration = parseDuration(text);
        if (duration.isZero())
        {
            throw new IllegalArgumentException("is not a positive duration (e.g. 30s, 5m)");
        }

        return duration;
    }

    /**
     * {@code off} or {@code 0} mean disabled and give {@link Duration#ZERO}.
     */
    static Duration durationOrOff(final String text)
    {
        return "off".equals(text) ? Duration.ZERO : parseDuration(text);
    }

    static List<Duration> durationList(final String text)
    {
        final List<Duration> durations = new ArrayList<>();
        for (final String item : splitList(text))
        {
            try
            {
                durations.add(positiveDuration(item));
            }
            catch (final IllegalArgumentException ex)
            {
                throw new IllegalArgumentException("is not a list of durations: \"" + item + "\" " + ex.getMessage());
            }
        }
        if (durations.isEmpty())
        {
            throw new IllegalArgumentException("is not a list of durations: at least one is needed");
        }

        return List.copyOf(durations);
    }

    static ValueParser oneOf(final String... choices)
    {
        return (text) ->
        {
            for (final String choice : choices)
            {
                if (choice.equals(text))
                {
                    return choice;
                }
            }
            throw new IllegalArgumentException("is not one of " + String.join(", ", choices));
        };
    }

    static String parseAcceptMode(final String text)
    {
        if ("reuseport".equals(text) || "acceptor".equals(text))
        {
            return text;
        }
        throw new IllegalArgumentException("is not reuseport or acceptor");
    }

    static SyncMode parseSyncMode(final String text)
    {
        switch (text)
        {
            case "always":
                return SyncMode.ALWAYS;
            case "batch":
                return SyncMode.BATCH;
            case "none":
                return SyncMode.NONE;
            default:
                throw new IllegalArgumentException("is not one of always, batch, none");
        }
    }

    /**
     * A path, relative to the working directory unless absolute; an existing non-directory is refused.
     */
    static Path parseDirectory(final String text)
    {
        if (text.isEmpty())
        {
            throw new IllegalArgumentException("is not a directory path: empty");
        }
        final Path path;
        try
        {
            path = Path.of(text);
        }
        catch (final InvalidPathException ex)
        {
            throw new IllegalArgumentException("is not a valid path: " + ex.getReason());
        }
        if (Files.exists(path) && !Files.isDirectory(path))
        {
            throw new IllegalArgumentException("exists and is not a directory");
        }

        return path;
    }

    /**
     * Empty means "use the machine name": the caller resolves it.
     */
    /** A bearer token as RFC 6750 §2.1 writes one (b64token: letters, digits, -._~+/ then '=' padding); "" = none. */
    static String parseToken(final String text)
    {
        if (!text.matches("[A-Za-z0-9._~+/-]*=*"))
        {
            throw new IllegalArgumentException("is not a bearer token (letters, digits and -._~+/ then '=' only)");
        }
        return text;
    }

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

    static NetworkList parseNetworks(final String text)
    {
        final List<Cidr> networks = new ArrayList<>();
        for (final String item : splitList(text))
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

    static Set<String> parseDomains(final String text)
    {
        final Set<String> domains = new LinkedHashSet<>();
        for (final String item : splitList(text))
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

    /**
     * Empty = not set (null); otherwise a path to a readable regular file (relative to the working directory unless
     * absolute): a configured file that is missing stops the relay at start, not at the first handshake.
     */
    static Path optionalFile(final String text)
    {
        if (text.isEmpty())
        {
            return null;
        }
        final Path path;
        try
        {
            path = Path.of(text);
        }
        catch (final InvalidPathException ex)
        {
            throw new IllegalArgumentException("is not a valid path: " + ex.getReason());
        }
        if (!Files.isRegularFile(path))
        {
            throw new IllegalArgumentException("is not a file (missing, or a directory)");
        }
        if (!Files.isReadable(path))
        {
            throw new IllegalArgumentException("is not readable by this user");
        }

        return path;
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

    private static List<InetSocketAddress> socketAddressList(final String text, final int defaultPort, final int minPort)
    {
        final List<InetSocketAddress> addresses = new ArrayList<>();
        for (final String item : splitList(text))
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
            if (!isHostName(host.toLowerCase(Locale.ROOT)))
            {
                throw new IllegalArgumentException("is not host:port: \"" + host + "\" is not a host name or IP address");
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
        if (!text.isEmpty() && text.length() <= 5 && isNumeric(text))
        {
            final int port = Integer.parseInt(text);
            if (port >= minPort && port <= 65535)
            {
                return port;
            }
        }
        throw new IllegalArgumentException("has a bad port \"" + text + "\" (" + minPort + "..65535)");
    }

    /**
     * {@code domain=host}, comma-separated; see {@link Route} and {@link Routing#routeFor(String)}.
     */
    static List<Route> parseRoutes(final String text)
    {
        final List<Route> routes = new ArrayList<>();
        final Set<String> seen = new LinkedHashSet<>();
        for (final String item : splitList(text))
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
        final int port = null == portText ? 25 : parsePort(portText, 1);
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
        for (final String item : splitList(text))
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
     * Comma-separated items, each trimmed; empty items are dropped, so an empty value is an empty list.
     */
    static List<String> splitList(final String text)
    {
        final List<String> items = new ArrayList<>();
        for (final String item : text.split(","))
        {
            final String trimmed = item.strip();
            if (!trimmed.isEmpty())
            {
                items.add(trimmed);
            }
        }

        return items;
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
        return isDomainName(name) && !isNumeric(name.substring(name.lastIndexOf('.') + 1));
    }

    private static boolean isNumeric(final String text)
    {
        for (int i = 0; i < text.length(); i++)
        {
            if (text.charAt(i) < '0' || text.charAt(i) > '9')
            {
                return false;
            }
        }

        return !text.isEmpty();
    }
}
