package dev.relay.net;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;

/**
 * One connection's TLS: an {@link SSLEngine} between the connection's plaintext buffers (what its handler reads
 * and writes) and the wire, driven the way Netty's {@code SslHandler} drives one: unwrap what was read into the
 * plaintext read buffer, wrap the plaintext write buffer on the way out, answer whatever handshake step the engine
 * asks for (wrap, unwrap, delegated task), and say close_notify when the connection closes.
 * <p>
 * Buffers: {@code netIn} holds ciphertext read but not yet unwrapped (a partial record waits there for the rest),
 * {@code netOut} the bytes for the wire (first any plaintext written before STARTTLS, then records). Both come from
 * the loop's TLS pool and go back as soon as they are empty, so an idle TLS connection holds its engine and no
 * buffer. Plaintext stays in the connection's own pooled buffers: unwrap writes straight into the read buffer the
 * handler is offered, and wrap reads straight from the write buffer the handler filled.
 * <p>
 * Delegated tasks (the handshake's key exchange and signature, the slow part) run on the task executor; the
 * engine is left alone meanwhile (no read interest, no wrap), and {@code tasksDone} brings the connection back to
 * its loop. Everything else runs on the connection's loop thread. {@link SelectorLoop}'s {@code NioConnection} and
 * the tests' {@code LoopDouble} drive this same class, so the double keeps the real TLS steps.
 * <p>
 * One state machine, kept whole past the ~500-line rule of issue 10: the engine's handshake and close as this side
 * sees them ({@code handshaking}, {@code taskRunning}, {@code plaintextFull}, {@code inboundClosed},
 * {@code closeNotifyQueued}), moved by the connection's reads, flushes and close and by the end of a delegated task.
 */
final class TlsLayer
{
    /** The ciphertext read so far is used up (a partial record may wait in {@code netIn} for the rest). */
    static final int UNWRAP_NEED_INPUT = 0;
    /** The plaintext buffer has no room for the next record: unwrap again once the handler consumed some. */
    static final int UNWRAP_PLAINTEXT_FULL = 1;
    /** The peer said close_notify: the end of its stream. */
    static final int UNWRAP_CLOSED = 2;
    /** A delegated task runs: nothing more until it is done. */
    static final int UNWRAP_TASK = 3;

    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);

    final SSLEngine engine;
    private final BufferPool pool;
    private final Executor taskExecutor;
    private final Runnable tasksDone;
    private final int packetBytes;

    /** Ciphertext read and not unwrapped, in {@code [0, position)}; null when there is none. */
    ByteBuffer netIn;
    /** Bytes for the wire in {@code [0, position)}; null when there are none. */
    ByteBuffer netOut;
    /** The first handshake has not finished. */
    boolean handshaking = true;
    /** A delegated task is running on the task executor. */
    boolean taskRunning;
    /** The last unwrap stopped at a full plaintext buffer. */
    boolean plaintextFull;
    /** The last unwrap stopped with ciphertext left because the engine had to wrap first (a handshake step). */
    private boolean stoppedForWrap;
    /** The last wrap said the engine has more to wrap (see {@link #wrap}). */
    private boolean wrapPending;
    /** The peer's close_notify was read. */
    boolean inboundClosed;
    /** Our close_notify has been wrapped. */
    boolean closeNotifyQueued;
    /** Bytes moved by the last {@link #read} or {@link #flush}: progress that restarts the idle timeout. */
    boolean moved;
    /** Plaintext of the handler's is in {@code netOut} and has not all reached the socket. */
    private boolean plaintextInFlight;
    /** The first handshake finished and the connection has not been told yet. */
    private boolean establishedPending;
    private String protocol;
    private String cipher;

    /**
     * @param pool         the loop's TLS buffer pool; its buffers must hold a record ({@code packetBufferSize}).
     * @param taskExecutor where delegated tasks run (off the loop).
     * @param tasksDone    run on the task executor once the tasks are done: brings the connection back to its loop.
     */
    TlsLayer(final SSLEngine engine, final BufferPool pool, final Executor taskExecutor, final Runnable tasksDone)
    {
        this.engine = engine;
        this.pool = pool;
        this.taskExecutor = taskExecutor;
        this.tasksDone = tasksDone;
        this.packetBytes = engine.getSession().getPacketBufferSize();
        if (packetBytes > pool.bufferSize())
        {
            throw new IllegalStateException("TLS buffers of " + pool.bufferSize() + " bytes are smaller than the " +
                "engine's records (" + packetBytes + ")");
        }
    }

    /** The size a plaintext read buffer needs so that any record fits once it is empty. */
    static int plaintextBytesNeeded(final SSLEngine engine)
    {
        return engine.getSession().getApplicationBufferSize();
    }

    /** Starts the handshake; a client's first flight is wrapped by the next {@link #flush}. */
    void begin() throws SSLException
    {
        engine.beginHandshake();
        onHandshakeStatus(engine.getHandshakeStatus());
    }

    /** Plaintext written before TLS started (the 220 to STARTTLS): it leaves first, as it is. */
    void queueRaw(final ByteBuffer plain)
    {
        plain.flip();
        if (plain.hasRemaining())
        {
            if (netOut == null)
            {
                netOut = pool.acquire();
            }
            if (plain.remaining() > netOut.remaining())
            {
                throw new IllegalStateException("plaintext before STARTTLS does not fit: " + plain.remaining());
            }
            netOut.put(plain);
        }
        plain.clear();
    }

    String protocol()
    {
        return protocol;
    }

    String cipher()
    {
        return cipher;
    }

    /** Whether ciphertext waits to be unwrapped. */
    boolean hasCiphertext()
    {
        return netIn != null && netIn.position() > 0;
    }

    /** Whether the engine has something to send (a handshake message, an alert, close_notify's answer). */
    boolean wantsWrap()
    {
        return !taskRunning &&
            (wrapPending || engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP);
    }

    /**
     * Whether ciphertext already read waits for an unwrap that nothing else will trigger (no new bytes may come:
     * the peer waits for our answer): after a full plaintext buffer, or after the engine wrapped in between.
     */
    boolean unwrapPending()
    {
        return (plaintextFull || stoppedForWrap) && hasCiphertext() && !taskRunning && !wantsWrap();
    }

    /** True once, after the first handshake finished. */
    boolean takeEstablished()
    {
        final boolean pending = establishedPending;
        establishedPending = false;
        return pending;
    }

    /**
     * Reads ciphertext from {@code channel} into {@code netIn}.
     *
     * @return bytes read (0 when {@code netIn} is full), or -1 at the end of the stream.
     */
    int read(final ReadableByteChannel channel) throws IOException
    {
        if (netIn == null)
        {
            netIn = pool.acquire();
        }
        if (!netIn.hasRemaining())
        {
            moved = false;
            return 0;
        }
        final int read = channel.read(netIn);
        moved = read > 0;
        if (netIn.position() == 0)
        {
            releaseNetIn();
        }
        return read;
    }

    /**
     * Unwraps the ciphertext read so far into {@code plain} (write mode: bytes go in at its position), handshake
     * records included, as far as the plaintext buffer has room.
     *
     * @return one of the {@code UNWRAP_} results.
     * @throws SSLException when the peer's bytes are not TLS or the handshake fails.
     */
    int unwrap(final ByteBuffer plain) throws SSLException
    {
        plaintextFull = false;
        stoppedForWrap = false;
        boolean consumed = false;
        while (netIn != null && netIn.position() > 0)
        {
            if (taskRunning)
            {
                return UNWRAP_TASK;
            }
            final SSLEngineResult result;
            netIn.flip();
            try
            {
                result = engine.unwrap(netIn, plain);
            }
            finally
            {
                netIn.compact();
            }
            onHandshakeStatus(result.getHandshakeStatus());
            consumed |= result.bytesConsumed() > 0;
            switch (result.getStatus())
            {
                case BUFFER_UNDERFLOW:
                    releaseNetInIfEmpty();
                    noticeHandshakeEnd(consumed, plain);
                    return UNWRAP_NEED_INPUT;
                case BUFFER_OVERFLOW:
                    plaintextFull = true;
                    return UNWRAP_PLAINTEXT_FULL;
                case CLOSED:
                    inboundClosed = true;
                    releaseNetIn();
                    return UNWRAP_CLOSED;
                default:
                    break;
            }
            if (taskRunning)
            {
                return UNWRAP_TASK;
            }
            if (result.bytesConsumed() == 0 && result.bytesProduced() == 0)
            {
                // the engine wants to wrap before it reads on (the flush does that, then unwraps again)
                stoppedForWrap = true;
                break;
            }
        }
        releaseNetInIfEmpty();
        noticeHandshakeEnd(consumed, plain);
        return UNWRAP_NEED_INPUT;
    }

    /**
     * Netty's OpenSslEngine finds out that the handshake ended (the peer's Finished was read) only at its next call,
     * and says NEED_UNWRAP meanwhile: a server speaking first (implicit TLS) would wait for ever. One more unwrap of
     * nothing lets it say FINISHED; the JDK's engine answers BUFFER_UNDERFLOW and nothing changes.
     */
    private void noticeHandshakeEnd(final boolean consumed, final ByteBuffer plain) throws SSLException
    {
        if (handshaking && consumed && !taskRunning &&
            engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_UNWRAP)
        {
            onHandshakeStatus(engine.unwrap(EMPTY, plain).getHandshakeStatus());
        }
    }

    /**
     * Writes what is for the wire: what {@code netOut} holds, the handshake messages the engine asks for, then (once
     * the handshake is done) {@code plain}'s bytes as records, then close_notify when {@code closing}.
     *
     * @param plain the handler's output (write mode), or null.
     * @return {@link NioConnection#FLUSH_PENDING} when the socket took only part, else
     * {@link NioConnection#FLUSH_HELD} when plaintext waits for the handshake, {@link NioConnection#FLUSH_DRAINED}
     * when plaintext was buffered and has all reached the socket, {@link NioConnection#FLUSH_EMPTY} otherwise.
     */
    int flush(final WritableByteChannel channel, final ByteBuffer plain, final boolean closing) throws IOException
    {
        final boolean hadPlaintext = plain != null && plain.position() > 0 || plaintextInFlight;
        moved = false;
        while (true)
        {
            if (netOut != null && netOut.position() > 0)
            {
                netOut.flip();
                final int written;
                try
                {
                    written = channel.write(netOut);
                }
                finally
                {
                    netOut.compact();
                }
                moved |= written > 0;
                if (netOut.position() > 0)
                {
                    return NioConnection.FLUSH_PENDING;
                }
            }
            plaintextInFlight = false;
            if (taskRunning)
            {
                break;
            }
            if (wrapPending || engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP)
            {
                wrap(EMPTY);
                continue;
            }
            if (!handshaking && plain != null && plain.position() > 0)
            {
                plain.flip();
                try
                {
                    // more than one record per write when they fit
                    do
                    {
                        wrap(plain);
                        plaintextInFlight = true;
                    }
                    while (plain.hasRemaining() && netOut.remaining() >= packetBytes);
                }
                finally
                {
                    plain.compact();
                }
                continue;
            }
            if (closing && !handshaking && !closeNotifyQueued)
            {
                closeNotifyQueued = true;
                engine.closeOutbound();
                wrap(EMPTY);
                continue;
            }
            break;
        }
        releaseNetOut();
        if (plain != null && plain.position() > 0)
        {
            return NioConnection.FLUSH_HELD;
        }
        return hadPlaintext ? NioConnection.FLUSH_DRAINED : NioConnection.FLUSH_EMPTY;
    }

    private void wrap(final ByteBuffer source) throws SSLException
    {
        if (netOut == null)
        {
            netOut = pool.acquire();
        }
        final SSLEngineResult result = engine.wrap(source, netOut);
        // as Netty's SslHandler, the result's word counts, not only the engine's: BoringSSL wraps a fatal alert
        // (a client that refused the server's certificate), says NEED_WRAP, and throws its reason at the next wrap
        // only, while getHandshakeStatus() already says NEED_UNWRAP
        wrapPending = result.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP &&
            result.bytesProduced() > 0;
        onHandshakeStatus(result.getHandshakeStatus());
        if (result.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW)
        {
            throw new SSLException("TLS record larger than its buffer (" + netOut.capacity() + " bytes)");
        }
        if (result.bytesProduced() == 0 && result.bytesConsumed() == 0 && source.hasRemaining())
        {
            // a closed engine takes no more plaintext: without this the flush would try for ever
            throw new SSLException("TLS engine closed: " + result.getStatus());
        }
    }

    /**
     * After a failure: the alert the engine has for the peer, written once if the socket takes it (best effort, so
     * the peer learns why instead of seeing a reset).
     */
    void sendAlertQuietly(final WritableByteChannel channel)
    {
        if (taskRunning)
        {
            // a task's thread uses the engine (a handshake timed out in the middle of one): no alert
            return;
        }
        try
        {
            engine.closeOutbound();
            if (netOut != null)
            {
                netOut.clear();
            }
            if (!taskRunning && engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP)
            {
                wrap(EMPTY);
                netOut.flip();
                channel.write(netOut);
            }
        }
        catch (final IOException | RuntimeException ignored)
        {
            // the connection is failing anyway
        }
    }

    /** The tasks ran: the engine may be driven again (loop thread). */
    void afterTasks()
    {
        taskRunning = false;
        onHandshakeStatus(engine.getHandshakeStatus());
    }

    private void onHandshakeStatus(final SSLEngineResult.HandshakeStatus status)
    {
        switch (status)
        {
            case NEED_TASK:
                runTasks();
                break;
            case FINISHED:
            case NOT_HANDSHAKING:
                if (handshaking)
                {
                    handshaking = false;
                    establishedPending = true;
                    protocol = engine.getSession().getProtocol();
                    cipher = engine.getSession().getCipherSuite();
                }
                break;
            default:
                break;
        }
    }

    private void runTasks()
    {
        if (taskRunning)
        {
            return;
        }
        final List<Runnable> tasks = new ArrayList<>(2);
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null)
        {
            tasks.add(task);
        }
        if (tasks.isEmpty())
        {
            return;
        }
        taskRunning = true;
        taskExecutor.execute(() ->
        {
            try
            {
                for (final Runnable each : tasks)
                {
                    // a task that fails leaves its exception in the engine, which throws it at the next step
                    each.run();
                }
            }
            finally
            {
                tasksDone.run();
            }
        });
    }

    /**
     * The connection is closed: gives the buffers back and closes the engine both ways, which frees a native
     * engine's state at once (BoringSSL's) instead of at its cleaner.
     */
    void releaseBuffers()
    {
        releaseNetIn();
        discardOutput();
        if (!taskRunning)
        {
            // else the task's thread still uses the engine: closed once it is done (afterClose)
            closeEngine();
        }
    }

    /** The tasks of a connection closed meanwhile are done: the engine can be closed now (loop thread). */
    void afterClose()
    {
        taskRunning = false;
        closeEngine();
    }

    private void closeEngine()
    {
        engine.closeOutbound();
        try
        {
            engine.closeInbound();
        }
        catch (final SSLException ignored)
        {
            // the JDK's engine says so when the peer never sent close_notify: nothing to do about it now
        }
    }

    /** Drops what waits for the wire (closeNow). */
    void discardOutput()
    {
        if (netOut != null)
        {
            netOut.clear();
        }
        releaseNetOut();
        plaintextInFlight = false;
    }

    private void releaseNetInIfEmpty()
    {
        if (netIn != null && netIn.position() == 0)
        {
            releaseNetIn();
        }
    }

    private void releaseNetIn()
    {
        if (netIn != null)
        {
            pool.release(netIn);
            netIn = null;
        }
    }

    private void releaseNetOut()
    {
        if (netOut != null && netOut.position() == 0)
        {
            pool.release(netOut);
            netOut = null;
        }
    }
}
