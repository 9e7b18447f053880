package dev.relay.net;

import java.nio.ByteBuffer;

/**
 * Copies bytes straight into a connection's output buffer ({@link Connection#write(OutputFiller, int)}): the
 * client session streams a message body from the spool's mapped file into the direct buffer the socket is
 * written from, with no array in between. Called on the connection's loop thread, from inside that call only.
 */
@FunctionalInterface
public interface OutputFiller
{
    /**
     * Copies bytes into {@code dst} from its position up to its limit, advancing the position; must not change
     * the limit or read what is before the position.
     *
     * @return bytes copied, or -1 when the source has ended (nothing copied).
     */
    int fill(ByteBuffer dst);
}
