package dev.relay.bench.e2e;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * TLS on one non-blocking connection of the bench tools, after STARTTLS (RFC 3207 §4): drives an {@link SSLEngine}
 * over a {@link SocketChannel}. Plaintext goes in through {@link #write} (wrapped into records, several per socket
 * write) and comes out of {@link #read} (unwrapped into the caller's buffer). Delegated tasks run inline: a bench
 * tool's loop may block on a key exchange, the relay's may not.
 *
 * <p>Owned by the selector thread of its connection ({@link ClientLoop} or {@link BenchSink}); no other thread calls
 * it. Allocates its two wire buffers once, at STARTTLS.
 */
final class TlsTransport
{
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);
    /** Records wrapped ahead of one socket write: fewer syscalls for big bodies. */
    private static final int RECORDS_PER_WRITE = 4;

    private final SSLEngine engine;
    private final ByteBuffer netIn;
    private final ByteBuffer netOut;
    private final int packetSize;
    private boolean established;
    private boolean peerClosed;

    TlsTransport(final SSLEngine engine) throws SSLException
    {
        this.engine = engine;
        packetSize = engine.getSession().getPacketBufferSize();
        netIn = ByteBuffer.allocate(packetSize * RECORDS_PER_WRITE);
        netOut = ByteBuffer.allocateDirect(packetSize * RECORDS_PER_WRITE);
        netOut.flip();
        engine.beginHandshake();
    }

    boolean established()
    {
        return established;
    }

    /** Ciphertext is waiting for the socket: the caller keeps OP_WRITE. */
    boolean wantsWrite()
    {
        return netOut.hasRemaining();
    }

    /**
     * Drives the handshake as far as it goes without waiting for the peer; true once it is done (then plaintext
     * flows). Application data the peer sends along is unwrapped into {@code app}.
     */
    boolean handshake(final SocketChannel channel, final ByteBuffer app) throws IOException
    {
        while (true)
        {
            if (!flushNet(channel))
            {
                return false;
            }
            switch (engine.getHandshakeStatus())
            {
                case NEED_WRAP ->
                {
                    netOut.clear();
                    final SSLEngineResult r = engine.wrap(EMPTY, netOut);
                    netOut.flip();
                    if (r.getStatus() == SSLEngineResult.Status.CLOSED)
                    {
                        throw new SSLException("TLS closed during the handshake");
                    }
                }
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN ->
                {
                    netIn.flip();
                    final SSLEngineResult r = engine.unwrap(netIn, app);
                    netIn.compact();
                    if (r.getStatus() == SSLEngineResult.Status.CLOSED)
                    {
                        throw new SSLException("TLS closed during the handshake");
                    }
                    if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW)
                    {
                        return false; // app is full: the caller consumes it and comes back
                    }
                    if (r.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW)
                    {
                        final int n = channel.read(netIn);
                        if (n < 0)
                        {
                            throw new EOFException("peer closed the connection during the TLS handshake");
                        }
                        if (n == 0)
                        {
                            return false;
                        }
                    }
                }
                case NEED_TASK -> runTasks();
                default ->
                {
                    established = true;
                    return true;
                }
            }
        }
    }

    /**
     * Reads what the socket has and unwraps it into {@code app}; returns the plaintext bytes produced, or -1 at the
     * peer's end of stream or close_notify with nothing left to unwrap. Post-handshake messages (TLS 1.3 session
     * tickets) are taken on the way. A close_notify right behind the last reply (a server's 221 to QUIT) does not
     * hide that reply: it is returned first, the end on the next call.
     */
    int read(final SocketChannel channel, final ByteBuffer app) throws IOException
    {
        if (peerClosed)
        {
            return -1;
        }
        final int n = channel.read(netIn);
        final int produced = unwrapBuffered(channel, app);
        return (n < 0 || peerClosed) && produced == 0 ? -1 : produced;
    }

    /** Unwraps ciphertext already read (left over when {@code app} was full); returns the plaintext bytes. */
    int unwrapBuffered(final SocketChannel channel, final ByteBuffer app) throws IOException
    {
        int produced = 0;
        netIn.flip();
        try
        {
            while (netIn.hasRemaining())
            {
                final SSLEngineResult r = engine.unwrap(netIn, app);
                produced += r.bytesProduced();
                if (r.getStatus() != SSLEngineResult.Status.OK)
                {
                    peerClosed |= r.getStatus() == SSLEngineResult.Status.CLOSED;
                    break; // closed: close_notify; underflow: a partial record; overflow: app is full, the caller makes room
                }
                if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK)
                {
                    runTasks();
                }
                if (engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP)
                {
                    netIn.compact();
                    try
                    {
                        handshake(channel, app);
                    }
                    finally
                    {
                        netIn.flip();
                    }
                }
            }
        }
        finally
        {
            netIn.compact();
        }
        return produced;
    }

    /** Ciphertext read but not unwrapped yet. */
    boolean hasBufferedInput()
    {
        return netIn.position() > 0;
    }

    /**
     * Wraps and writes everything remaining in {@code srcs}; true when all of it is on the socket, false when the
     * socket is full (call again on OP_WRITE: the rest stays in {@code srcs} and in this transport).
     */
    boolean write(final SocketChannel channel, final ByteBuffer[] srcs) throws IOException
    {
        while (true)
        {
            if (!flushNet(channel))
            {
                return false;
            }
            if (!hasRemaining(srcs))
            {
                return true;
            }
            netOut.clear();
            while (netOut.remaining() >= packetSize && hasRemaining(srcs))
            {
                final SSLEngineResult r = engine.wrap(srcs, netOut);
                if (r.getStatus() == SSLEngineResult.Status.CLOSED)
                {
                    throw new SSLException("TLS closed");
                }
                if (r.getStatus() != SSLEngineResult.Status.OK)
                {
                    break;
                }
            }
            netOut.flip();
        }
    }

    /** As {@link #write(SocketChannel, ByteBuffer[])} for one buffer. */
    boolean write(final SocketChannel channel, final ByteBuffer src) throws IOException
    {
        return write(channel, new ByteBuffer[] {src});
    }

    private boolean flushNet(final SocketChannel channel) throws IOException
    {
        while (netOut.hasRemaining())
        {
            if (channel.write(netOut) == 0)
            {
                return false;
            }
        }
        return true;
    }

    private void runTasks()
    {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null)
        {
            task.run();
        }
    }

    private static boolean hasRemaining(final ByteBuffer[] buffers)
    {
        for (final ByteBuffer b : buffers)
        {
            if (b.hasRemaining())
            {
                return true;
            }
        }
        return false;
    }
}
