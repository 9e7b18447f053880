package dev.relay.net;

import java.nio.ByteBuffer;

/**
 * The protocol side of one connection, called only by the loop thread that owns it.
 * Implementations must not block and must not throw for any input: protocol errors become replies.
 * An exception escaping a callback is treated as a bug: counted, logged once, and the connection closed.
 */
public interface ConnectionHandler
{
    /** The connection was accepted: send the greeting. */
    void onOpen();

    /**
     * Input is available in {@code buffer[from, to)} (absolute indexes; do not change position or limit).
     *
     * @return the index up to which bytes were consumed; bytes after it stay buffered and are offered again, with
     * more appended, once more input arrives or input is resumed.
     */
    int onInput(ByteBuffer buffer, int from, int to);

    /**
     * A flush emptied the output buffer: everything written so far has been handed to the kernel and
     * {@link Connection#outputSpace()} is the whole buffer again. A handler streaming more than one buffer's worth
     * (a message body, on the client side) writes the next part now; what it writes leaves in the next pass.
     * Called once per flush that empties a non-empty buffer, never while the connection is closing, and never
     * otherwise: a handler waiting for room needs no other wake-up.
     */
    default void onOutputDrained()
    {
    }

    /** An outbound connection could not be established ({@link #onClose()} follows). */
    default void onConnectFailed(final String reason)
    {
    }

    /**
     * The TLS handshake started by {@link Connection#startTls} is done: input from now on is the decrypted stream,
     * and output held back during the handshake leaves encrypted.
     */
    default void onTlsEstablished()
    {
    }

    /**
     * TLS failed: the handshake ran out of time or was refused (an alert, a peer that does not speak TLS, plaintext
     * pipelined after STARTTLS read as a record), or a record was broken later. The connection is closed at once
     * and {@link #onClose()} follows; nothing more can be written. {@code reason} is for the log.
     */
    default void onTlsFailed(final String reason)
    {
    }

    /** No input within the idle timeout now in force. */
    void onTimeout();

    /** The server is shutting down: finish what is in flight, refuse new work with 421. */
    void onDrain();

    /** The connection is closed (by either side); release what the handler holds. Called once. */
    void onClose();
}
