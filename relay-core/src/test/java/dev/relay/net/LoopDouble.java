package dev.relay.net;

import dev.relay.Relay;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * The loop's side of connections, in memory, for tests of a {@link ConnectionHandler}: {@link SelectorLoop}'s passes
 * run one at a time on the test's thread, on a fake clock, with a scripted {@link Peer} at the far end of each
 * connection instead of a socket.
 * <p>
 * It keeps the contract the real loop keeps (SelectorLoop's class javadoc), the same way, and promises nothing the
 * real loop does not: a pass is select (I/O of the ready connections, connects, accepts) → commands
 * ({@link #execute}) → hooks → tarpitted connections due → input of resumed connections → one flush per dirty
 * connection, then {@code onOutputDrained} when it emptied the buffer → hooks' end of pass → expired timeouts; the
 * steps are SelectorLoop's and NioConnection's, line for line, over memory. Output goes through a
 * bounded direct buffer from a {@link BufferPool} (by default the size the relay uses for delivery,
 * {@value Relay#DELIVERY_WRITE_BUFFER_BYTES} bytes) and reaches the peer only as far as the peer's window allows; an
 * inbound connection is not read while its output is blocked, an outbound one is; timeouts live in the real
 * {@link DeadlineLists} on the fake clock, and a timed-out or closing connection gets the real grace period.
 * {@code LoopContractTest} runs the same scenarios against this class and against SelectorLoop over loopback
 * sockets, so a difference shows up there.
 * <p>
 * TLS ({@link Connection#startTls}) runs the real {@link TlsLayer} over the peer's bytes, as NioConnection runs it
 * over the socket; delegated tasks run in the next pass (as a command: off the handler's call, then back on the
 * loop), and a peer speaks TLS through {@link Peer#startTls}.
 * <p>
 * Not modelled: admission ({@link ConnectionLimiter}: a refused client never reaches a handler), the PROXY protocol
 * header (read before a handler exists; the handler sees the client it names as {@link Connection#remoteAddress()},
 * which is what {@link #accept} takes; {@code ProxyProtocolLoopTest} tests it on the real loop), several loops, the
 * accept backoff. A handler that throws is closed as the real loop closes it, and the test fails at the end of that
 * pass unless {@link #tolerateHandlerFailures()} was called.
 * <p>
 * Single-threaded: the test's thread is the loop thread. Call handler and connection methods from {@link #execute}
 * (as other stages do on the real loop) or from callbacks.
 */
public final class LoopDouble
{
    /** The fake clock's start (epoch milliseconds). */
    public static final long START_MS = 1_700_000_000_000L;
    /** What a peer takes before it reads, unless a test sets {@link Peer#window(int)}. */
    public static final int DEFAULT_WINDOW_BYTES = 256 * 1024;
    /** Passes without the clock moving after which {@link #runUntilIdle()} gives up: a handler that spins. */
    private static final int MAX_BUSY_PASSES = 200_000;

    private static final int FLUSH_EMPTY = 0;
    private static final int FLUSH_DRAINED = 1;
    private static final int FLUSH_PENDING = 2;
    private static final int FLUSH_HELD = 3;
    private static final int OP_READ = 1;
    private static final int OP_WRITE = 4;
    private static final int OP_CONNECT = 8;

    /** How the far end answers an outbound connect. */
    public enum Answer
    {
        /** Accepts: {@code onOpen} in the next pass. */
        ACCEPT,
        /** Refuses (nothing listening): {@code onConnectFailed("Connection refused")} then {@code onClose}. */
        REFUSE,
        /** Never answers: the connect timeout ends it ({@code onConnectFailed("connect timeout")}, {@code onClose}). */
        SILENCE
    }

    private final BufferPool readPool;
    private final BufferPool writePool;
    private final BufferPool tlsPool = new BufferPool(SelectorLoop.TLS_BUFFER_BYTES, 16);
    private final java.util.concurrent.Executor tlsTasks = this::execute;
    private final DeadlineLists<MemoryConnection> timeouts = new DeadlineLists<>();
    private final DeadlineLists.ExpiryHandler<MemoryConnection> onTimeout = this::onTimeout;
    private final ArrayList<MemoryConnection> connections = new ArrayList<>();
    private MemoryConnection[] ready = new MemoryConnection[8];
    /** The far ends still reading: a peer reads what reached it even after the loop closed its side. */
    private final ArrayList<Peer> peers = new ArrayList<>();
    private final ArrayList<MemoryConnection> arriving = new ArrayList<>();
    private final ArrayList<MemoryConnection> resumed = new ArrayList<>();
    private ArrayList<MemoryConnection> dirty = new ArrayList<>();
    private ArrayList<MemoryConnection> dirtySpare = new ArrayList<>();
    private final ArrayList<MemoryConnection> delayed = new ArrayList<>();
    private final ArrayDeque<Runnable> commands = new ArrayDeque<>();
    private final List<LoopHook> hooks = new ArrayList<>();
    private final List<RuntimeException> failures = new ArrayList<>();

    private ConnectionHandlerFactory factory;
    private long nowMs = START_MS;
    private boolean draining;
    private long drainDeadlineMs;
    private boolean finished;
    private boolean tolerateFailures;
    private int failuresReported;

    /** With the relay's delivery buffer sizes. */
    public LoopDouble()
    {
        this(Relay.DELIVERY_READ_BUFFER_BYTES, Relay.DELIVERY_WRITE_BUFFER_BYTES);
    }

    public LoopDouble(final int readBufferBytes, final int writeBufferBytes)
    {
        this(new BufferPool(readBufferBytes, 16), new BufferPool(writeBufferBytes, 16));
    }

    /** With pools of the caller's (one loop's pools, as SelectorLoop takes them; tests running many loops share). */
    public LoopDouble(final BufferPool readPool, final BufferPool writePool)
    {
        this.readPool = readPool;
        this.writePool = writePool;
    }

    /** The handler factory of inbound connections ({@link #accept}); set before the first accept. */
    public LoopDouble handlerFactory(final ConnectionHandlerFactory factory)
    {
        this.factory = factory;
        return this;
    }

    /** Work run once per pass, as on the real loop (the spool writer's commit completions). */
    public LoopDouble addHook(final LoopHook hook)
    {
        hooks.add(hook);
        return this;
    }

    /** A handler that throws is closed (as the real loop does) and the test goes on; by default it fails. */
    public LoopDouble tolerateHandlerFailures()
    {
        tolerateFailures = true;
        return this;
    }

    /** Runs {@code command} on the loop in the next pass (SelectorLoop#execute). */
    public void execute(final Runnable command)
    {
        commands.add(command);
    }

    /** The fake clock (epoch milliseconds), also each connection's {@link Connection#nowMs()}. */
    public long nowMs()
    {
        return nowMs;
    }

    /** TLS wire buffers taken from the pool and not given back: 0 when every TLS connection is idle. */
    public long tlsBuffersInUse()
    {
        return tlsPool.allocatedCount() - tlsPool.freeCount();
    }

    /** Exceptions thrown by handlers and hooks so far (each closed its connection, as on the real loop). */
    public List<RuntimeException> handlerFailures()
    {
        return failures;
    }

    public boolean isFinished()
    {
        return finished;
    }

    /**
     * A client connects from {@code remote}: accepted in the next pass, where the handler is made by the
     * {@link #handlerFactory} and opened.
     *
     * @return the client's end.
     * @throws IllegalStateException when the loop is draining or stopped (its listeners are closed).
     */
    public Peer accept(final InetSocketAddress remote)
    {
        return accept(remote, 0);
    }

    /** {@link #accept(InetSocketAddress)} on the listener tagged {@code listenerTag} ({@link Connection#listenerTag()}). */
    public Peer accept(final InetSocketAddress remote, final int listenerTag)
    {
        if (draining || finished)
        {
            throw new IllegalStateException("not listening: the loop is draining or stopped");
        }
        if (factory == null)
        {
            throw new IllegalStateException("no handler factory");
        }
        final MemoryConnection connection = new MemoryConnection(remote, false, Answer.ACCEPT, listenerTag);
        arriving.add(connection);
        return connection.peer;
    }

    /** {@link #connect(InetSocketAddress, ConnectionHandlerFactory, long, Answer)} to a server that accepts. */
    public Peer connect(
        final InetSocketAddress remote, final ConnectionHandlerFactory handlerFactory, final long connectTimeoutMs)
    {
        return connect(remote, handlerFactory, connectTimeoutMs, Answer.ACCEPT);
    }

    /**
     * Opens a client connection as SelectorLoop#connect does: the handler is made at once; {@code onOpen} follows in
     * a later pass (never inside this call: a non-blocking connect on loopback never completes at once), or
     * {@code onConnectFailed} then {@code onClose}.
     *
     * @return the server's end.
     */
    public Peer connect(
        final InetSocketAddress remote, final ConnectionHandlerFactory handlerFactory, final long connectTimeoutMs,
        final Answer answer)
    {
        if (connectTimeoutMs <= 0)
        {
            throw new IllegalArgumentException("connect timeout must be positive: " + connectTimeoutMs);
        }
        final MemoryConnection connection = new MemoryConnection(remote, true, answer, 0);
        connection.idleTimeoutMs = connectTimeoutMs;
        connection.connecting = true;
        connection.interestOps = OP_CONNECT;
        connection.slot = connections.size();
        connections.add(connection);
        restartTimeout(connection);
        connection.handler = handlerFactory.newHandler(connection);
        return connection.peer;
    }

    /** SelectorLoop#drain: in the next pass every handler gets {@code onDrain}; the loop ends when all are closed. */
    public void drain(final long timeoutMs)
    {
        execute(() -> beginDrain(timeoutMs));
    }

    /** SelectorLoop#stop: closes every connection now ({@code onClose} each) and ends the loop. */
    public void stop()
    {
        if (!finished)
        {
            closeAll();
            finished = true;
        }
        reportFailures();
    }

    /**
     * Runs passes until one does nothing (no I/O, command, hook work, resumption, flush or timeout), without
     * moving the clock.
     *
     * @return how many passes ran.
     * @throws AssertionError when the loop never gets idle (a handler that spins).
     */
    public int runUntilIdle()
    {
        for (int passes = 1; passes <= MAX_BUSY_PASSES; passes++)
        {
            if (runPass() == 0)
            {
                return passes;
            }
        }
        throw new AssertionError("loop still busy after " + MAX_BUSY_PASSES + " passes at the same instant");
    }

    /** Lets {@code ms} pass: passes run until idle, the clock moving to each due timeout or tarpit end on the way. */
    public void advance(final long ms)
    {
        runUntil(() -> false, ms);
    }

    /**
     * Runs passes until {@code condition} holds (checked after each pass), moving the clock to the next due event
     * whenever a pass did nothing, for at most {@code maxMs} of fake time.
     *
     * @return whether the condition holds.
     */
    public boolean runUntil(final BooleanSupplier condition, final long maxMs)
    {
        final long endMs = nowMs + maxMs;
        int busy = 0;
        while (true)
        {
            final int work = runPass();
            if (condition.getAsBoolean())
            {
                return true;
            }
            if (work > 0 && ++busy < MAX_BUSY_PASSES)
            {
                continue;
            }
            if (work > 0)
            {
                throw new AssertionError("loop still busy after " + MAX_BUSY_PASSES + " passes at the same instant");
            }
            busy = 0;
            if (nowMs >= endMs)
            {
                return false;
            }
            final long nextMs = nextEventMs();
            // nothing due later than now: nothing will happen before the end
            nowMs = nextMs > nowMs ? Math.min(endMs, nextMs) : endMs;
        }
    }

    /** One pass of the loop (SelectorLoop#doWork); returns how much it did. */
    public int runPass()
    {
        // the peers read on their own, whatever the loop does
        int work = peersRead();
        if (finished)
        {
            return work;
        }
        if (draining && (connections.isEmpty() || nowMs >= drainDeadlineMs))
        {
            stop();
            return work + 1;
        }
        work += select();
        work += drainCommands();
        for (int i = 0, n = hooks.size(); i < n; i++)
        {
            work += runHook(hooks.get(i));
        }
        work += resumeDelayed();
        work += deliverResumed();
        work += flushDirty();
        for (int i = 0, n = hooks.size(); i < n; i++)
        {
            try
            {
                hooks.get(i).endOfPass();
            }
            catch (final RuntimeException ex)
            {
                onHookFailure(ex);
            }
        }
        work += timeouts.poll(nowMs, onTimeout, 256);
        reportFailures();
        return work;
    }

    private long nextEventMs()
    {
        long next = timeouts.nextDeadlineMs();
        for (int i = 0, n = delayed.size(); i < n; i++)
        {
            next = Math.min(next, delayed.get(i).resumeAtMs);
        }
        if (draining && !finished)
        {
            next = Math.min(next, drainDeadlineMs);
        }
        return next;
    }

    private void reportFailures()
    {
        if (!tolerateFailures && failures.size() > failuresReported)
        {
            final RuntimeException first = failures.get(failuresReported);
            failuresReported = failures.size();
            throw new AssertionError("handler failed (the real loop closes the connection): " + first, first);
        }
    }

    private int runHook(final LoopHook hook)
    {
        try
        {
            return hook.doWork(nowMs);
        }
        catch (final RuntimeException ex)
        {
            onHookFailure(ex);
            return 1;
        }
    }

    private void onHookFailure(final RuntimeException ex)
    {
        failures.add(ex);
    }

    private int peersRead()
    {
        int work = 0;
        for (int i = peers.size() - 1; i >= 0; i--)
        {
            final Peer peer = peers.get(i);
            work += peer.readArrived();
            if (peer.sawEnd())
            {
                peers.remove(i);
            }
        }
        return work;
    }

    /** The I/O of one select: each ready connection (onReady), then new connections. */
    private int select()
    {
        int work = 0;
        // a copy: closing a connection moves another into its slot
        ready = connections.toArray(ready);
        for (int i = 0, n = connections.size(); i < n; i++)
        {
            work += onReady(ready[i]);
        }
        while (!arriving.isEmpty())
        {
            adopt(arriving.remove(0));
            work++;
        }
        return work;
    }

    /** SelectorLoop#onReady, for one connection if its interest and its peer make it ready; returns 1 if it was. */
    private int onReady(final MemoryConnection connection)
    {
        if (connection.closed)
        {
            return 0;
        }
        if (connection.connecting)
        {
            if (connection.answer == Answer.SILENCE)
            {
                return 0;
            }
            try
            {
                if (connection.answer == Answer.REFUSE)
                {
                    connectFailed(connection, "Connection refused");
                    return 1;
                }
                onConnected(connection);
            }
            catch (final RuntimeException ex)
            {
                onHandlerFailure(connection, ex);
            }
            return 1;
        }
        final Peer peer = connection.peer;
        // a socket in error is ready for whatever it is interested in (epoll reports EPOLLERR/EPOLLHUP)
        final boolean broken = peer.state != Peer.OPEN;
        final boolean readable = (connection.interestOps & OP_READ) != 0 && (broken || peer.toLoop.size() > 0);
        final boolean writable = (connection.interestOps & OP_WRITE) != 0 && (broken || peer.room() > 0);
        if (!readable && !writable)
        {
            return 0;
        }
        try
        {
            if (connection.outbound && readable && !connection.inputPaused)
            {
                if (!readAndDeliver(connection))
                {
                    return 1;
                }
            }
            if (writable)
            {
                final int flushed = connection.flushOutput();
                if (connection.closed)
                {
                    return 1;
                }
                if (flushed == FLUSH_HELD && !connection.closing)
                {
                    connection.outputPending = false;
                    updateInterest(connection);
                }
                else if (flushed != FLUSH_PENDING)
                {
                    connection.outputPending = false;
                    if (connection.closing)
                    {
                        close(connection);
                        return 1;
                    }
                    if (flushed == FLUSH_DRAINED)
                    {
                        connection.handler.onOutputDrained();
                    }
                    if (connection.tls == null || flushed == FLUSH_DRAINED)
                    {
                        connection.deliverInput();
                    }
                    markDirtyIfOutput(connection);
                    updateInterest(connection);
                }
            }
            if (!connection.outbound && !connection.closed && readable && !connection.inputPaused &&
                !connection.outputPending)
            {
                readAndDeliver(connection);
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
        return 1;
    }

    private boolean readAndDeliver(final MemoryConnection connection) throws IOException
    {
        if (!connection.readFromSocket())
        {
            close(connection);
            return false;
        }
        connection.deliverInput();
        markDirtyIfOutput(connection);
        return !connection.closed;
    }

    private void onConnected(final MemoryConnection connection)
    {
        connection.connecting = false;
        restartTimeout(connection);
        updateInterest(connection);
        connection.handler.onOpen();
        markDirtyIfOutput(connection);
    }

    private void connectFailed(final MemoryConnection connection, final String reason)
    {
        try
        {
            connection.handler.onConnectFailed(reason);
        }
        catch (final RuntimeException ex)
        {
            failures.add(ex);
        }
        close(connection);
    }

    private void adopt(final MemoryConnection connection)
    {
        connection.idleTimeoutMs = 300_000;
        connection.interestOps = OP_READ;
        connection.slot = connections.size();
        connections.add(connection);
        restartTimeout(connection);
        try
        {
            connection.handler = factory.newHandler(connection);
            connection.handler.onOpen();
            if (draining)
            {
                connection.handler.onDrain();
            }
            markDirtyIfOutput(connection);
        }
        catch (final RuntimeException ex)
        {
            onHandlerFailure(connection, ex);
        }
    }

    private int drainCommands()
    {
        int count = 0;
        Runnable command;
        while (count < 256 && (command = commands.poll()) != null)
        {
            command.run();
            count++;
        }
        return count;
    }

    private int deliverResumed()
    {
        int count = 0;
        for (int i = 0; i < resumed.size(); i++)
        {
            final MemoryConnection connection = resumed.get(i);
            connection.resumeQueued = false;
            if (connection.closed)
            {
                continue;
            }
            try
            {
                if (!connection.outputPending || connection.outbound)
                {
                    connection.deliverInput();
                }
                markDirtyIfOutput(connection);
                updateInterest(connection);
            }
            catch (final RuntimeException ex)
            {
                onHandlerFailure(connection, ex);
            }
            count++;
        }
        resumed.clear();
        return count;
    }

    private int flushDirty()
    {
        final ArrayList<MemoryConnection> flushing = dirty;
        dirty = dirtySpare;
        dirtySpare = flushing;
        int count = 0;
        for (int i = 0, n = flushing.size(); i < n; i++)
        {
            final MemoryConnection connection = flushing.get(i);
            connection.dirty = false;
            if (connection.closed)
            {
                continue;
            }
            count++;
            try
            {
                final int flushed = connection.flushOutput();
                if (connection.closed)
                {
                    continue;
                }
                if (flushed == FLUSH_PENDING)
                {
                    connection.outputPending = true;
                    updateInterest(connection);
                    continue;
                }
                connection.outputPending = false;
                if (flushed == FLUSH_HELD && !connection.closing)
                {
                    updateInterest(connection);
                    continue;
                }
                if (connection.closing)
                {
                    close(connection);
                    continue;
                }
                if (flushed == FLUSH_DRAINED)
                {
                    connection.handler.onOutputDrained();
                    if (connection.closed)
                    {
                        continue;
                    }
                }
                if (connection.hasBufferedInput() && (connection.tls == null || flushed == FLUSH_DRAINED))
                {
                    queueResume(connection);
                }
                updateInterest(connection);
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
        flushing.clear();
        return count;
    }

    private void markDirty(final MemoryConnection connection)
    {
        if (!connection.dirty)
        {
            connection.dirty = true;
            dirty.add(connection);
        }
    }

    private void markDirtyIfOutput(final MemoryConnection connection)
    {
        if (connection.writeBuffer != null || connection.closing)
        {
            markDirty(connection);
        }
    }

    private int resumeDelayed()
    {
        int count = 0;
        for (int i = delayed.size() - 1; i >= 0; i--)
        {
            final MemoryConnection connection = delayed.get(i);
            if (connection.closed || nowMs >= connection.resumeAtMs)
            {
                delayed.remove(i);
                if (!connection.closed)
                {
                    connection.resumeInput();
                    count++;
                }
            }
        }
        return count;
    }

    private void queueResume(final MemoryConnection connection)
    {
        if (!connection.resumeQueued)
        {
            connection.resumeQueued = true;
            resumed.add(connection);
        }
    }

    private void updateInterest(final MemoryConnection connection)
    {
        if (connection.closed || connection.connecting)
        {
            return;
        }
        int ops = 0;
        if (!connection.inputPaused && (!connection.outputPending || connection.outbound) && !connection.closing &&
            (connection.tls == null || !connection.tls.taskRunning && !connection.tls.plaintextFull))
        {
            ops |= OP_READ;
        }
        if (connection.outputPending)
        {
            ops |= OP_WRITE;
        }
        connection.interestOps = ops;
    }

    private void restartTimeout(final MemoryConnection connection)
    {
        if (!connection.closing && !connection.closed && (connection.tls == null || !connection.tls.handshaking))
        {
            timeouts.arm(connection, nowMs, connection.idleTimeoutMs);
        }
    }

    private void startHandshake(final MemoryConnection connection, final long timeoutMs)
    {
        if (!connection.closing && !connection.closed)
        {
            timeouts.arm(connection, nowMs, timeoutMs);
        }
    }

    private void tlsEstablished(final MemoryConnection connection)
    {
        restartTimeout(connection);
        markDirty(connection);
        if (connection.hasBufferedInput())
        {
            queueResume(connection);
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

    private void tlsFailed(final MemoryConnection connection, final String reason)
    {
        if (connection.closed)
        {
            return;
        }
        connection.tls.sendAlertQuietly(connection.wire);
        try
        {
            connection.handler.onTlsFailed(reason);
        }
        catch (final RuntimeException ex)
        {
            failures.add(ex);
        }
        close(connection);
    }

    private void startCloseGrace(final MemoryConnection connection)
    {
        if (!connection.closed && connection.deadlineMs() > nowMs + SelectorLoop.CLOSE_GRACE_MS)
        {
            timeouts.arm(connection, nowMs, SelectorLoop.CLOSE_GRACE_MS);
        }
    }

    private void onTimeout(final MemoryConnection connection, final long expiredAtMs)
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
            connection.closeAfterFlush();
            startCloseGrace(connection);
        }
    }

    private void beginDrain(final long timeoutMs)
    {
        if (draining)
        {
            return;
        }
        draining = true;
        drainDeadlineMs = nowMs + timeoutMs;
        for (int i = connections.size() - 1; i >= 0; i--)
        {
            final MemoryConnection connection = connections.get(i);
            try
            {
                connection.handler.onDrain();
                markDirtyIfOutput(connection);
            }
            catch (final RuntimeException ex)
            {
                onHandlerFailure(connection, ex);
            }
        }
    }

    private void onHandlerFailure(final MemoryConnection connection, final RuntimeException ex)
    {
        failures.add(ex);
        close(connection);
    }

    private void close(final MemoryConnection connection)
    {
        if (connection.closed)
        {
            return;
        }
        connection.closed = true;
        connection.interestOps = 0;
        connection.peer.onLoopClosed();
        connection.releaseBuffers();
        timeouts.cancel(connection);
        final int slot = connection.slot;
        final int last = connections.size() - 1;
        if (slot >= 0 && slot <= last)
        {
            final MemoryConnection moved = connections.get(last);
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
                failures.add(ex);
            }
        }
    }

    private void closeAll()
    {
        for (int i = connections.size() - 1; i >= 0; i--)
        {
            close(connections.get(i));
        }
    }

    /** NioConnection over memory: the same fields and the same steps, a {@link Peer} where the socket was. */
    private final class MemoryConnection extends DeadlineLists.Timer implements Connection
    {
        final boolean outbound;
        final Answer answer;
        final Peer peer;
        final InetSocketAddress remoteAddress;
        final byte[] remoteAddressBytes;
        ConnectionHandler handler;
        ByteBuffer readBuffer;
        int readStart;
        ByteBuffer writeBuffer;
        int interestOps;
        boolean connecting;
        boolean inputPaused;
        boolean closing;
        boolean closed;
        boolean outputPending;
        boolean dirty;
        boolean resumeQueued;
        long idleTimeoutMs;
        long resumeAtMs;
        int slot = -1;
        int writesSinceFlush;
        final List<Integer> writesPerFlush = new ArrayList<>();
        final int listenerTag;
        TlsLayer tls;
        boolean discardInput;
        private boolean delivering;
        /** The peer's end as a channel, for the TLS layer (its reads and writes are the socket's). */
        final ByteChannel wire = new ByteChannel()
        {
            @Override
            public int read(final ByteBuffer dst) throws IOException
            {
                return peer.loopReads(dst);
            }

            @Override
            public int write(final ByteBuffer src) throws IOException
            {
                return peer.loopWrites(src);
            }

            @Override
            public boolean isOpen()
            {
                return !closed;
            }

            @Override
            public void close()
            {
            }
        };

        MemoryConnection(
            final InetSocketAddress remoteAddress, final boolean outbound, final Answer answer, final int listenerTag)
        {
            this.listenerTag = listenerTag;
            this.remoteAddress = remoteAddress;
            this.remoteAddressBytes = remoteAddress.getAddress().getAddress();
            this.outbound = outbound;
            this.answer = answer;
            this.peer = new Peer(this);
            peers.add(peer);
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
            return writeBuffer == null ? writePool.bufferSize() : writeBuffer.remaining();
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
                throw new IllegalStateException("write of " + length + " bytes after close");
            }
            if (writeBuffer == null)
            {
                writeBuffer = writePool.acquire();
            }
            if (writeBuffer.remaining() < length)
            {
                throw new IllegalStateException(
                    "reply of " + length + " bytes does not fit: " + writeBuffer.remaining());
            }
            writeBuffer.put(bytes, offset, length);
            writesSinceFlush++;
            markDirty(this);
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
                writeBuffer = writePool.acquire();
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
                writesSinceFlush++;
                markDirty(this);
            }
            else if (start == 0)
            {
                writePool.release(writeBuffer);
                writeBuffer = null;
            }
            return result;
        }

        @Override
        public void pauseInput()
        {
            inputPaused = true;
            updateInterest(this);
        }

        @Override
        public void pauseInputFor(final long delayMs)
        {
            pauseInput();
            resumeAtMs = nowMs + delayMs;
            if (!delayed.contains(this))
            {
                delayed.add(this);
            }
        }

        @Override
        public void resumeInput()
        {
            if (inputPaused)
            {
                inputPaused = false;
                queueResume(this);
            }
        }

        @Override
        public void closeAfterFlush()
        {
            if (!closing)
            {
                closing = true;
                startCloseGrace(this);
                markDirty(this);
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
                writePool.release(writeBuffer);
                writeBuffer = null;
            }
            if (tls != null)
            {
                tls.discardOutput();
                tls.closeNotifyQueued = true;
            }
            markDirty(this);
        }

        @Override
        public void idleTimeoutMs(final long timeoutMs)
        {
            this.idleTimeoutMs = timeoutMs;
            restartTimeout(this);
        }

        @Override
        public long nowMs()
        {
            return nowMs;
        }

        @Override
        public int loopIndex()
        {
            return 0;
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
            if (readPool.bufferSize() < TlsLayer.plaintextBytesNeeded(engine))
            {
                throw new IllegalStateException("read buffers of " + readPool.bufferSize() + " bytes cannot take a " +
                    "TLS record's plaintext (" + TlsLayer.plaintextBytesNeeded(engine) + ")");
            }
            tls = new TlsLayer(engine, tlsPool, tlsTasks, () -> execute(this::onTlsTasksDone));
            if (writeBuffer != null)
            {
                tls.queueRaw(writeBuffer);
                writePool.release(writeBuffer);
                writeBuffer = null;
            }
            if (delivering)
            {
                discardInput = true;
            }
            else
            {
                discardBufferedInput();
            }
            startHandshake(this, handshakeTimeoutMs);
            try
            {
                tls.begin();
            }
            catch (final SSLException ex)
            {
                tlsFailed(this, NioConnection.describe(ex));
                return;
            }
            markDirty(this);
            updateInterest(this);
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

        private boolean readTls() throws IOException
        {
            final int read = tls.read(wire);
            if (tls.moved)
            {
                restartTimeout(this);
            }
            return unwrapInput() && read >= 0;
        }

        private boolean unwrapInput()
        {
            if (!tls.hasCiphertext() || tls.taskRunning)
            {
                return !tls.inboundClosed;
            }
            if (readBuffer == null)
            {
                readBuffer = readPool.acquire();
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
                tlsFailed(this, NioConnection.describe(ex));
                return false;
            }
            if (readStart >= readBuffer.position())
            {
                readPool.release(readBuffer);
                readBuffer = null;
                readStart = 0;
            }
            afterTlsStep();
            if (result == TlsLayer.UNWRAP_CLOSED)
            {
                close(this);
                return false;
            }
            if (wasFull != tls.plaintextFull)
            {
                updateInterest(this);
            }
            return true;
        }

        private void afterTlsStep()
        {
            if (tls.wantsWrap())
            {
                markDirty(this);
            }
            else if (tls.unwrapPending())
            {
                queueResume(this);
            }
            if (tls.takeEstablished())
            {
                tlsEstablished(this);
            }
        }

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
                markDirty(this);
                updateInterest(this);
                queueResume(this);
            }
        }

        private void discardBufferedInput()
        {
            if (readBuffer != null)
            {
                readPool.release(readBuffer);
                readBuffer = null;
                readStart = 0;
            }
        }

        boolean readFromSocket() throws IOException
        {
            if (tls != null)
            {
                return readTls();
            }
            if (readBuffer == null)
            {
                readBuffer = readPool.acquire();
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
            final int read = peer.loopReads(readBuffer);
            if (read < 0)
            {
                return false;
            }
            if (read > 0)
            {
                restartTimeout(this);
            }
            return true;
        }

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
                    readPool.release(readBuffer);
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
            if (writeBuffer.position() > 0 && writesSinceFlush > 0)
            {
                writesPerFlush.add(writesSinceFlush);
                writesSinceFlush = 0;
            }
            writeBuffer.flip();
            final int written = peer.loopWrites(writeBuffer);
            if (written > 0)
            {
                restartTimeout(this);
            }
            if (!writeBuffer.hasRemaining())
            {
                writePool.release(writeBuffer);
                writeBuffer = null;
                return FLUSH_DRAINED;
            }
            writeBuffer.compact();
            return FLUSH_PENDING;
        }

        private int flushTls() throws IOException
        {
            if (writeBuffer != null && writeBuffer.position() > 0 && writesSinceFlush > 0)
            {
                writesPerFlush.add(writesSinceFlush);
                writesSinceFlush = 0;
            }
            final int flushed;
            try
            {
                flushed = tls.flush(wire, writeBuffer, closing);
            }
            catch (final SSLException ex)
            {
                tlsFailed(this, NioConnection.describe(ex));
                return FLUSH_EMPTY;
            }
            if (tls.moved)
            {
                restartTimeout(this);
            }
            if (writeBuffer != null && writeBuffer.position() == 0)
            {
                writePool.release(writeBuffer);
                writeBuffer = null;
            }
            afterTlsStep();
            return flushed;
        }

        void releaseBuffers()
        {
            if (tls != null)
            {
                tls.releaseBuffers();
            }
            if (readBuffer != null)
            {
                readPool.release(readBuffer);
                readBuffer = null;
            }
            if (writeBuffer != null)
            {
                writePool.release(writeBuffer);
                writeBuffer = null;
            }
        }

        @Override
        public String toString()
        {
            return "memory connection " + remoteAddress;
        }
    }

    /**
     * The far end of one connection, played by the test: it sends bytes (they wait, like a kernel's receive queue,
     * until the loop reads them), and takes what the loop wrote only as far as its window allows, reading it at the
     * start of each pass unless told to stop. It also shows the loop's side of the connection to the test.
     */
    public static final class Peer
    {
        static final int OPEN = 0;
        /** The peer closed its socket after reading everything (FIN): one more write is taken, then it fails. */
        static final int CLOSED = 1;
        /** Reset (closed with unread data, or written to after closing): reads end and writes fail. */
        static final int RESET = 2;

        private final MemoryConnection connection;
        final ByteQueue toLoop = new ByteQueue();
        private final ByteQueue inFlight = new ByteQueue();
        private final ByteArrayOutputStream received = new ByteArrayOutputStream();
        private long receivedTotal;
        private int window = DEFAULT_WINDOW_BYTES;
        private boolean reading = true;
        int state = OPEN;
        private boolean loopClosed;
        /** The loop takes at most this many bytes per read (record boundaries split where a test wants them). */
        private int maxBytesPerRead = Integer.MAX_VALUE;
        /** The peer's TLS once it started; what it sends and receives goes through it. */
        private TlsEndpoint tls;

        private Peer(final MemoryConnection connection)
        {
            this.connection = connection;
        }

        /** The peer sends {@code bytes} (encrypted once it speaks TLS); the loop reads them when it reads. */
        public Peer send(final byte[] bytes)
        {
            if (tls != null)
            {
                tls.send(bytes);
                return sendRaw(tls.pump());
            }
            return sendRaw(bytes);
        }

        /** Sends {@code bytes} as they are, even under TLS (an attacker's injected plaintext, broken records). */
        public Peer sendRaw(final byte[] bytes)
        {
            if (state == OPEN && !loopClosed)
            {
                toLoop.add(bytes, 0, bytes.length);
            }
            return this;
        }

        /**
         * The peer speaks TLS from now on with {@code engine} (client mode for an inbound connection): its first
         * flight goes out at once; what it reads from now on is decrypted into what it received.
         */
        public Peer startTls(final SSLEngine engine)
        {
            tls = new TlsEndpoint(engine);
            return sendRaw(tls.pump());
        }

        /** The peer's TLS (null before {@link #startTls}). */
        public TlsEndpoint tls()
        {
            return tls;
        }

        /** The loop's reads take at most {@code bytes} each (TLS records split across reads). */
        public Peer maxBytesPerRead(final int bytes)
        {
            maxBytesPerRead = bytes;
            return this;
        }

        /** Sends {@code text} as ISO-8859-1 bytes. */
        public Peer send(final String text)
        {
            return send(text.getBytes(StandardCharsets.ISO_8859_1));
        }

        /** Stops reading: what the loop writes piles up in the window, then the loop's output stays pending. */
        public Peer stopReading()
        {
            reading = false;
            return this;
        }

        /** Reads again, from the start of the next pass. */
        public Peer startReading()
        {
            reading = true;
            return this;
        }

        /** Bytes the peer's side takes before its application reads them (its receive buffer and ours). */
        public Peer window(final int bytes)
        {
            window = bytes;
            return this;
        }

        /**
         * The peer closes its socket: the loop reads what was sent before, then the end (and closes). Closing with
         * unread bytes resets the connection, as a kernel does: the loop's next read or write fails.
         */
        public void close()
        {
            if (state == OPEN)
            {
                state = inFlight.size() > 0 ? RESET : CLOSED;
                inFlight.clear();
            }
        }

        /** What the peer has read so far and not taken yet, as ISO-8859-1 text; cleared. */
        public String takeReceived()
        {
            return new String(takeReceivedBytes(), StandardCharsets.ISO_8859_1);
        }

        public byte[] takeReceivedBytes()
        {
            final byte[] bytes = received.toByteArray();
            received.reset();
            return bytes;
        }

        /** Bytes read since the start, taken or not. */
        public long receivedTotal()
        {
            return receivedTotal;
        }

        /** The loop has closed the connection and the peer has read all it wrote before. */
        public boolean sawEnd()
        {
            return loopClosed && inFlight.size() == 0;
        }

        public Connection connection()
        {
            return connection;
        }

        public ConnectionHandler handler()
        {
            return connection.handler;
        }

        /** {@code onClose} was called (once). */
        public boolean isClosed()
        {
            return connection.closed;
        }

        /** The connection is closing ({@code closeAfterFlush}, {@code closeNow}, a timeout) or closed. */
        public boolean isClosing()
        {
            return connection.closing || connection.closed;
        }

        public boolean isInputPaused()
        {
            return connection.inputPaused;
        }

        /** The last flush left output the peer did not take. */
        public boolean isOutputPending()
        {
            return connection.outputPending;
        }

        /** Input read from the peer that the handler has not consumed. */
        public int bufferedInput()
        {
            return connection.readBuffer == null ? 0 : connection.readBuffer.position() - connection.readStart;
        }

        /** The idle timeout in force (as last set by the handler). */
        public long idleTimeoutMs()
        {
            return connection.idleTimeoutMs;
        }

        /** When the connection's timeout is due on the loop's clock ({@code Long.MAX_VALUE}: none armed). */
        public long deadlineMs()
        {
            return connection.deadlineMs();
        }

        /** For each flush that wrote something: how many {@code write} calls filled it. */
        public List<Integer> writesPerFlush()
        {
            return connection.writesPerFlush;
        }

        private int room()
        {
            return state == OPEN ? Math.max(0, window - inFlight.size()) : Integer.MAX_VALUE;
        }

        /** The peer application reads what reached it (decrypting it under TLS); returns the bytes read. */
        private int readArrived()
        {
            if (!reading || inFlight.size() == 0)
            {
                return 0;
            }
            final int count = inFlight.size();
            if (tls == null)
            {
                inFlight.drainTo(received);
                receivedTotal += count;
                return count;
            }
            final ByteArrayOutputStream cipher = new ByteArrayOutputStream(count);
            inFlight.drainTo(cipher);
            tls.receive(cipher.toByteArray(), 0, count);
            sendRaw(tls.pump());
            final byte[] plain = tls.takePlaintext();
            received.write(plain, 0, plain.length);
            receivedTotal += plain.length;
            return count;
        }

        /** The loop's read: bytes sent, then -1 at the peer's close; fails once they are read after a reset. */
        private int loopReads(final ByteBuffer dst) throws IOException
        {
            if (toLoop.size() > 0)
            {
                if (dst.remaining() > maxBytesPerRead)
                {
                    final int limit = dst.limit();
                    dst.limit(dst.position() + maxBytesPerRead);
                    try
                    {
                        return toLoop.take(dst);
                    }
                    finally
                    {
                        dst.limit(limit);
                    }
                }
                return toLoop.take(dst);
            }
            if (state == RESET)
            {
                throw new IOException("Connection reset by peer");
            }
            return state == CLOSED ? -1 : 0;
        }

        /** The loop's write: as much as the window takes; after the peer closed, once more, then a failure. */
        private int loopWrites(final ByteBuffer src) throws IOException
        {
            if (state == RESET)
            {
                throw new IOException("Broken pipe");
            }
            if (state == CLOSED)
            {
                // the peer's kernel answers these bytes with a reset
                final int count = src.remaining();
                src.position(src.limit());
                state = RESET;
                return count;
            }
            final int count = Math.min(src.remaining(), room());
            inFlight.add(src, count);
            return count;
        }

        private void onLoopClosed()
        {
            loopClosed = true;
            toLoop.clear();
        }
    }

    /** A growable FIFO of bytes. */
    static final class ByteQueue
    {
        private byte[] bytes = new byte[256];
        private int start;
        private int end;

        int size()
        {
            return end - start;
        }

        void add(final byte[] source, final int offset, final int length)
        {
            ensure(length);
            System.arraycopy(source, offset, bytes, end, length);
            end += length;
        }

        void add(final ByteBuffer source, final int length)
        {
            ensure(length);
            source.get(bytes, end, length);
            end += length;
        }

        int take(final ByteBuffer dst)
        {
            final int count = Math.min(dst.remaining(), size());
            dst.put(bytes, start, count);
            start += count;
            return count;
        }

        void drainTo(final ByteArrayOutputStream out)
        {
            out.write(bytes, start, size());
            clear();
        }

        void clear()
        {
            start = 0;
            end = 0;
        }

        private void ensure(final int length)
        {
            if (end + length <= bytes.length)
            {
                return;
            }
            final int size = size();
            if (size + length > bytes.length / 2)
            {
                final byte[] grown = new byte[Math.max(2 * bytes.length, size + length)];
                System.arraycopy(bytes, start, grown, 0, size);
                bytes = grown;
            }
            else
            {
                System.arraycopy(bytes, start, bytes, 0, size);
            }
            start = 0;
            end = size;
        }
    }
}
