package dev.relay.smtp;

import java.net.InetAddress;

/**
 * How a client's address and its own words (an AUTH user name) are written into log lines: an address as text once
 * per connection, a user name with control characters replaced so that it cannot forge a line.
 * <p>
 * Stateless; any thread; allocates the returned string.
 */
final class LogText
{
    private LogText()
    {
    }

    /** A user name as the client gave it, fit for a log line: control characters (a forged line) become '?'. */
    static String printable(final String user)
    {
        final StringBuilder text = new StringBuilder(Math.min(user.length(), 256));
        for (int i = 0; i < user.length() && i < 256; i++)
        {
            final char c = user.charAt(i);
            text.append(c < 0x20 || c == 0x7f ? '?' : c);
        }
        return text.toString();
    }

    static String ipText(final byte[] address)
    {
        try
        {
            return InetAddress.getByAddress(address).getHostAddress();
        }
        catch (final java.net.UnknownHostException ex)
        {
            return "unknown";
        }
    }

}
