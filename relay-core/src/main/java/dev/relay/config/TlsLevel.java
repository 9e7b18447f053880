package dev.relay.config;

import java.util.Locale;

/**
 * How much TLS delivery insists on for a next hop ({@code delivery.tls}, per domain {@code delivery.tls.policy}):
 * Postfix's {@code smtp_tls_security_level} with the same names and meanings.
 */
public enum TlsLevel
{
    /** Plaintext always: STARTTLS is never sent. */
    NONE,

    /**
     * Opportunistic (RFC 3207 as most of the Internet uses it): STARTTLS when the peer offers it, no certificate
     * check; a failed handshake falls back to plaintext for a while, and a peer without STARTTLS gets plaintext.
     */
    MAY,

    /** TLS or nothing: a peer without STARTTLS, or whose handshake fails, defers the mail (4.7.x). No check. */
    ENCRYPT,

    /**
     * As {@link #ENCRYPT}, and the certificate chain must lead to a trusted CA ({@code delivery.tls.ca_file} or
     * the JDK's trust store) and name the next hop: the MX host, or the route's host as written.
     */
    VERIFY;

    /** Whether mail must wait rather than go without TLS. */
    public boolean requiresTls()
    {
        return this == ENCRYPT || this == VERIFY;
    }

    /** The name as written in the configuration ({@code may}). */
    public String text()
    {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * @param text a level as written: {@code none}, {@code may}, {@code encrypt} or {@code verify}.
     * @throws IllegalArgumentException for anything else.
     */
    public static TlsLevel parse(final String text)
    {
        for (final TlsLevel level : values())
        {
            if (level.text().equals(text))
            {
                return level;
            }
        }
        throw new IllegalArgumentException("is not one of none, may, encrypt, verify");
    }
}
