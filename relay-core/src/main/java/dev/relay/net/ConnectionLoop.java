package dev.relay.net;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.util.ArrayList;
import java.util.concurrent.Executor;

/**
 * The half of a loop that runs its connections and owns no socket: the list of all of them, their timeouts and
 * buffer pools, the drain, and the steps of a pass that touch them: a ready connection's connect, read and write
 * ({@link #onReady}), hooks, tarpitted connections due, input of resumed connections, one flush per dirty connection
 * then {@code onOutputDrained}, hooks' end of pass, expired timeouts; with what a {@link NioConnection} asks of its
 * loop (clock, buffers, interest ops, TLS events, close). Three jobs of a pass are classes of their own that it owns
 * in final fields and that call back into it: {@link DirtyList} (the flushes), {@link ResumeLists} (tarpits and
 * input offered again) and {@link LoopHooks} (other stages' work); what is left is the life of one connection
 * (open, ready, timeout, TLS events, close) and is read as one.
 * <p>
 * The seam that lets one connection class and one set of steps serve two loops: {@link SelectorLoop} over sockets,
 * and the test double {@code LoopDouble} over memory, whose connections are NioConnections too (over an in-memory
 * {@link java.nio.channels.SocketChannel}). What differs is left to them: the select (which connections are ready
 * for what), the commands queue, the clock, applying interest ops (a {@link SelectionKey} or a flag), closing a
 * socket, the PROXY header (the double has none), and what a handler or hook failure costs (logged and counted on
 * the relay; the test's failure in the double). An abstract class, not an interface: the methods stay
 * package-private, and with SelectorLoop the only subclass loaded in the relay every call binds to one target
 * (class hierarchy analysis), as the direct calls did. Loop thread only.
 */
abstract class ConnectionLoop
{
    /** A closing connection gets at most this long to flush its last output. */
    static final long CLOSE_GRACE_MS = 10_000;

    final DeadlineLists<NioConnection> timeouts = new DeadlineLists<>();
    final DeadlineLists.ExpiryHandler<NioConnection> onTimeout = this::onTimeout;
    final ArrayList<NioConnection> connections = new ArrayList<>();
    /** Connections with output to flush at the end of this pass. */
    final DirtyList dirty = new DirtyList(this);
    /** Tarpitted connections and those whose buffered input is offered again this pass. */
    final ResumeLists resumes = new ResumeLists(this);
    /** Connections' read and write buffers (one loop's, or shared by several). */
    final BufferPool readPool;
    final BufferPool writePool;
    /** Work run once per pass (the spool writer's commit completions), added before the loop starts. */
    final LoopHooks hooks = new LoopHooks(this);
    /** Makes the handler of each accepted connection; set before the loop starts. */
    ConnectionHandlerFactory factory;
    /** Draining: handlers were told ({@code onDrain}), new ones are told at open; the loop ends when all are closed. */
    boolean draining;
    long drainDeadlineMs;
    /** The wall clock of this pass (epoch milliseconds): tarpits, hooks, {@link Connection#nowMs()}. */
    long nowMs;
    /** The clock of the timeouts (monotonic milliseconds on the relay). */
    long timeoutNowMs;

    ConnectionLoop(final BufferPool readPool, final BufferPool writePool)
    {
        this.readPool = readPool;
        this.writePool = writePool;
    }

    /** The loop's clock (epoch milliseconds, read once per pass). */
    long nowMs()
    {
        return nowMs;
    }

    /** This loop's index among the relay's loops ({@link Connection#loopIndex()}). */
    abstract int index();

    /** Runs {@code command} on the loop in a later pass (the end of a delegated TLS task comes back this way). */
    abstract void execute(Runnable command);

    final int writeBufferSize()
    {
        return writePool.bufferSize();
    }

    final int readBufferSize()
    {
        return readPool.bufferSize();
    }

    final ByteBuffer acquireReadBuffer()
    {
        return readPool.acquire();
    }

    final void releaseReadBuffer(final ByteBuffer buffer)
    {
        readPool.release(buffer);
    }

    final ByteBuffer acquireWriteBuffer()
    {
        return writePool.acquire();
    }

    final void releaseWriteBuffer(final ByteBuffer buffer)
    {
        writePool.release(buffer);
    }

    /** The TLS wire buffers of this loop's connections. */
    abstract BufferPool tlsPool();

    /** Where the TLS engine's delegated tasks run. */
    abstract Executor tlsTaskExecutor();

    /** The interest ops follow from the connection's state (paused, output pending, closing, TLS). */
    abstract void updateInterest(NioConnection connection);


    /** A proxied connection's PROXY header did not arrive whole in time. */
    abstract void proxyHeaderTimedOut(NioConnection connection);

    /** The peer closed before a proxied connection's PROXY header was whole. */
    abstract void proxyHeaderMissing(NioConnection connection);

    /**
     * Parses the PROXY header from what was read; once it is whole, the client is admitted and its handler opened.
     *
     * @return true when input goes on to the handler now.
     */
    abstract boolean readProxyHeader(NioConnection connection);

    /** A hook threw: a bug in a stage running on this loop; the loop and its connections go on. */
    abstract void onHookFailure(RuntimeException ex);

    /** A handler threw: a bug, not a protocol error; this connection is closed and the loop goes on. */
    abstract void onHandlerFailure(NioConnection connection, RuntimeException ex);

    /** The socket's part of {@link #close}: it is no longer read or written, and the peer sees the end. */
    abstract void closeSocket(NioConnection connection);

    /**
     * A handler threw from a callback that ends the connection anyway ({@code onConnectFailed}, {@code onTlsFailed},
     * {@code onClose}): nothing more to close.
     */
    abstract void handlerFailedAtEnd(NioConnection connection, String when, RuntimeException ex);

    /** The connect failed or timed out: the handler's {@code onConnectFailed}, then close. */
    final void connectFailed(final NioConnection connection, final String reason)
    {
        try
        {
            connection.handler.onConnectFailed(reason);
        }
        catch (final RuntimeException ex)
        {
            handlerFailedAtEnd(connection, "on connect failure of", ex);
        }
        close(connection);
    }

    /** TLS failed: the peer gets the engine's alert if its socket takes it, the handler the reason, then close. */
    final void tlsFailed(final NioConnection connection, final String reason)
    {
        if (connection.closed)
        {
            return;
        }
        connection.tls.sendAlertQuietly(connection.channel);
        try
        {
            connection.handler.onTlsFailed(reason);
        }
        catch (final RuntimeException ex)
        {
            handlerFailedAtEnd(connection, "on TLS failure of", ex);
        }
        close(connection);
    }

    /** Closes the connection now: socket, buffers back, timeout cancelled, the handler's {@code onClose}. */
    final void close(final NioConnection connection)
    {
        if (connection.closed)
        {
            return;
        }
        connection.closed = true;
        closeSocket(connection);
        connection.releaseBuffers();
        timeouts.cancel(connection);
        final int slot = connection.slot;
        final int last = connections.size() - 1;
        if (slot >= 0 && slot <= last)
        {
            final NioConnection moved = connections.get(last);
            connections.set(slot, moved);
            moved.slot = slot;
            connections.remove(last);
        }
        connection.slot = -1;
        if (connection.handler != null)
        {
            try
            {
                connection.handler.onClose();
            }
            catch (final RuntimeException ex)
            {
                handlerFailedAtEnd(connection, "while closing", ex);
            }
        }
    }

    /** The handler of an admitted connection is made and opened (and told to drain if the loop is draining). */
    final void open(final NioConnection connection)
    {
        try
        {
            connection.handler = factory.newHandler(connection);
            connection.handler.onOpen();
            if (draining)
            {
                connection.handler.onDrain();
            }
            dirty.addIfOutput(connection);
        }
        catch (final RuntimeException ex)
        {
            onHandlerFailure(connection, ex);
        }
    }

    /** Listening stops: drain began. */
    abstract void stopAccepting();

    /** Drain begins: no new connections; every handler is told ({@code onDrain}); the loop ends when all are closed. */
    final void beginDrain(final long timeoutMs)
    {
        if (draining)
        {
            return;
        }
        draining = true;
        drainDeadlineMs = nowMs + timeoutMs;
        stopAccepting();
        drainConnections();
    }

    /** Every handler is told to drain ({@code onDrain}). */
    private void drainConnections()
    {
        for (int i = connections.size() - 1; i >= 0; i--)
        {
            final NioConnection connection = connections.get(i);
            if (connection.handler == null)
            {
                // a proxied connection still waiting for its header: nobody to tell (a 421 being flushed stays)
                if (!connection.closing)
                {
                    close(connection);
                }
                continue;
            }
            try
            {
                connection.handler.onDrain();
                dirty.addIfOutput(connection);
            }
            catch (final RuntimeException ex)
            {
                onHandlerFailure(connection, ex);
            }
        }
    }

    /**
     * A connection's part of the select: it is ready for {@code readyOps} ({@link SelectionKey}'s bits). Its connect
     * finishes; an outbound connection reads before it writes, an inbound one after, and only with no output pending;
     * a paused one that turned readable loses its read interest.
     */
    final void onReady(final NioConnection connection, final int readyOps)
    {
        final boolean pausedBefore = connection.inputPaused;
        final boolean readable = (readyOps & SelectionKey.OP_READ) != 0;
        try
        {
            if (connection.connecting)
            {
                if ((readyOps & SelectionKey.OP_CONNECT) != 0)
                {
                    try
                    {
                        connection.channel.finishConnect();
                    }
                    catch (final IOException ex)
                    {
                        connectFailed(connection, describe(ex));
                        return;
                    }
                    onConnected(connection);
                }
                return;
            }
            if (connection.outbound && readable && !connection.inputPaused)
            {
                // a server's early reply (552 in the middle of a body, then a close) is read before the next write
                // can fail on the reset, so the session learns why
                if (!readAndDeliver(connection))
                {
                    return;
                }
            }
            if ((readyOps & SelectionKey.OP_WRITE) != 0)
            {
                final int flushed = flush(connection);
                if (connection.closed)
                {
                    return;
                }
                if (flushed == NioConnection.FLUSH_HELD && !connection.closing)
                {
                    // plaintext waits for the TLS handshake, which needs the peer's answer
                    connection.outputPending = false;
                    updateInterest(connection);
                }
                else if (flushed != NioConnection.FLUSH_PENDING)
                {
                    connection.outputPending = false;
                    if (connection.closing)
                    {
                        close(connection);
                        return;
                    }
                    if (flushed == NioConnection.FLUSH_DRAINED)
                    {
                        connection.handler.onOutputDrained();
                    }
                    if (connection.tls == null || flushed == NioConnection.FLUSH_DRAINED)
                    {
                        // (a flush of the TLS engine's own messages freed no output space: nothing to offer again)
                        connection.deliverInput();
                    }
                    dirty.addIfOutput(connection);
                    updateInterest(connection);
                }
            }
            // (closed: its key is cancelled, as isValid() said here before)
            if (!connection.outbound && !connection.closed && readable && !connection.inputPaused &&
                !connection.outputPending)
            {
                readAndDeliver(connection);
            }
            else if (pausedBefore && connection.inputPaused && !connection.closed && readable)
            {
                // the peer sent while paused: now the read interest goes (see interestOps), or this would spin
                connection.readableWhilePaused = true;
                updateInterest(connection);
            }
        }
        catch (final IOException ex)
        {
            close(connection);
        }
        catch (final RuntimeException ex)
        {
            onHandlerFailure(connection, ex);
        }
    }

    /** @return false when the connection was closed (the peer closed its side). */
    final boolean readAndDeliver(final NioConnection connection) throws IOException
    {
        if (!connection.readFromSocket())
        {
            if (connection.proxyHeader != null)
            {
                proxyHeaderMissing(connection);
            }
            close(connection);
            return false;
        }
        if (connection.proxyHeader != null && !readProxyHeader(connection))
        {
            dirty.addIfOutput(connection);
            return !connection.closed;
        }
        connection.deliverInput();
        dirty.addIfOutput(connection);
        return !connection.closed;
    }

    final void onConnected(final NioConnection connection)
    {
        connection.connecting = false;
        restartTimeout(connection);
        updateInterest(connection);
        connection.handler.onOpen();
        dirty.addIfOutput(connection);
    }

    static String describe(final Exception ex)
    {
        final String message = ex.getMessage();
        return message == null ? ex.getClass().getSimpleName() : message;
    }

    /** The interest ops ({@link SelectionKey}'s bits) that follow from the connection's state. */
    static int interestOps(final NioConnection connection)
    {
        int ops = 0;
        // an inbound client that does not read its replies is not read from (it could pipeline without end); an
        // outbound connection keeps reading, since the server's reply is what ends a body it stopped taking.
        // Pausing input keeps the read interest until the socket turns readable while paused: a client waiting for
        // its reply (the 250 after the spool commit) sends nothing meanwhile, and dropping the interest and taking it
        // again would cost two epoll_ctl calls per message (the JDK removes a key with no interest from the epoll set).
        if ((!connection.inputPaused || !connection.readableWhilePaused) &&
            (!connection.outputPending || connection.outbound) && !connection.closing &&
            (connection.tls == null || !connection.tls.taskRunning && !connection.tls.plaintextFull))
        {
            ops |= SelectionKey.OP_READ;
        }
        if (connection.outputPending)
        {
            ops |= SelectionKey.OP_WRITE;
        }
        return ops;
    }

    /** The connection's output grew (or it is closing, or TLS has a message to send): flush it this pass. */
    void markDirty(final NioConnection connection)
    {
        dirty.add(connection);
    }

    /** Writes what is buffered for this connection ({@link NioConnection#flushOutput()}). */
    int flush(final NioConnection connection) throws IOException
    {
        return connection.flushOutput();
    }

    /**
     * The connection's timeout starts again from now, for its current {@link NioConnection#idleTimeoutMs}: on a new
     * phase and whenever bytes move. A closing connection keeps its grace deadline.
     */
    final void restartTimeout(final NioConnection connection)
    {
        if (!connection.closing && !connection.closed && (connection.tls == null || !connection.tls.handshaking) &&
            connection.proxyHeader == null)
        {
            timeouts.arm(connection, timeoutNowMs, connection.idleTimeoutMs);
        }
    }

    /** TLS starts: the whole handshake must be done within {@code timeoutMs}. */
    final void startHandshake(final NioConnection connection, final long timeoutMs)
    {
        if (!connection.closing && !connection.closed)
        {
            timeouts.arm(connection, timeoutNowMs, timeoutMs);
        }
    }

    /** The handshake is done: the idle timeout runs again, held output leaves, the handler is told. */
    final void tlsEstablished(final NioConnection connection)
    {
        restartTimeout(connection);
        dirty.add(connection);
        if (connection.hasBufferedInput())
        {
            resumes.queue(connection);
        }
        try
        {
            connection.handler.onTlsEstablished();
        }
        catch (final RuntimeException ex)
        {
            onHandlerFailure(connection, ex);
        }
    }

    /** The connection is closing: it gets at most {@link #CLOSE_GRACE_MS} more to flush, less if its timeout is sooner. */
    final void startCloseGrace(final NioConnection connection)
    {
        if (!connection.closed && connection.deadlineMs() > timeoutNowMs + CLOSE_GRACE_MS)
        {
            timeouts.arm(connection, timeoutNowMs, CLOSE_GRACE_MS);
        }
    }

    final void onTimeout(final NioConnection connection, final long expiredAtMs)
    {
        if (connection.closing)
        {
            close(connection);
            return;
        }
        if (connection.connecting)
        {
            connectFailed(connection, "connect timeout");
            return;
        }
        if (connection.tls != null && connection.tls.handshaking)
        {
            tlsFailed(connection, "handshake timeout");
            return;
        }
        if (connection.proxyHeader != null)
        {
            proxyHeaderTimedOut(connection);
            return;
        }
        try
        {
            connection.handler.onTimeout();
        }
        catch (final RuntimeException ex)
        {
            onHandlerFailure(connection, ex);
            return;
        }
        if (!connection.closed)
        {
            // the handler has replied (421) and is closing, or is closed now: the grace period runs either way
            connection.closeAfterFlush();
            startCloseGrace(connection);
        }
    }
}
