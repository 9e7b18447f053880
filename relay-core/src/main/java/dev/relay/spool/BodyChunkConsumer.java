package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;

/**
 * Receives the body of a spooled message one chunk at a time, straight from the mapped queue file.
 * <p>
 * Called on the thread that called {@link SpoolReader#readBody}; {@code bytes} is only valid during the call
 * (the next chunk may live in another mapping), so copy or write it out before returning. No allocation.
 */
@FunctionalInterface
public interface BodyChunkConsumer
{
    /**
     * @param bytes  the queue's bytes; the chunk is {@code [offset, offset + length)} in absolute positions.
     * @param offset absolute position of the chunk's first byte in {@code bytes}.
     * @param length chunk length in bytes.
     */
    void onChunk(Bytes<?> bytes, long offset, int length);
}
