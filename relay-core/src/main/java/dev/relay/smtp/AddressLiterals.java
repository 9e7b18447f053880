package dev.relay.smtp;

import java.nio.ByteBuffer;

import static dev.relay.smtp.ArgumentBytes.isDigit;
import static dev.relay.smtp.ArgumentBytes.isHex;

/**
 * The address literals of a domain in a path (RFC 5321 §4.1.3): an IPv4 dotted quad and the IPv6 forms, checked
 * over a byte range of the caller's buffer for {@link MailArguments}.
 * <p>
 * Stateless; any thread; does not allocate.
 */
final class AddressLiterals
{
    private AddressLiterals()
    {
    }

    /** RFC 5321 IPv4-address-literal: Snum 3("." Snum), Snum 0-255. */
    static boolean isIpv4(final ByteBuffer buf, final int start, final int end)
    {
        int p = start;
        for (int part = 0; part < 4; part++)
        {
            if (part > 0)
            {
                if (p >= end || buf.get(p) != '.')
                {
                    return false;
                }
                p++;
            }
            int value = 0;
            final int digitsStart = p;
            while (p < end && isDigit(buf.get(p)) && p - digitsStart < 3)
            {
                value = value * 10 + (buf.get(p) - '0');
                p++;
            }
            if (p == digitsStart || value > 255 || (p < end && isDigit(buf.get(p))))
            {
                return false;
            }
        }
        return p == end;
    }

    /** RFC 5321 IPv6-addr: full, compressed ("::" for at least two groups, at most 6 others), with IPv4 tail. */
    static boolean isIpv6(final ByteBuffer buf, final int start, final int end)
    {
        int p = start;
        int groups = 0;
        boolean compressed = false;
        if (p + 1 < end && buf.get(p) == ':' && buf.get(p + 1) == ':')
        {
            compressed = true;
            p += 2;
        }
        while (p < end)
        {
            int q = p;
            while (q < end && isHex(buf.get(q)) && q - p < 5)
            {
                q++;
            }
            if (q < end && buf.get(q) == '.')
            {
                if (!isIpv4(buf, p, end))
                {
                    return false;
                }
                groups += 2;
                p = end;
                break;
            }
            if (q == p || q - p > 4)
            {
                return false;
            }
            groups++;
            p = q;
            if (p == end)
            {
                break;
            }
            if (buf.get(p) != ':' || ++p == end)
            {
                return false;
            }
            if (buf.get(p) == ':')
            {
                if (compressed)
                {
                    return false;
                }
                compressed = true;
                p++;
            }
        }
        return compressed ? groups <= 6 : groups == 8;
    }

}
