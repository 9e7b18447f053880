package dev.relay.smtp;

import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * The domain of a mail address, as both sides of SMTP need it: the server to decide whether it may relay to a
 * recipient ({@code relay.domains}), delivery to route it. Written once so the two can never disagree about which
 * domain an address is for. Addresses are the bytes between the angle brackets (RFC 5321 §4.1.2), ASCII or UTF-8.
 * <p>
 * Stateless; any thread; allocates the returned string.
 */
public final class MailAddresses
{
    private MailAddresses()
    {
    }

    /** The domain part of {@code address} (after its last '@'), lower case, without a trailing dot; "" when none. */
    public static String domainOf(final byte[] address)
    {
        for (int i = address.length - 1; i >= 0; i--)
        {
            if (address[i] == '@')
            {
                return domain(address, i + 1, address.length);
            }
        }
        return "";
    }

    /** {@code bytes[from, to)} as a domain: lower case (ASCII and UTF-8 alike), without a trailing dot. */
    public static String domain(final byte[] bytes, final int from, final int to)
    {
        final String domain = new String(bytes, from, to - from, StandardCharsets.UTF_8).toLowerCase(Locale.ROOT);
        return domain.endsWith(".") ? domain.substring(0, domain.length() - 1) : domain;
    }
}
