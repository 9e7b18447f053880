package dev.relay.config;

import java.util.ArrayList;
import java.util.List;

/**
 * Reads properties text line by line, keeping the line number of each entry, following
 * {@link java.util.Properties#load(java.io.Reader)}: {@code #} and {@code !} comment lines, {@code key=value},
 * {@code key: value} and {@code key value}, leading whitespace ignored, a line ending in an odd number of
 * backslashes continued on the next (whose leading whitespace is dropped), and the escapes {@code \t \n \r \f
 * \\uXXXX} with {@code \x} meaning {@code x}.
 * <p>
 * One deliberate difference: trailing whitespace of a value is trimmed ({@code Properties} keeps it, which turns
 * {@code smtp.max_recipients=100 } into an error nobody can see). Start-up only; allocates freely.
 */
final class PropertiesReader
{
    /**
     * One {@code key=value} pair and the line its logical line starts on (1-based).
     */
    record Entry(String key, String value, int line)
    {
    }

    private PropertiesReader()
    {
    }

    /**
     * @param text     the whole file.
     * @param source   name used in problem messages.
     * @param problems receives syntax problems (malformed escapes); the entry is still returned as far as read.
     * @return the entries in file order, duplicates included.
     */
    static List<Entry> read(final String text, final String source, final List<String> problems)
    {
        final List<Entry> entries = new ArrayList<>();
        final int length = text.length();
        int pos = 0;
        int lineNumber = 0;

        while (pos < length)
        {
            final int startLine = lineNumber + 1;
            final StringBuilder logical = new StringBuilder();
            boolean first = true;
            boolean comment = false;

            while (true)
            {
                int end = pos;
                while (end < length && text.charAt(end) != '\n' && text.charAt(end) != '\r')
                {
                    end++;
                }
                lineNumber++;
                int start = pos;
                while (start < end && isWhitespace(text.charAt(start)))
                {
                    start++;
                }
                pos = nextLineStart(text, end);

                if (first && start < end && (text.charAt(start) == '#' || text.charAt(start) == '!'))
                {
                    comment = true;
                    break;
                }
                first = false;

                int backslashes = 0;
                for (int i = end - 1; i >= start && text.charAt(i) == '\\'; i--)
                {
                    backslashes++;
                }
                if ((backslashes & 1) == 1)
                {
                    logical.append(text, start, end - 1);
                    if (pos < length)
                    {
                        continue;
                    }
                }
                else
                {
                    logical.append(text, start, end);
                }
                break;
            }

            if (!comment && logical.length() > 0)
            {
                final Entry entry = parseEntry(logical, startLine, source, problems);
                if (null != entry)
                {
                    entries.add(entry);
                }
            }
        }

        return entries;
    }

    private static Entry parseEntry(
        final CharSequence line, final int lineNumber, final String source, final List<String> problems)
    {
        final int length = line.length();
        int keyEnd = 0;
        while (keyEnd < length)
        {
            final char c = line.charAt(keyEnd);
            if (c == '\\')
            {
                keyEnd += 2;
                continue;
            }
            if (c == '=' || c == ':' || isWhitespace(c))
            {
                break;
            }
            keyEnd++;
        }
        keyEnd = Math.min(keyEnd, length);

        int valueStart = keyEnd;
        while (valueStart < length && isWhitespace(line.charAt(valueStart)))
        {
            valueStart++;
        }
        if (valueStart < length && (line.charAt(valueStart) == '=' || line.charAt(valueStart) == ':'))
        {
            valueStart++;
            while (valueStart < length && isWhitespace(line.charAt(valueStart)))
            {
                valueStart++;
            }
        }

        final String key = unescape(line.subSequence(0, keyEnd), lineNumber, source, problems);
        final String value = unescape(line.subSequence(valueStart, length), lineNumber, source, problems).strip();

        return new Entry(key, value, lineNumber);
    }

    private static String unescape(
        final CharSequence raw, final int lineNumber, final String source, final List<String> problems)
    {
        final StringBuilder out = new StringBuilder(raw.length());
        final int length = raw.length();
        for (int i = 0; i < length; i++)
        {
            final char c = raw.charAt(i);
            if (c != '\\' || i + 1 >= length)
            {
                out.append(c);
                continue;
            }

            final char next = raw.charAt(++i);
            switch (next)
            {
                case 't':
                    out.append('\t');
                    break;
                case 'n':
                    out.append('\n');
                    break;
                case 'r':
                    out.append('\r');
                    break;
                case 'f':
                    out.append('\f');
                    break;
                case 'u':
                    if (i + 4 < length && isHex(raw, i + 1, i + 5))
                    {
                        out.append((char)Integer.parseInt(raw.subSequence(i + 1, i + 5).toString(), 16));
                        i += 4;
                    }
                    else
                    {
                        problems.add(source + ":" + lineNumber + ": malformed \\uXXXX escape");
                    }
                    break;
                default:
                    out.append(next);
                    break;
            }
        }

        return out.toString();
    }

    private static boolean isHex(final CharSequence text, final int from, final int to)
    {
        for (int i = from; i < to; i++)
        {
            if (Character.digit(text.charAt(i), 16) < 0)
            {
                return false;
            }
        }

        return true;
    }

    private static int nextLineStart(final String text, final int end)
    {
        if (end < text.length() && text.charAt(end) == '\r')
        {
            return end + 1 < text.length() && text.charAt(end + 1) == '\n' ? end + 2 : end + 1;
        }

        return Math.min(end + 1, text.length() + 1);
    }

    private static boolean isWhitespace(final char c)
    {
        return c == ' ' || c == '\t' || c == '\f';
    }
}
