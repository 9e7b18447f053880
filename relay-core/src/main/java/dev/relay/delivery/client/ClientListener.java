package dev.relay.delivery.client;

/**
 * Where a {@link SmtpClientSession} reports: implemented by delivery (the hop's connection pool). Called on the
 * connection's loop thread, from inside the session's callbacks; a listener may call {@link
 * SmtpClientSession#send} or {@link SmtpClientSession#quit()} from {@link #onReady} and {@link #onTransactionDone}.
 */
public interface ClientListener
{
    /** Greeting and EHLO/HELO done: the session is idle and takes {@link SmtpClientSession#send}. Called once. */
    void onReady(SmtpClientSession session);

    /**
     * STARTTLS's handshake finished ({@link SmtpClientSession#tlsProtocol()} and the rest are known); the session
     * says EHLO again next. For logs and metrics.
     */
    default void onTlsEstablished(final SmtpClientSession session)
    {
    }

    /** The transaction for {@code message} ended; every recipient has a result. The session may be idle again. */
    void onTransactionDone(SmtpClientSession session, OutboundMessage message, TransactionResult result);

    /** The session ended (quit, timeout, peer 421, protocol error, lost connection); no more calls follow. Once. */
    void onClosed(SmtpClientSession session, String reason);
}
