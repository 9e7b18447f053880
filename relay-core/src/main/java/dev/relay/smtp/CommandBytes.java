package dev.relay.smtp;

import java.nio.ByteBuffer;

/**
 * Bytes of a command line still in the connection's read buffer, as {@link SmtpSession} takes them apart: the first
 * token, a copy of the part the envelope keeps, a domain. Copies are made only of what outlives the read buffer.
 * <p>
 * Stateless; called on the session's loop thread; {@link #copy} and {@link #lowerCaseAscii} allocate what they return.
 */
final class CommandBytes
{
    private CommandBytes()
    {
    }

    static int firstTokenEnd(final ByteBuffer buffer, final int start, final int end)
    {
        for (int i = start; i < end; i++)
        {
            final byte b = buffer.get(i);
            if (b == ' ' || b == '\t')
            {
                return i;
            }
        }
        return end;
    }

    static byte[] copy(final ByteBuffer buffer, final int start, final int end)
    {
        final byte[] bytes = new byte[Math.max(0, end - start)];
        for (int i = 0; i < bytes.length; i++)
        {
            bytes[i] = buffer.get(start + i);
        }
        return bytes;
    }

    static String lowerCaseAscii(final ByteBuffer buffer, final int start, final int end)
    {
        final byte[] bytes = copy(buffer, start, end);
        return MailAddresses.domain(bytes, 0, bytes.length);
    }

    static int indexOf(final byte[] bytes, final int value, final int from)
    {
        for (int i = from; i < bytes.length; i++)
        {
            if (bytes[i] == value)
            {
                return i;
            }
        }
        return -1;
    }

}
