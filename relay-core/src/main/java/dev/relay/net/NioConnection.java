package dev.relay.net;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;

/**
 * A client socket owned by one {@link SelectorLoop}, with its lazily taken read and write buffers.
 * <p>
 * Read buffer: taken from the loop's pool when the socket is readable, given back as soon as the handler has
 * consumed everything (an idle connection holds none). Bytes the handler leaves unconsumed stay in
 * {@code [readStart, readBuffer.position())} and are offered again with the next read.
 * Write buffer: taken when the first reply is written, given back once flushed.
 * <p>
 * Interest ops follow from the state: reading stops while input is paused (waiting for a spool commit), while
 * output is pending (a client that does not read its replies is not read from), and once closing.
 * <p>
 * The connection is its own timer in the loop's {@link DeadlineLists}: the links live in this object, so arming,
 * moving and cancelling its timeout allocates nothing.
 */
final class NioConnection extends DeadlineLists.Timer implements Connection
{
    static final int FLUSH_EMPTY = 0;
    static final int FLUSH_DRAINED = 1;
    static final int FLUSH_PENDING = 2;

    final SocketChannel channel;
    final SelectorLoop loop;
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

    private final InetSocketAddress remoteAddress;
    private final byte[] remoteAddressBytes;

    NioConnection(
        final SelectorLoop loop, final SocketChannel channel, final InetSocketAddress remoteAddress,
        final boolean outbound)
    {
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
        loop.resumeLater(this, loop.nowMs() + delayMs);
    }

    @Override
    public void resumeInput()
    {
        if (inputPaused)
        {
            inputPaused = false;
            loop.queueResume(this);
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

    boolean hasBufferedInput()
    {
        return readBuffer != null && readStart < readBuffer.position();
    }

    /** @return false when the peer closed its side. */
    boolean readFromSocket() throws IOException
    {
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

    /** Offers buffered input to the handler until it stops consuming; gives the buffer back when all is taken. */
    void deliverInput()
    {
        while (!inputPaused && !closing && readBuffer != null)
        {
            final int end = readBuffer.position();
            if (readStart >= end)
            {
                break;
            }
            final int consumedTo = handler.onInput(readBuffer, readStart, end);
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

    void releaseBuffers()
    {
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
