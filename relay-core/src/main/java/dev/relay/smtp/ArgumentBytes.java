package dev.relay.smtp;

import java.nio.ByteBuffer;

/**
 * The lexical pieces {@link MailArguments} and {@link DsnParameters} read command arguments with: the atext table
 * (RFC 5322 §3.2.3), character classes, case-insensitive keyword matches, decimals and well-formed UTF-8
 * (RFC 3629), all over byte ranges of the caller's buffer.
 * <p>
 * Stateless; any thread; does not allocate.
 */
final class ArgumentBytes
{
    /** RFC 5322 §3.2.3 atext, ASCII only. */
    static final boolean[] ATEXT = new boolean[128];

    static
    {
        for (int c = 'a'; c <= 'z'; c++)
        {
            ATEXT[c] = true;
            ATEXT[c - 32] = true;
        }
        for (int c = '0'; c <= '9'; c++)
        {
            ATEXT[c] = true;
        }
        for (final char c : "!#$%&'*+-/=?^_`{|}~".toCharArray())
        {
            ATEXT[c] = true;
        }
    }

    private ArgumentBytes()
    {
    }

    /** Non-negative decimal of {@code buf[start, end)}, or -1 if empty, not all digits, or over Long.MAX_VALUE. */
    static long parseDecimal(final ByteBuffer buf, final int start, final int end)
    {
        if (start >= end)
        {
            return -1;
        }
        long value = 0;
        for (int p = start; p < end; p++)
        {
            final byte b = buf.get(p);
            if (!isDigit(b))
            {
                return -1;
            }
            final int digit = b - '0';
            if (value > (Long.MAX_VALUE - digit) / 10)
            {
                return -1;
            }
            value = value * 10 + digit;
        }
        return value;
    }

    /** Well-formed UTF-8 (RFC 3629): no overlongs, no surrogates, at most U+10FFFF. */
    static boolean isUtf8(final ByteBuffer buf, final int start, final int end)
    {
        int p = start;
        while (p < end)
        {
            final int b = buf.get(p) & 0xFF;
            if (b < 0x80)
            {
                p++;
                continue;
            }
            final int trailing;
            int min = 0x80;
            int max = 0xBF;
            if (b >= 0xC2 && b <= 0xDF)
            {
                trailing = 1;
            }
            else if (b >= 0xE0 && b <= 0xEF)
            {
                trailing = 2;
                min = b == 0xE0 ? 0xA0 : 0x80;
                max = b == 0xED ? 0x9F : 0xBF;
            }
            else if (b >= 0xF0 && b <= 0xF4)
            {
                trailing = 3;
                min = b == 0xF0 ? 0x90 : 0x80;
                max = b == 0xF4 ? 0x8F : 0xBF;
            }
            else
            {
                return false;
            }
            if (p + trailing >= end)
            {
                return false;
            }
            for (int k = 1; k <= trailing; k++)
            {
                final int c = buf.get(p + k) & 0xFF;
                if (k == 1 ? (c < min || c > max) : (c < 0x80 || c > 0xBF))
                {
                    return false;
                }
            }
            p += trailing + 1;
        }
        return true;
    }

    static int skipSpaces(final ByteBuffer buf, final int start, final int end)
    {
        int p = start;
        while (p < end && buf.get(p) == ' ')
        {
            p++;
        }
        return p;
    }

    /** Compares {@code buf[start, start + upper.length)} with ASCII {@code upper}, ignoring case; caller checks bounds. */
    static boolean equalsIgnoreCase(final ByteBuffer buf, final int start, final byte[] upper)
    {
        for (int i = 0; i < upper.length; i++)
        {
            int b = buf.get(start + i);
            if (b >= 'a' && b <= 'z')
            {
                b -= 32;
            }
            if (b != upper[i])
            {
                return false;
            }
        }
        return true;
    }

    static boolean isDigit(final byte b)
    {
        return b >= '0' && b <= '9';
    }

    static boolean isHex(final byte b)
    {
        return isDigit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
    }

    static boolean isAlnum(final byte b)
    {
        return isDigit(b) || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z');
    }

}
