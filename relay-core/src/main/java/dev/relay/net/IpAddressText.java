package dev.relay.net;

import java.util.Arrays;

/**
 * IP addresses and ports as text, parsed from bytes without allocating: what the PROXY v1 line carries
 * ({@link ProxyHeaderParser}). Pure static functions; any thread.
 */
final class IpAddressText
{
    private IpAddressText()
    {
    }

    /** Dotted decimal: four parts of 0..255, no leading zeros (octal would read them otherwise), into out[at..+4). */
    static boolean parseIpv4(final byte[] s, final int from, final int to, final byte[] out, final int at)
    {
        int part = 0;
        int value = 0;
        int digits = 0;
        for (int i = from; i < to; i++)
        {
            final byte c = s[i];
            if (c >= '0' && c <= '9')
            {
                if (digits > 0 && value == 0)
                {
                    return false;
                }
                value = value * 10 + (c - '0');
                if (value > 255)
                {
                    return false;
                }
                digits++;
            }
            else if (c == '.' && digits > 0 && part < 3)
            {
                out[at + part++] = (byte)value;
                value = 0;
                digits = 0;
            }
            else
            {
                return false;
            }
        }
        if (digits == 0 || part != 3)
        {
            return false;
        }
        out[at + 3] = (byte)value;
        return true;
    }

    /**
     * IPv6 text (RFC 4291 §2.2): eight groups of 1-4 hex digits, one {@code ::} for a run of zero groups, the last
     * 32 bits possibly in dotted decimal; no zone, no brackets. The shape of BIND's {@code inet_pton6}.
     */
    static boolean parseIpv6(final byte[] s, final int from, final int to, final byte[] out)
    {
        Arrays.fill(out, 0, 16, (byte)0);
        int i = from;
        if (i < to && s[i] == ':')
        {
            if (i + 1 >= to || s[i + 1] != ':')
            {
                return false;
            }
            i++;
        }
        int filled = 0;
        int gap = -1;
        int groupStart = i;
        boolean sawDigit = false;
        int value = 0;
        int digits = 0;
        while (i < to)
        {
            final byte c = s[i++];
            final int hex = hexValue(c);
            if (hex >= 0)
            {
                if (++digits > 4)
                {
                    return false;
                }
                value = value << 4 | hex;
                sawDigit = true;
                continue;
            }
            if (c == ':')
            {
                groupStart = i;
                if (!sawDigit)
                {
                    if (gap >= 0)
                    {
                        return false;
                    }
                    gap = filled;
                    continue;
                }
                if (i == to || filled + 2 > 16)
                {
                    return false;
                }
                out[filled++] = (byte)(value >> 8);
                out[filled++] = (byte)value;
                sawDigit = false;
                value = 0;
                digits = 0;
                continue;
            }
            if (c == '.' && filled + 4 <= 16 && parseIpv4(s, groupStart, to, out, filled))
            {
                filled += 4;
                sawDigit = false;
                break;
            }
            return false;
        }
        if (sawDigit)
        {
            if (filled + 2 > 16)
            {
                return false;
            }
            out[filled++] = (byte)(value >> 8);
            out[filled++] = (byte)value;
        }
        if (gap >= 0)
        {
            if (filled == 16)
            {
                return false;
            }
            final int moved = filled - gap;
            for (int j = 1; j <= moved; j++)
            {
                out[16 - j] = out[gap + moved - j];
                out[gap + moved - j] = 0;
            }
            filled = 16;
        }
        return filled == 16;
    }

    private static int hexValue(final byte c)
    {
        if (c >= '0' && c <= '9')
        {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f')
        {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F')
        {
            return c - 'A' + 10;
        }
        return -1;
    }

    /** A decimal port 0..65535 of 1-5 digits in {@code s[from, to)}, or -1. */
    static int parsePort(final byte[] s, final int from, final int to)
    {
        if (to <= from || to - from > 5)
        {
            return -1;
        }
        int value = 0;
        for (int i = from; i < to; i++)
        {
            final byte c = s[i];
            if (c < '0' || c > '9')
            {
                return -1;
            }
            value = value * 10 + (c - '0');
        }
        return value <= 65535 ? value : -1;
    }
}
