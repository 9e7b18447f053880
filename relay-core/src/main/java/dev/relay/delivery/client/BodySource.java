package dev.relay.delivery.client;

import java.nio.ByteBuffer;

/**
 * The stored body of one outbound message, read once from start to end while it is written to the next hop.
 * Implemented by the spool (straight from its mapped files); called on the client connection's loop thread only and
 * must not block or allocate per call.
 */
public interface BodySource
{
    /**
     * Copies the next body bytes into {@code dst}, at most {@code dst.remaining()}, advancing its position.
     *
     * @return the number of bytes copied (0 only when {@code dst} has no room), or -1 once the body has ended.
     */
    int read(ByteBuffer dst);

    /** The client is done with the body (sent or abandoned); release what backs it. Called once. */
    default void close()
    {
    }
}
