package dev.relay.smtp;

/**
 * What sessions report, for logs and metrics; called on the session's loop thread, so implementations must not
 * block (log asynchronously, count in single-writer structures).
 */
public interface SessionEvents
{
    /** A message got its 250; {@code acceptLatencyNs} runs from the end of data to the 250 being queued. */
    void onMessageAccepted(InboundMessage message, String client, long acceptLatencyNs);

    /** A message was refused after its data (size, content, loop, storage). */
    void onMessageRejected(InboundMessage message, String client, String reason);

    /**
     * A connection ended; {@code summary} is Postfix-style command counts ("ehlo=1 mail=1 ... commands=5"), {@code tls}
     * whether TLS was established on it.
     */
    void onDisconnect(String client, String summary, boolean timedOut, boolean tls);

    /** TLS is up: {@code protocol} and {@code cipher} as negotiated. */
    default void onTlsEstablished(final String client, final String protocol, final String cipher)
    {
    }

    /** A TLS handshake failed or TLS broke later (the connection closes). */
    default void onTlsFailed(final String client, final String reason)
    {
    }

    /** AUTH succeeded. */
    default void onAuthenticated(final String client, final String mechanism, final String user)
    {
    }

    /** AUTH failed ({@code user} as the client gave it, may be empty); {@code reason} says how. */
    default void onAuthFailed(final String client, final String mechanism, final String user, final String reason)
    {
    }

    SessionEvents NONE = new SessionEvents()
    {
        @Override
        public void onMessageAccepted(final InboundMessage message, final String client, final long acceptLatencyNs)
        {
        }

        @Override
        public void onMessageRejected(final InboundMessage message, final String client, final String reason)
        {
        }

        @Override
        public void onDisconnect(final String client, final String summary, final boolean timedOut,
            final boolean tls)
        {
        }
    };
}
