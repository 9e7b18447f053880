package dev.relay.net;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;

/**
 * A client socket owned by one {@link SelectorLoop}, with its lazily taken read and write buffers.
 * <p>
 * It reaches its loop through {@link ConnectionLoop} and its peer only through {@link #channel}'s read and write
 * (the loop does the rest of the socket: connect, register, close). The test double {@code LoopDouble} is another
 * ConnectionLoop and gives each connection an in-memory channel, so handler tests run this class, not a copy of it.
 * <p>
 * Read buffer: taken from the loop's pool when the socket is readable, given back as soon as the handler has
 * consumed everything (an idle connection holds none). Bytes the handler leaves unconsumed stay in
 * {@code [readStart, readBuffer.position())} and are offered again with the next read.
 * Write buffer: taken when the first reply is written, given back once flushed.
 * <p>
 * Interest ops follow from the state: reading stops while input is paused (waiting for a spool commit), while
 * output is pending (a client that does not read its replies is not read from), and once closing. A pause takes the
 * read interest away only once the socket turns readable while paused, so a pause that sees no input costs no
 * {@code epoll_ctl}.
 * <p>
 * The connection is its own timer in the loop's {@link DeadlineLists}: the links live in this object, so arming,
 * moving and cancelling its timeout allocates nothing.
 * <p>
 * TLS ({@link #startTls}): a {@link TlsLayer} sits between these plaintext buffers and the socket; reads unwrap
 * into the read buffer, flushes wrap from the write buffer. During the handshake the timer holds the handshake
 * deadline, which reads and writes do not move.
 * <p>
 * One state machine, kept whole past the ~500-line rule of issue 10: the per-connection half of
 * {@link SelectorLoop}'s (whose javadoc lists the states and their timeouts). Its state is the flags below
 * ({@code connecting}, {@code inputPaused}, {@code outputPending}, {@code closing}, {@code closed}, a pending PROXY
 * header, a TLS layer); its events are the handler's calls through {@link Connection} and the loop's read, flush and
 * close. Loop thread only (the end of a delegated TLS task comes back through the loop's commands).
 */
final class NioConnection extends DeadlineLists.Timer implements Connection
{
    static final int FLUSH_EMPTY = 0;
    static final int FLUSH_DRAINED = 1;
    static final int FLUSH_PENDING = 2;
    /** Plaintext waits for the TLS handshake to finish; the socket has taken everything else. */
    static final int FLUSH_HELD = 3;

    final SocketChannel channel;
    final ConnectionLoop loop;
    SelectionKey key;
    ConnectionHandler handler;

    ByteBuffer readBuffer;
    int readStart;
    ByteBuffer writeBuffer;

    /** A client connection this loop opened (not counted by the inbound limiter). */
    final boolean outbound;
    /** Outbound, TCP handshake not finished yet. */
    boolean connecting;
    boolean inputPaused;
    /** The socket was readable while input was paused: the read interest is off until input resumes. */
    boolean readableWhilePaused;
    boolean closing;
    boolean closed;
    boolean outputPending;
    /** Queued for a flush at the end of this loop pass. */
    boolean dirty;
    /** Queued to have its buffered input offered again in this pass. */
    boolean resumeQueued;

    /** The timeout in force, restarted by every read or write that moves bytes. */
    long idleTimeoutMs;
    /** While tarpitted: when input resumes. */
    long resumeAtMs;
    /** Position in the loop's connection list (swap-remove). */
    int slot = -1;
    /** TLS, once started; null for plaintext. */
    TlsLayer tls;
    /** Set by {@link #startTls} inside {@code onInput}: what the handler left unconsumed is dropped, not offered. */
    boolean discardInput;
    /** Inside {@link #deliverInput()}: the handler is in {@code onInput}. */
    private boolean delivering;
    /**
     * A proxied connection whose PROXY header has not arrived whole yet: no handler exists, input goes to this parser,
     * and the timer holds the header's deadline, which reads do not move. Null otherwise.
     */
    ProxyHeaderParser proxyHeader;
    /**
     * The client is counted by the limiter ({@link ConnectionLimiter#tryAdmitClient}); false for a proxied connection
     * until its header named an admitted client, which then holds only a connection slot.
     */
    boolean clientAdmitted;

    /** The client: the peer, or the one a PROXY header named ({@link #clientAddress}). */
    private InetSocketAddress remoteAddress;
    private byte[] remoteAddressBytes;
    private final int listenerTag;

    NioConnection(
        final ConnectionLoop loop, final SocketChannel channel, final InetSocketAddress remoteAddress,
        final boolean outbound)
    {
        this(loop, channel, remoteAddress, outbound, 0);
    }

    NioConnection(
        final ConnectionLoop loop, final SocketChannel channel, final InetSocketAddress remoteAddress,
        final boolean outbound, final int listenerTag)
    {
        this.listenerTag = listenerTag;
        this.outbound = outbound;
        this.loop = loop;
        this.channel = channel;
        this.remoteAddress = remoteAddress;
        this.remoteAddressBytes = remoteAddress.getAddress().getAddress();
    }

    @Override
    public InetSocketAddress remoteAddress()
    {
        return remoteAddress;
    }

    /** The PROXY header named the client: it is this connection's remote address from now on (before any handler). */
    void clientAddress(final InetSocketAddress client)
    {
        remoteAddress = client;
        remoteAddressBytes = client.getAddress().getAddress();
    }

    @Override
    public byte[] remoteAddressBytes()
    {
        return remoteAddressBytes;
    }

    @Override
    public int outputSpace()
    {
        if (closing)
        {
            return 0;
        }
        return writeBuffer == null ? loop.writeBufferSize() : writeBuffer.remaining();
    }

    @Override
    public void write(final byte[] bytes, final int offset, final int length)
    {
        if (closed || length == 0)
        {
            return;
        }
        if (closing)
        {
            // outputSpace() is 0 once closing: after closeNow these bytes would go out, after closeAfterFlush join
            // the last ones
            throw new IllegalStateException("write of " + length + " bytes after close");
        }
        if (writeBuffer == null)
        {
            writeBuffer = loop.acquireWriteBuffer();
        }
        if (writeBuffer.remaining() < length)
        {
            throw new IllegalStateException("reply of " + length + " bytes does not fit: " + writeBuffer.remaining());
        }
        writeBuffer.put(bytes, offset, length);
        loop.markDirty(this);
    }

    @Override
    public int write(final OutputFiller filler, final int maxLength)
    {
        if (closing || closed || maxLength <= 0)
        {
            return 0;
        }
        if (writeBuffer == null)
        {
            writeBuffer = loop.acquireWriteBuffer();
        }
        final int start = writeBuffer.position();
        final int room = Math.min(maxLength, writeBuffer.remaining());
        if (room == 0)
        {
            return 0;
        }
        final int result;
        writeBuffer.limit(start + room);
        try
        {
            result = filler.fill(writeBuffer);
        }
        finally
        {
            writeBuffer.limit(writeBuffer.capacity());
        }
        if (writeBuffer.position() > start)
        {
            loop.markDirty(this);
        }
        else if (start == 0)
        {
            // nothing to write after all: an empty buffer must not reach the flush (it would count as drained)
            loop.releaseWriteBuffer(writeBuffer);
            writeBuffer = null;
        }
        return result;
    }

    @Override
    public void pauseInput()
    {
        inputPaused = true;
        loop.updateInterest(this);
    }

    @Override
    public void pauseInputFor(final long delayMs)
    {
        pauseInput();
        loop.resumes.resumeAt(this, loop.nowMs() + delayMs);
    }

    @Override
    public void resumeInput()
    {
        if (inputPaused)
        {
            inputPaused = false;
            readableWhilePaused = false;
            loop.resumes.queue(this);
        }
    }

    @Override
    public void closeAfterFlush()
    {
        if (!closing)
        {
            closing = true;
            loop.startCloseGrace(this);
            loop.markDirty(this);
        }
    }

    @Override
    public void closeNow()
    {
        if (closed)
        {
            return;
        }
        closing = true;
        if (writeBuffer != null)
        {
            loop.releaseWriteBuffer(writeBuffer);
            writeBuffer = null;
        }
        if (tls != null)
        {
            // no close_notify either: closeNow does not wait for a peer that may never read
            tls.discardOutput();
            tls.closeNotifyQueued = true;
        }
        // closed by the end-of-pass flush, which finds nothing left to write
        loop.markDirty(this);
    }

    @Override
    public void idleTimeoutMs(final long timeoutMs)
    {
        // a new phase starts its timeout now (RFC 5321 §4.5.3.2 timeouts are per command/phase)
        this.idleTimeoutMs = timeoutMs;
        loop.restartTimeout(this);
    }

    @Override
    public long nowMs()
    {
        return loop.nowMs();
    }

    @Override
    public int loopIndex()
    {
        return loop.index();
    }

    @Override
    public int listenerTag()
    {
        return listenerTag;
    }

    @Override
    public void startTls(final SSLEngine engine, final long handshakeTimeoutMs)
    {
        if (tls != null)
        {
            throw new IllegalStateException("TLS already started on " + this);
        }
        if (closing || closed)
        {
            return;
        }
        if (loop.readBufferSize() < TlsLayer.plaintextBytesNeeded(engine))
        {
            throw new IllegalStateException("read buffers of " + loop.readBufferSize() + " bytes cannot take a TLS " +
                "record's plaintext (" + TlsLayer.plaintextBytesNeeded(engine) + ")");
        }
        tls = new TlsLayer(engine, loop.tlsPool(), loop.tlsTaskExecutor(), () -> loop.execute(this::onTlsTasksDone));
        if (writeBuffer != null)
        {
            // the reply to STARTTLS leaves in plaintext, before the handshake
            tls.queueRaw(writeBuffer);
            loop.releaseWriteBuffer(writeBuffer);
            writeBuffer = null;
        }
        // RFC 3207 §5, CVE-2011-0411: nothing the peer sent before the handshake counts as said under TLS
        if (delivering)
        {
            discardInput = true;
        }
        else
        {
            discardBufferedInput();
        }
        loop.startHandshake(this, handshakeTimeoutMs);
        try
        {
            tls.begin();
        }
        catch (final SSLException ex)
        {
            loop.tlsFailed(this, describe(ex));
            return;
        }
        loop.markDirty(this);
        loop.updateInterest(this);
    }

    @Override
    public boolean isTls()
    {
        return tls != null;
    }

    @Override
    public String tlsProtocol()
    {
        return tls == null ? null : tls.protocol();
    }

    @Override
    public String tlsCipher()
    {
        return tls == null ? null : tls.cipher();
    }

    boolean hasBufferedInput()
    {
        return readBuffer != null && readStart < readBuffer.position();
    }

    /** @return false when the peer closed its side (or TLS failed and the connection is closed). */
    boolean readFromSocket() throws IOException
    {
        if (tls != null)
        {
            return readTls();
        }
        if (readBuffer == null)
        {
            readBuffer = loop.acquireReadBuffer();
            readStart = 0;
        }
        else if (!readBuffer.hasRemaining())
        {
            compactInput();
            if (!readBuffer.hasRemaining())
            {
                return true;
            }
        }
        final int read = channel.read(readBuffer);
        if (read < 0)
        {
            return false;
        }
        if (read > 0)
        {
            loop.restartTimeout(this);
        }
        return true;
    }

    /** TLS: reads ciphertext and unwraps what it can; false when the stream ended or TLS failed. */
    private boolean readTls() throws IOException
    {
        final int read = tls.read(channel);
        if (tls.moved)
        {
            loop.restartTimeout(this);
        }
        return unwrapInput() && read >= 0;
    }

    /**
     * Unwraps buffered ciphertext into the read buffer and acts on what the engine said: a handshake message to
     * send, the handshake done, the peer's close_notify.
     *
     * @return false when the connection ended: the peer's close_notify or a TLS failure (it is closed now).
     */
    private boolean unwrapInput()
    {
        if (!tls.hasCiphertext() || tls.taskRunning)
        {
            return !tls.inboundClosed;
        }
        if (readBuffer == null)
        {
            readBuffer = loop.acquireReadBuffer();
            readStart = 0;
        }
        final boolean wasFull = tls.plaintextFull;
        int result;
        try
        {
            result = tls.unwrap(readBuffer);
            if (result == TlsLayer.UNWRAP_PLAINTEXT_FULL && readStart > 0)
            {
                compactInput();
                result = tls.unwrap(readBuffer);
            }
        }
        catch (final SSLException ex)
        {
            loop.tlsFailed(this, describe(ex));
            return false;
        }
        if (readStart >= readBuffer.position())
        {
            loop.releaseReadBuffer(readBuffer);
            readBuffer = null;
            readStart = 0;
        }
        afterTlsStep();
        if (result == TlsLayer.UNWRAP_CLOSED)
        {
            // the peer's close_notify: the end of its stream, as a FIN is without TLS
            loop.close(this);
            return false;
        }
        if (wasFull != tls.plaintextFull)
        {
            loop.updateInterest(this);
        }
        return true;
    }

    /** What follows any step of the engine: its messages flushed, the handler told once the handshake is done. */
    private void afterTlsStep()
    {
        if (tls.wantsWrap())
        {
            loop.markDirty(this);
        }
        else if (tls.unwrapPending())
        {
            loop.resumes.queue(this);
        }
        if (tls.takeEstablished())
        {
            loop.tlsEstablished(this);
        }
    }

    /** On the loop, after the delegated tasks ran: the handshake goes on. */
    void onTlsTasksDone()
    {
        if (closed)
        {
            tls.afterClose();
            return;
        }
        tls.afterTasks();
        if (!tls.taskRunning && !unwrapInput())
        {
            return;
        }
        if (!closed)
        {
            afterTlsStep();
            loop.markDirty(this);
            loop.updateInterest(this);
            loop.resumes.queue(this);
        }
    }

    private void discardBufferedInput()
    {
        if (readBuffer != null)
        {
            loop.releaseReadBuffer(readBuffer);
            readBuffer = null;
            readStart = 0;
        }
    }

    /** Offers buffered input to the handler until it stops consuming; gives the buffer back when all is taken. */
    void deliverInput()
    {
        while (!inputPaused && !closing)
        {
            if (tls != null && tls.unwrapPending() && !unwrapInput())
            {
                return;
            }
            if (readBuffer == null)
            {
                break;
            }
            final int end = readBuffer.position();
            if (readStart >= end)
            {
                break;
            }
            delivering = true;
            final int consumedTo;
            try
            {
                consumedTo = handler.onInput(readBuffer, readStart, end);
            }
            finally
            {
                delivering = false;
            }
            if (discardInput)
            {
                // TLS started in this call: the bytes after the STARTTLS line were sent in plaintext
                discardInput = false;
                readStart = end;
                break;
            }
            if (consumedTo <= readStart)
            {
                break;
            }
            readStart = consumedTo;
        }
        if (readBuffer != null)
        {
            if (readStart >= readBuffer.position())
            {
                loop.releaseReadBuffer(readBuffer);
                readBuffer = null;
                readStart = 0;
            }
            else if (readStart > 0 && readBuffer.remaining() < readBuffer.capacity() / 4)
            {
                compactInput();
            }
        }
    }

    /** Gives the read buffer back when every byte in it was taken (an idle connection holds none). */
    void releaseReadBufferIfConsumed()
    {
        if (readBuffer != null && readStart >= readBuffer.position())
        {
            loop.releaseReadBuffer(readBuffer);
            readBuffer = null;
            readStart = 0;
        }
    }

    private void compactInput()
    {
        if (readStart > 0)
        {
            readBuffer.limit(readBuffer.position());
            readBuffer.position(readStart);
            readBuffer.compact();
            readStart = 0;
        }
    }

    /**
     * Writes what is buffered. Any bytes written restart the timeout: a peer that reads, however slowly, is making
     * progress (a limit on the whole transfer is the handler's business).
     *
     * @return {@link #FLUSH_EMPTY} when nothing was buffered, {@link #FLUSH_DRAINED} when everything buffered was
     * written (the buffer goes back to the pool), {@link #FLUSH_PENDING} when the socket took only part of it.
     */
    int flushOutput() throws IOException
    {
        if (tls != null)
        {
            return flushTls();
        }
        if (writeBuffer == null)
        {
            return FLUSH_EMPTY;
        }
        writeBuffer.flip();
        final int written = channel.write(writeBuffer);
        if (written > 0)
        {
            loop.restartTimeout(this);
        }
        if (!writeBuffer.hasRemaining())
        {
            loop.releaseWriteBuffer(writeBuffer);
            writeBuffer = null;
            return FLUSH_DRAINED;
        }
        writeBuffer.compact();
        return FLUSH_PENDING;
    }

    /** TLS: wraps and writes; the plaintext buffer goes back once it is all wrapped. */
    private int flushTls() throws IOException
    {
        final int flushed;
        try
        {
            flushed = tls.flush(channel, writeBuffer, closing);
        }
        catch (final SSLException ex)
        {
            loop.tlsFailed(this, describe(ex));
            return FLUSH_EMPTY;
        }
        if (tls.moved)
        {
            loop.restartTimeout(this);
        }
        if (writeBuffer != null && writeBuffer.position() == 0)
        {
            loop.releaseWriteBuffer(writeBuffer);
            writeBuffer = null;
        }
        afterTlsStep();
        return flushed;
    }

    static String describe(final Exception ex)
    {
        final String message = ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage();
        final Throwable cause = ex.getCause();
        if (cause != null && cause.getMessage() != null && !message.contains(cause.getMessage()))
        {
            // BoringSSL's "General OpenSslEngine problem" says why only in its cause (a refused certificate)
            return message + ": " + cause.getMessage();
        }
        return message;
    }

    void releaseBuffers()
    {
        if (tls != null)
        {
            tls.releaseBuffers();
        }
        if (readBuffer != null)
        {
            loop.releaseReadBuffer(readBuffer);
            readBuffer = null;
        }
        if (writeBuffer != null)
        {
            loop.releaseWriteBuffer(writeBuffer);
            writeBuffer = null;
        }
    }

    @Override
    public String toString()
    {
        return "connection " + remoteAddress;
    }
}
