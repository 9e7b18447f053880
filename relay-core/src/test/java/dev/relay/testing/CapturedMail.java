package dev.relay.testing;

import java.nio.charset.StandardCharsets;

/**
 * One message as an external receiver kept it ({@link FileReceiver}): the envelope sender, the file it was found in,
 * and the message octets without what the receiver added of its own (its trace header, its dump headers). The
 * relay's own {@code Received:} header is still there.
 */
public record CapturedMail(String mailFrom, String file, byte[] data)
{
    /**
     * The offset just past the header field at {@code from} that is named {@code name} (its first line and the
     * continuation lines that start with a space or tab, RFC 5322 §2.2.3), or -1 when the field there has another
     * name. Lines end with LF (CR before it, if any, is part of the line).
     */
    public static int skipField(final byte[] data, final int from, final String name)
    {
        final byte[] prefix = (name + ":").getBytes(StandardCharsets.US_ASCII);
        if (data.length - from < prefix.length)
        {
            return -1;
        }
        for (int i = 0; i < prefix.length; i++)
        {
            if (Character.toLowerCase(data[from + i]) != Character.toLowerCase(prefix[i]))
            {
                return -1;
            }
        }
        int at = from;
        do
        {
            while (at < data.length && data[at] != '\n')
            {
                at++;
            }
            if (at == data.length)
            {
                return -1;
            }
            at++;
        }
        while (at < data.length && (data[at] == ' ' || data[at] == '\t'));
        return at;
    }
}

