package dev.relay.net;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * What a client over the {@link ConnectionLimiter}'s limits is told before it is closed, without a handler: the
 * 421 of each admission result, in Postfix's wording.
 * <p>
 * Constants; any thread; {@link #refuse} writes on the calling (loop) thread and allocates a wrapper per refusal.
 */
final class Refusals
{
    private static final byte[] TOO_MANY_CONNECTIONS =
        "421 4.7.0 Error: too many connections, try again later\r\n".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TOO_FAST_FROM_CLIENT =
        "421 4.7.0 Error: too many connections from your address per minute, try again later\r\n"
            .getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TOO_MANY_FROM_CLIENT =
        "421 4.7.0 Error: too many connections from your address\r\n".getBytes(StandardCharsets.US_ASCII);

    private Refusals()
    {
    }

    /** The reply to a {@link ConnectionLimiter} result other than {@link ConnectionLimiter#ACCEPTED}. */
    static byte[] reply(final int admission)
    {
        return admission == ConnectionLimiter.TOO_MANY_CONNECTIONS ? TOO_MANY_CONNECTIONS :
            admission == ConnectionLimiter.TOO_FAST_FROM_CLIENT ? TOO_FAST_FROM_CLIENT : TOO_MANY_FROM_CLIENT;
    }

    /** Writes {@code reply} to a connection that has no handler yet, as far as its socket takes it, and closes it. */
    static void refuse(final SocketChannel channel, final byte[] reply)
    {
        try
        {
            channel.write(ByteBuffer.wrap(reply));
        }
        catch (final IOException ignored)
        {
            // the client is gone already; nothing to tell it
        }
        SelectorLoop.closeQuietly(channel);
    }
}
