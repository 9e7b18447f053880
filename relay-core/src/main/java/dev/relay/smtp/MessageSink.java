package dev.relay.smtp;

import java.nio.ByteBuffer;

/**
 * Where a message received by an {@link SmtpSession} goes: the smtp stage defines it, the spool implements it.
 * <p>
 * All methods are called on the loop thread that owns the session, in this order per transaction:
 * {@code begin}, any number of {@code append}, then exactly one of {@code complete} or {@code abort}.
 * The body bytes handed to {@code append} are in wire form (dot-stuffed, CRLF line ends, without the
 * terminating {@code .CRLF}) for DATA, and raw for BDAT ({@link InboundMessage#isBdat()}).
 * Implementations copy the bytes before returning: the buffer is reused for the next read.
 */
public interface MessageSink
{
    /**
     * Opens a transaction for {@code message} (envelope complete, body about to follow).
     *
     * @return false when the spool cannot take mail now (disk full, append failed): the session answers 452 4.3.1.
     */
    boolean begin(InboundMessage message);

    /**
     * Appends {@code buffer[from, to)} to the body of an open transaction.
     *
     * @return false when the append failed; the session then aborts and answers 452 4.3.1 at the end of data.
     */
    boolean append(InboundMessage message, ByteBuffer buffer, int from, int to);

    /**
     * Marks the message complete and deliverable. {@code listener} is called exactly once, later, on the same
     * loop thread, after the message is durable according to {@code queue.sync}; never from inside this call
     * unless the sync mode is {@code none}.
     *
     * @return false when the final record could not be written: no callback follows and the session answers 452.
     */
    boolean complete(InboundMessage message, CommitListener listener);

    /** Drops an open transaction: what was appended stays unreferenced and is never delivered. */
    void abort(InboundMessage message);

    /** Called when a completed message became durable (or failed to). */
    interface CommitListener
    {
        void onCommitted(InboundMessage message, boolean durable);
    }
}
