package dev.relay.config;

import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The value syntaxes of the configuration: numbers, sizes, durations, booleans, choices, paths and tokens (the
 * network ones are {@link AddressParsers}', the domain ones {@link DomainParsers}'). Each parser takes the trimmed
 * text and returns the typed value, or throws {@link IllegalArgumentException} whose message reads after the quoted
 * value, for example {@code is not a positive integer}. Start-up only.
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

    /** A bearer token as RFC 6750 §2.1 writes one (b64token: letters, digits, -._~+/ then '=' padding); "" = none. */
    static String parseToken(final String text)
    {
        if (!text.matches("[A-Za-z0-9._~+/-]*=*"))
        {
            throw new IllegalArgumentException("is not a bearer token (letters, digits and -._~+/ then '=' only)");
        }
        return text;
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

    /** Only ASCII digits, at least one. */
    static boolean isNumeric(final String text)
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
