package dev.relay.smtp;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

import static dev.relay.smtp.ArgumentBytes.equalsIgnoreCase;

/**
 * The DSN extension's parameters (RFC 3461 §4): their values as kept in the envelope, and xtext (RFC 3461 §4),
 * the encoding ENVID and ORCPT travel in. Shared by the server (parsing), the spool (storing), the client (passing
 * them on to a next hop that offers DSN) and the queue manager (acting on them when the next hop does not).
 * <p>
 * ENVID and ORCPT are kept as they arrived, in xtext: validated once on input, passed on byte for byte, decoded only
 * for a DSN ({@link #decodeXtext}).
 * <p>
 * Stateless; any thread. The checks do not allocate; {@link #decodeXtext} and the text helpers do (DSN and log
 * paths only).
 */
public final class DsnParameters
{
    /** NOTIFY=SUCCESS (RFC 3461 §4.1). */
    public static final int NOTIFY_SUCCESS = 1;
    /** NOTIFY=FAILURE. */
    public static final int NOTIFY_FAILURE = 2;
    /** NOTIFY=DELAY. */
    public static final int NOTIFY_DELAY = 4;
    /** NOTIFY=NEVER: never combined with the others. */
    public static final int NOTIFY_NEVER = 8;
    /** The bits a NOTIFY mask may hold; 0 means NOTIFY was not given (RFC 3461 §4.1: then FAILURE and DELAY). */
    public static final int NOTIFY_MASK = 15;

    /** RET was not given: the relay chooses (RFC 3461 §4.3). */
    public static final int RET_NONE = 0;
    /** RET=FULL. */
    public static final int RET_FULL = 1;
    /** RET=HDRS. */
    public static final int RET_HDRS = 2;

    /** RFC 3461 §4.4: an ENVID of at most 100 characters. */
    public static final int MAX_ENVID_LENGTH = 100;
    /** RFC 3461 §4.2: an ORCPT value (addr-type ";" xtext) of at most 500 characters. */
    public static final int MAX_ORCPT_LENGTH = 500;

    /** The NOTIFY keywords (RFC 3461 §4.1), as {@link #parseNotify} matches them. */
    private static final byte[] SUCCESS = {'S', 'U', 'C', 'C', 'E', 'S', 'S'};
    private static final byte[] FAILURE = {'F', 'A', 'I', 'L', 'U', 'R', 'E'};
    private static final byte[] DELAY = {'D', 'E', 'L', 'A', 'Y'};
    private static final byte[] NEVER = {'N', 'E', 'V', 'E', 'R'};
    private static final byte[][] NOTIFY_PARAMETERS = new byte[NOTIFY_MASK + 1][];

    static
    {
        for (int mask = 1; mask <= NOTIFY_MASK; mask++)
        {
            NOTIFY_PARAMETERS[mask] = (" NOTIFY=" + notifyText(mask)).getBytes(StandardCharsets.US_ASCII);
        }
    }

    private DsnParameters()
    {
    }

    /**
     * Whether a failure of a recipient with this NOTIFY mask is reported to the sender: NOTIFY absent, or with
     * FAILURE (RFC 3461 §4.1; Postfix: a recipient whose NOTIFY lacks FAILURE gets no bounce).
     */
    public static boolean notifiesFailure(final int notify)
    {
        return notify == 0 || (notify & NOTIFY_FAILURE) != 0;
    }

    /** Whether a delay warning may go to the sender: NOTIFY absent (FAILURE,DELAY by default) or with DELAY. */
    public static boolean notifiesDelay(final int notify)
    {
        return notify == 0 || (notify & NOTIFY_DELAY) != 0;
    }

    /** Whether the sender asked to hear of success (NOTIFY with SUCCESS). */
    public static boolean notifiesSuccess(final int notify)
    {
        return (notify & NOTIFY_SUCCESS) != 0;
    }

    /** {@code " NOTIFY=SUCCESS,FAILURE"} etc. for a non-zero mask, ready to append to a RCPT command. */
    public static byte[] notifyParameter(final int notify)
    {
        return NOTIFY_PARAMETERS[notify & NOTIFY_MASK];
    }

    /** The NOTIFY value for a mask, e.g. {@code SUCCESS,DELAY}; empty for 0. */
    public static String notifyText(final int notify)
    {
        if ((notify & NOTIFY_NEVER) != 0)
        {
            return "NEVER";
        }
        final StringBuilder text = new StringBuilder();
        if ((notify & NOTIFY_SUCCESS) != 0)
        {
            text.append("SUCCESS");
        }
        if ((notify & NOTIFY_FAILURE) != 0)
        {
            text.append(text.length() > 0 ? "," : "").append("FAILURE");
        }
        if ((notify & NOTIFY_DELAY) != 0)
        {
            text.append(text.length() > 0 ? "," : "").append("DELAY");
        }
        return text.toString();
    }

    /** {@code FULL}, {@code HDRS}, or empty for {@link #RET_NONE}. */
    public static String retText(final int ret)
    {
        return ret == RET_FULL ? "FULL" : ret == RET_HDRS ? "HDRS" : "";
    }

    /**
     * Whether {@code buf[start, end)} is xtext (RFC 3461 §4): printable ASCII ("!" to "~") but "+" and "=", and
     * "+" followed by two upper-case hex digits.
     */
    public static boolean isXtext(final ByteBuffer buf, final int start, final int end)
    {
        int p = start;
        while (p < end)
        {
            final byte b = buf.get(p);
            if (b == '+')
            {
                if (p + 2 >= end || hexValue(buf.get(p + 1)) < 0 || hexValue(buf.get(p + 2)) < 0)
                {
                    return false;
                }
                p += 3;
                continue;
            }
            if (b < '!' || b > '~' || b == '=')
            {
                return false;
            }
            p++;
        }
        return true;
    }

    /**
     * Whether the xtext {@code buf[start, end)} (already checked with {@link #isXtext}) decodes to octets none of
     * which is a control character (below 0x20, or 0x7F), and, when {@code asciiOnly}, none above 0x7E.
     */
    public static boolean decodesPrintable(final ByteBuffer buf, final int start, final int end, final boolean asciiOnly)
    {
        int p = start;
        while (p < end)
        {
            int octet = buf.get(p) & 0xFF;
            if (octet == '+')
            {
                octet = hexValue(buf.get(p + 1)) << 4 | hexValue(buf.get(p + 2));
                p += 3;
            }
            else
            {
                p++;
            }
            if (octet < 0x20 || octet == 0x7F || (asciiOnly && octet > 0x7E))
            {
                return false;
            }
        }
        return true;
    }

    /** The octets xtext {@code encoded} stands for; an invalid "+" sequence is kept as it is. Allocates. */
    public static byte[] decodeXtext(final byte[] encoded)
    {
        final byte[] out = new byte[encoded.length];
        int length = 0;
        for (int p = 0; p < encoded.length; p++)
        {
            final byte b = encoded[p];
            if (b == '+' && p + 2 < encoded.length && hexValue(encoded[p + 1]) >= 0 && hexValue(encoded[p + 2]) >= 0)
            {
                out[length++] = (byte)(hexValue(encoded[p + 1]) << 4 | hexValue(encoded[p + 2]));
                p += 2;
            }
            else
            {
                out[length++] = b;
            }
        }
        return java.util.Arrays.copyOf(out, length);
    }

    /**
     * RFC 3461 §4.1: {@code "NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY")}, any case; NEVER stands alone.
     *
     * @return the {@code DsnParameters.NOTIFY_*} bits, or 0 when the value is malformed.
     */
    static int parseNotify(final ByteBuffer buf, final int start, final int end)
    {
        int mask = 0;
        int p = start;
        while (true)
        {
            int comma = p;
            while (comma < end && buf.get(comma) != ',')
            {
                comma++;
            }
            final int length = comma - p;
            final int bit;
            if (length == SUCCESS.length && equalsIgnoreCase(buf, p, SUCCESS))
            {
                bit = DsnParameters.NOTIFY_SUCCESS;
            }
            else if (length == FAILURE.length && equalsIgnoreCase(buf, p, FAILURE))
            {
                bit = DsnParameters.NOTIFY_FAILURE;
            }
            else if (length == DELAY.length && equalsIgnoreCase(buf, p, DELAY))
            {
                bit = DsnParameters.NOTIFY_DELAY;
            }
            else if (length == NEVER.length && equalsIgnoreCase(buf, p, NEVER))
            {
                bit = DsnParameters.NOTIFY_NEVER;
            }
            else
            {
                return 0;
            }
            mask |= bit;
            if (comma == end)
            {
                break;
            }
            p = comma + 1;
        }
        if ((mask & DsnParameters.NOTIFY_NEVER) != 0 && mask != DsnParameters.NOTIFY_NEVER)
        {
            return 0;
        }
        return mask;
    }

    /** Upper-case hex digit value, or -1 (RFC 3461 §4: hexchar uses upper case only). */
    private static int hexValue(final byte b)
    {
        if (b >= '0' && b <= '9')
        {
            return b - '0';
        }
        if (b >= 'A' && b <= 'F')
        {
            return b - 'A' + 10;
        }
        return -1;
    }
}
