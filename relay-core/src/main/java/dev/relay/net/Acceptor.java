package dev.relay.net;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;

/**
 * The listening sockets of one {@link SelectorLoop}: registers them on the loop's selector, accepts up to
 * {@link #ACCEPTS_PER_PASS} connections per ready listener and hands each to the loop (which admits or refuses it),
 * stops accepting for {@link #ACCEPT_BACKOFF_MS} when accept fails (EMFILE, ENFILE) instead of spinning on a ready
 * listener, and closes them at drain and at the end.
 * <p>
 * Loop thread only (built in the loop's constructor); allocates only what accept returns.
 */
final class Acceptor
{
    /** The loop's logger: its accept failures are logged where they always were. */
    private static final Logger LOG = LoggerFactory.getLogger(SelectorLoop.class);
    private static final int ACCEPTS_PER_PASS = 64;
    private static final long ACCEPT_BACKOFF_MS = 250;

    private final SelectorLoop loop;
    private final List<ServerSocketChannel> listeners;
    private final List<SelectionKey> listenerKeys = new ArrayList<>();
    private long acceptPausedUntilMs;

    /**
     * @param listenerTags for each listener, the tag its connections carry ({@link Connection#listenerTag()}).
     */
    Acceptor(
        final SelectorLoop loop,
        final Selector selector,
        final List<ServerSocketChannel> listeners,
        final int[] listenerTags) throws IOException
    {
        this.loop = loop;
        this.listeners = listeners;
        for (int i = 0; i < listeners.size(); i++)
        {
            final ServerSocketChannel listener = listeners.get(i);
            listener.configureBlocking(false);
            listenerKeys.add(listener.register(selector, SelectionKey.OP_ACCEPT, new Listening(listener,
                listenerTags[i])));
        }
    }

    /** A listener and the tag of its connections (the key's attachment). */
    static final class Listening
    {
        final ServerSocketChannel channel;
        final int tag;

        Listening(final ServerSocketChannel channel, final int tag)
        {
            this.channel = channel;
            this.tag = tag;
        }
    }

    void acceptFrom(final Listening listener, final long nowMs)
    {
        for (int i = 0; i < ACCEPTS_PER_PASS; i++)
        {
            final SocketChannel channel;
            try
            {
                channel = listener.channel.accept();
            }
            catch (final IOException ex)
            {
                // EMFILE/ENFILE and friends: stop accepting for a while instead of spinning on a ready listener.
                LOG.warn("accept failed on loop {}: {}; pausing accepts for {} ms", loop.index(), ex.getMessage(),
                    ACCEPT_BACKOFF_MS);
                pause(nowMs);
                return;
            }
            if (channel == null)
            {
                return;
            }
            loop.accept(channel, listener.tag);
        }
    }

    private void pause(final long nowMs)
    {
        acceptPausedUntilMs = nowMs + ACCEPT_BACKOFF_MS;
        for (final SelectionKey key : listenerKeys)
        {
            if (key.isValid())
            {
                key.interestOps(0);
            }
        }
    }

    /** Accepting again once the back-off has passed, unless the loop is draining. */
    void resumeIfDue(final long nowMs, final boolean draining)
    {
        if (acceptPausedUntilMs != 0 && nowMs >= acceptPausedUntilMs && !draining)
        {
            acceptPausedUntilMs = 0;
            for (final SelectionKey key : listenerKeys)
            {
                if (key.isValid())
                {
                    key.interestOps(SelectionKey.OP_ACCEPT);
                }
            }
        }
    }

    /** Stops listening for good (drain, or the loop ending): the keys are cancelled and the sockets closed. */
    void close()
    {
        for (final SelectionKey key : listenerKeys)
        {
            key.cancel();
        }
        for (final ServerSocketChannel listener : listeners)
        {
            SelectorLoop.closeQuietly(listener);
        }
    }
}
