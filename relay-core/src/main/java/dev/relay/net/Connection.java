package dev.relay.net;

import javax.net.ssl.SSLEngine;
import java.net.InetSocketAddress;

/**
 * One accepted client connection as its {@link ConnectionHandler} sees it: an output buffer, input flow control
 * and a timeout. Implemented by the loop that owns the socket; every method must be called on that loop's thread.
 * <p>
 * Output is buffered and written once at the end of the loop pass (pipelined replies leave in one {@code write});
 * the buffer is bounded, so a handler checks {@link #outputSpace()} before producing a reply and stops consuming
 * input when it is short (the loop then stops reading from a client that does not read its replies).
 * <p>
 * Over TLS ({@link #startTls}) the contract is the same: input offered is plaintext, output written is plaintext
 * (encrypted on the way out), and output space, drained notices, pauses and timeouts mean what they mean without
 * TLS; the handshake is the connection's business ({@link ConnectionHandler#onTlsEstablished()},
 * {@link ConnectionHandler#onTlsFailed(String)}).
 */
public interface Connection
{
    /**
     * The client's address: the peer's, or on a listener with the PROXY protocol the client its header named (the
     * peer itself for a LOCAL or UNKNOWN header). Fixed before the handler is made.
     */
    InetSocketAddress remoteAddress();

    /** The client's IP address ({@link #remoteAddress()}), 4 or 16 bytes in network order; the same array each call. */
    byte[] remoteAddressBytes();

    /** Bytes that can still be written without blocking; a handler replies only when this is at least its reply size. */
    int outputSpace();

    /**
     * Appends {@code bytes[offset, offset + length)} to the output. The caller has checked {@link #outputSpace()}.
     * Ignored once the connection is closed.
     *
     * @throws IllegalStateException when there is no room (a bug in the handler), so also after
     *                               {@link #closeAfterFlush()} or {@link #closeNow()}.
     */
    void write(byte[] bytes, int offset, int length);

    default void write(final byte[] bytes)
    {
        write(bytes, 0, bytes.length);
    }

    /**
     * Lets {@code filler} copy at most {@code maxLength} bytes (and at most {@link #outputSpace()}) straight into
     * the output buffer: one copy from where the bytes live, no intermediate array.
     *
     * @return what the filler returned: the bytes it added, or -1 when its source has ended; 0 without calling it
     * when there is no room (or the connection is closing).
     */
    int write(OutputFiller filler, int maxLength);

    /** Stops delivering input to the handler (and reading from the socket) until {@link #resumeInput()}. */
    void pauseInput();

    /** Stops input for {@code delayMs}, then resumes it (a tarpit for misbehaving clients). */
    default void pauseInputFor(final long delayMs)
    {
    }

    /** Delivers buffered input again, later in this loop pass, and resumes reading from the socket. */
    void resumeInput();

    /**
     * Writes what is buffered, then closes ({@link ConnectionHandler#onClose()} follows once it is closed). No more
     * input is delivered and {@link #outputSpace()} is 0 from now on. A peer that does not read gets a short grace
     * period, not its idle timeout.
     */
    void closeAfterFlush();

    /**
     * Discards output not yet written and closes at the end of this loop pass: for a session that cannot go on
     * (the peer answered in the middle of a message body, a transfer took too long) and must not wait for a peer
     * that may never read again. {@link ConnectionHandler#onClose()} follows at the end of the pass, never from
     * inside this call.
     */
    void closeNow();

    /**
     * Sets the idle timeout now in force and restarts it: {@link ConnectionHandler#onTimeout()} follows when that
     * long passes without input or output progress. Positive, and one of a few configured values (a loop keeps one
     * deadline list per distinct value and refuses more than 16 with an {@link IllegalStateException}).
     */
    void idleTimeoutMs(long timeoutMs);

    /** The loop's clock, read once per pass (epoch milliseconds). */
    long nowMs();

    /** Index of the loop that owns this connection (0-based). */
    int loopIndex();

    /**
     * The tag of the listener that accepted this connection (given with its address to {@link InboundServer}), so
     * one loop can serve listeners with different rules (SMTP, submission, implicit-TLS submission); 0 for an
     * outbound connection or a loop whose listeners carry none.
     */
    default int listenerTag()
    {
        return 0;
    }

    /**
     * Starts TLS with {@code engine} (server or client mode already set): RFC 3207 STARTTLS after its 220, RFC 8314
     * implicit TLS at once in {@code onOpen}. What was written before this call still leaves in plaintext (the
     * 220); everything written after it leaves encrypted, once the handshake is done. Input the handler has not
     * consumed when it calls this, and any read before the handshake, is never offered as plaintext: bytes
     * pipelined after STARTTLS are discarded (CVE-2011-0411). The handshake must finish within
     * {@code handshakeTimeoutMs} in all (reads do not extend it), else {@link ConnectionHandler#onTlsFailed} then
     * {@link ConnectionHandler#onClose()} follow; once it finishes, {@link ConnectionHandler#onTlsEstablished()}
     * is called and the idle timeout in force starts again.
     *
     * @throws IllegalStateException when TLS was started already, or this loop's read buffers are smaller than a
     *                               TLS record's plaintext (16 KiB and a little).
     */
    default void startTls(final SSLEngine engine, final long handshakeTimeoutMs)
    {
        throw new UnsupportedOperationException("TLS is not supported by " + getClass().getSimpleName());
    }

    /** Whether {@link #startTls} was called (the handshake may still be running). */
    default boolean isTls()
    {
        return false;
    }

    /** The negotiated protocol ({@code TLSv1.3}) once the handshake is done; null before and without TLS. */
    default String tlsProtocol()
    {
        return null;
    }

    /** The negotiated cipher suite ({@code TLS_AES_256_GCM_SHA384}) once the handshake is done; null otherwise. */
    default String tlsCipher()
    {
        return null;
    }
}
