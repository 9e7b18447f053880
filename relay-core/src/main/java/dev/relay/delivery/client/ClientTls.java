package dev.relay.delivery.client;

import dev.relay.config.TlsLevel;

/**
 * The TLS one client session asks for: the level its next hop is delivered at, the name the certificate must carry
 * under {@link TlsLevel#VERIFY} (the MX host, or the route's host as written) and the port, and where its engine
 * comes from. Immutable; made per connection by the hop's pool.
 *
 * @param context null only with {@link TlsLevel#NONE}.
 */
public record ClientTls(TlsLevel level, ClientTlsContext context, String peerName, int port)
{
    /** Plaintext: STARTTLS is never sent. */
    public static final ClientTls NONE = new ClientTls(TlsLevel.NONE, null, null, 0);

    public ClientTls
    {
        if (level != TlsLevel.NONE && context == null)
        {
            throw new IllegalArgumentException("TLS level " + level.text() + " without a TLS context");
        }
    }
}
