package dev.relay.net;

import org.agrona.concurrent.AgentTerminationException;
import org.jctools.queues.MpscArrayQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * One selector loop: accepts on its own SO_REUSEPORT listeners (inbound) or opens client connections
 * ({@link #connect}, delivery) and owns each connection for life.
 * <p>
 * A pass: select (parking only when nothing is pending) → accept/read/write the ready keys → commands from other
 * threads → hooks (spool commit completions) → input of resumed connections → one flush per dirty connection →
 * hooks' end of pass (group commit hand-off) → expired timeouts. Select blocks until the earliest timeout at most.
 * <p>
 * What a {@link ConnectionHandler} is promised, and gets only from here: {@code onOpen} once connected (or
 * {@code onConnectFailed} then {@code onClose}); {@code onInput} with what was read, again with unconsumed bytes
 * once more arrive, input resumes or output drains, never while paused or closing, nor (inbound only) while output
 * is blocked; {@code onOutputDrained}
 * after each flush that empties its output buffer; {@code onTimeout} when its idle timeout passes without a read or
 * a write that moved bytes; {@code onDrain} at shutdown; {@code onClose} exactly once. The contract test
 * ({@code LoopContractTest} in this package's tests) runs the same scenarios against this loop over loopback
 * sockets and against {@code LoopDouble}, the one test double of this side that handler tests use.
 * <p>
 * Connection states and their timeouts (set by the handler through {@link Connection#idleTimeoutMs(long)}; each read
 * or write that moves bytes restarts it):
 * <ul>
 *   <li>awaiting the PROXY header (listeners given {@link #proxyProtocol}): no handler yet; the header must arrive
 *   whole within {@link ProxyPolicy#headerTimeoutMs()} of the accept (reads do not extend it), else the connection is
 *   closed and logged, as it is when the peer is not a trusted proxy (at accept, without reading) or sends a
 *   malformed header. Once the header is read, the client it names is the connection's remote address and is
 *   admitted by the {@link ConnectionLimiter} (over its limits: 421 and close), and the handler opens;</li>
 *   <li>connecting (outbound): the connect timeout ({@code delivery.timeout.connect});</li>
 *   <li>waiting for a command: {@code smtp.timeout.command} (RFC 5321 §4.5.3.2.7, 5 minutes);</li>
 *   <li>in DATA/BDAT, between reads: {@code smtp.timeout.data} (§4.5.3.2.5-6, 3 minutes);</li>
 *   <li>paused for a spool commit: not read from; the same timeout keeps running;</li>
 *   <li>output blocked (client not reading its replies): not read from; the timeout keeps running;</li>
 *   <li>TLS handshake ({@link Connection#startTls}): the handshake timeout given there, for the whole handshake
 *   (reads and writes do not restart it: a client that trickles its handshake is a slowloris too); then
 *   {@code onTlsFailed} and close. Not read from while a delegated task (key exchange, signature) runs on the
 *   task executor;</li>
 *   <li>closing: output flushed (then close_notify over TLS), then closed; at most {@link #CLOSE_GRACE_MS} more,
 *   whatever moves.</li>
 * </ul>
 * The timeouts are a handful of fixed durations, kept in {@link DeadlineLists} on a monotonic clock.
 * Other threads talk to the loop only through {@link #execute(Runnable)} and {@link #wakeup()}.
 * <p>
 * One state machine, kept whole past the ~500-line rule of issue 10: the life of its connections through the states
 * above (their fields are {@link NioConnection}'s), driven by the events of a pass: ready keys, commands, resumes,
 * flushes, expired timeouts, drain. The steps that do not touch the selector or the listeners (a ready connection's
 * connect, read and write, hooks, tarpits, resumed input, flushes, timeouts, interest ops, close) live in
 * {@link ConnectionLoop}, shared with the test double {@code LoopDouble}, so tests of handlers run them and not a
 * copy. What is not that machine lives beside it: the listening sockets
 * ({@link Acceptor}), the 421s of refused clients ({@link Refusals}), the PROXY header grammar
 * ({@link ProxyHeaderParser}), the timeout lists ({@link DeadlineLists}) and the TLS engine ({@link TlsLayer}).
 */
public final class SelectorLoop extends ConnectionLoop implements Runnable
{
    private static final Logger LOG = LoggerFactory.getLogger(SelectorLoop.class);
    private static final long SELECT_TIMEOUT_MS = 100;
    /** TLS wire buffers: two records of the JDK's 16,709-byte packet size, so one read or write moves two. */
    static final int TLS_BUFFER_BYTES = 34 * 1024;
    private static final int POOLED_TLS_BUFFERS = 256;

    private final int index;
    private final Selector selector;
    private final Acceptor acceptor;
    private BufferPool tlsPool;
    private Executor tlsTasks = Runnable::run;
    private final ConnectionLimiter limiter;
    private final MpscArrayQueue<Runnable> commands = new MpscArrayQueue<>(1024);
    private final AtomicBoolean parked = new AtomicBoolean();
    /** Origin of {@link #timeoutNowMs}: timeouts run on {@code System.nanoTime()}, which never steps back. */
    private final long clockOriginNs = System.nanoTime();
    /**
     * Sockets of connections closed in this pass: their keys are cancelled, and they are closed after the next select
     * has deregistered the keys. A registered non-blocking socket that is closed at once costs two more syscalls
     * (the JDK reads SO_LINGER and calls shutdown, since it must defer the close itself); a deregistered one is
     * simply closed. Swapped with the spare before each select.
     */
    private ArrayList<SocketChannel> closeAfterSelect = new ArrayList<>();
    private ArrayList<SocketChannel> closeAfterSelectSpare = new ArrayList<>();
    private final Consumer<SelectionKey> onReady = this::onReady;
    private final AtomicLong acceptedTotal = new AtomicLong();
    private final AtomicLong refusedTotal = new AtomicLong();
    private final AtomicLong handlerErrors = new AtomicLong();
    private final AtomicLong proxyRefusedTotal = new AtomicLong();
    /** Listener tags whose connections start with a PROXY header (bit per tag), and the policy for them. */
    private int proxiedTags;
    private ProxyPolicy proxyPolicy;

    private List<SelectorLoop> acceptTargets;
    private int nextAcceptTarget;
    /** Set before each select: the first ready key (or the pass, if none) reads the clocks again. */
    private boolean clockStale;
    private volatile boolean stopRequested;
    private volatile boolean finished;

    public SelectorLoop(
        final int index,
        final List<ServerSocketChannel> listeners,
        final BufferPool readPool,
        final BufferPool writePool,
        final ConnectionLimiter limiter) throws IOException
    {
        this(index, listeners, new int[listeners.size()], readPool, writePool, limiter);
    }

    /**
     * @param listenerTags for each listener, the tag its connections carry ({@link Connection#listenerTag()}).
     */
    public SelectorLoop(
        final int index,
        final List<ServerSocketChannel> listeners,
        final int[] listenerTags,
        final BufferPool readPool,
        final BufferPool writePool,
        final ConnectionLimiter limiter) throws IOException
    {
        super(readPool, writePool);
        this.index = index;
        this.limiter = limiter;
        this.selector = Selector.open();
        this.nowMs = System.currentTimeMillis();
        this.acceptor = new Acceptor(this, selector, listeners, listenerTags);
    }

    /**
     * Where TLS handshakes' delegated tasks (key exchange, signatures) run: off the loop, shared by the loops; by
     * default on the loop itself. Set before the loop starts.
     */
    public void tlsTaskExecutor(final Executor executor)
    {
        this.tlsTasks = executor;
    }

    /**
     * Single-acceptor mode ({@code smtp.accept=acceptor}): this loop accepts for all of {@code targets} and hands
     * each connection over through their command queues. Set before the loop starts.
     */
    public void acceptFor(final List<SelectorLoop> targets)
    {
        this.acceptTargets = targets;
    }

    /**
     * Connections accepted on the listeners tagged {@code listenerTag} start with a PROXY protocol header (v1 or v2):
     * only peers {@code policy} trusts may connect, and the client the header names is the connection's remote
     * address for its handler and the limiter. Set before the loop starts.
     */
    public void proxyProtocol(final int listenerTag, final ProxyPolicy policy)
    {
        if (listenerTag < 0 || listenerTag >= Integer.SIZE)
        {
            throw new IllegalArgumentException("listener tag " + listenerTag + " out of 0..31");
        }
        proxiedTags |= 1 << listenerTag;
        proxyPolicy = policy;
    }

    private boolean isProxied(final int listenerTag)
    {
        return listenerTag >= 0 && listenerTag < Integer.SIZE && (proxiedTags & 1 << listenerTag) != 0;
    }

    /** Set before the loop starts. */
    public void handlerFactory(final ConnectionHandlerFactory factory)
    {
        this.factory = factory;
    }

    /** Added before the loop starts. */
    public void addHook(final LoopHook hook)
    {
        hooks.add(hook);
    }

    @Override
    public int index()
    {
        return index;
    }

    /** The TLS wire buffers of this loop's connections, made at the first {@code startTls}. */
    @Override
    BufferPool tlsPool()
    {
        if (tlsPool == null)
        {
            tlsPool = new BufferPool(TLS_BUFFER_BYTES, POOLED_TLS_BUFFERS);
        }
        return tlsPool;
    }

    @Override
    Executor tlsTaskExecutor()
    {
        return tlsTasks;
    }

    /** Runs {@code command} on the loop thread soon. Any thread. */
    @Override
    public void execute(final Runnable command)
    {
        while (!commands.offer(command))
        {
            Thread.onSpinWait();
        }
        wakeup();
    }

    /** Wakes the loop if it is parked in select. Any thread. */
    public void wakeup()
    {
        if (parked.compareAndSet(true, false))
        {
            selector.wakeup();
        }
    }

    /** Stops accepting, asks every handler to finish, and ends the loop once all are closed or at the deadline. */
    public void drain(final long timeoutMs)
    {
        execute(() -> beginDrain(timeoutMs));
    }

    /** Ends the loop at once, closing every connection. */
    public void stop()
    {
        stopRequested = true;
        selector.wakeup();
    }

    public boolean isFinished()
    {
        return finished;
    }

    public int connectionCount()
    {
        return connections.size();
    }

    public long acceptedTotal()
    {
        return acceptedTotal.get();
    }

    public long refusedTotal()
    {
        return refusedTotal.get();
    }

    /** Proxied connections closed for their peer or their PROXY header (untrusted, missing, malformed, late). */
    public long proxyRefusedTotal()
    {
        return proxyRefusedTotal.get();
    }

    @Override
    public void run()
    {
        try
        {
            while (!stopRequested)
            {
                if (draining && (connections.isEmpty() || nowMs >= drainDeadlineMs))
                {
                    break;
                }
                doWork();
            }
        }
        catch (final AgentTerminationException ex)
        {
            LOG.debug("loop {} terminated", index);
        }
        finally
        {
            closeAll();
            acceptor.close();
            try
            {
                selector.close();
            }
            catch (final IOException ex)
            {
                LOG.warn("closing selector of loop {}", index, ex);
            }
            closeSockets(closeAfterSelectSpare);
            closeSockets(closeAfterSelect);
            finished = true;
        }
    }

    /** One pass of the loop; returns how much work it did. */
    int doWork()
    {
        final ArrayList<SocketChannel> deregistering = closeAfterSelect;
        closeAfterSelect = closeAfterSelectSpare;
        closeAfterSelectSpare = deregistering;
        clockStale = true;
        int work = select();
        if (clockStale)
        {
            readClock();
        }
        // the select deregistered the keys cancelled before it: their sockets close without a shutdown
        work += closeSockets(deregistering);
        work += drainCommands();
        work += hooks.run(nowMs);
        work += resumes.resumeDue(nowMs);
        work += resumes.deliverQueued();
        work += dirty.flushAll();
        hooks.endOfPass();
        work += timeouts.poll(timeoutNowMs, onTimeout, 256);
        acceptor.resumeIfDue(nowMs, draining);
        return work;
    }

    /**
     * The clocks this pass arms timeouts and runs hooks on. Read again after the select and before the first ready
     * key is handled: a deadline armed at accept or read from a clock read before the select would come early by
     * the time the loop slept or waited for a core (100 ms and more on a loaded machine).
     */
    private void readClock()
    {
        nowMs = System.currentTimeMillis();
        timeoutNowMs = (System.nanoTime() - clockOriginNs) / 1_000_000;
        clockStale = false;
    }

    /** A bug in a stage running on this loop: count and log it; the loop and its other connections go on. */
    @Override
    void onHookFailure(final RuntimeException ex)
    {
        if (handlerErrors.incrementAndGet() <= 100)
        {
            LOG.error("loop {}: hook failed", index, ex);
        }
    }

    private int select()
    {
        try
        {
            parked.set(true);
            final long waitMs = Math.min(SELECT_TIMEOUT_MS, timeouts.nextDeadlineMs() - timeoutNowMs);
            if (waitMs <= 0 || hasPendingWork())
            {
                parked.set(false);
                return selector.selectNow(onReady);
            }
            final int selected = selector.select(onReady, waitMs);
            parked.set(false);
            return selected;
        }
        catch (final ClosedSelectorException ex)
        {
            throw new AgentTerminationException(ex);
        }
        catch (final IOException ex)
        {
            // Rare epoll failures: log and carry on; a persistent failure shows up as a busy loop in the logs.
            parked.set(false);
            LOG.error("select failed on loop {}", index, ex);
            return 0;
        }
    }

    private boolean hasPendingWork()
    {
        if (!commands.isEmpty() || resumes.hasQueued() || !dirty.isEmpty() || !closeAfterSelectSpare.isEmpty())
        {
            return true;
        }
        return hooks.hasPendingWork();
    }

    private void onReady(final SelectionKey key)
    {
        if (clockStale)
        {
            readClock();
        }
        final Object attachment = key.attachment();
        if (attachment instanceof Acceptor.Listening)
        {
            if (key.isValid() && key.isAcceptable())
            {
                acceptor.acceptFrom((Acceptor.Listening)attachment, nowMs);
            }
            return;
        }
        final NioConnection connection = (NioConnection)attachment;
        if (!key.isValid())
        {
            close(connection);
            return;
        }
        onReady(connection, key.readyOps());
    }

    /**
     * Opens a client connection to {@code remote}; loop thread only. The handler is created at once; its
     * {@link ConnectionHandler#onOpen()} follows when the TCP connection is established, or
     * {@link ConnectionHandler#onConnectFailed(String)} then {@link ConnectionHandler#onClose()} when it fails or
     * takes longer than {@code connectTimeoutMs}.
     *
     * @throws IllegalArgumentException when {@code connectTimeoutMs} is not positive.
     */
    public Connection connect(
        final InetSocketAddress remote, final ConnectionHandlerFactory handlerFactory, final long connectTimeoutMs)
    {
        if (connectTimeoutMs <= 0)
        {
            throw new IllegalArgumentException("connect timeout must be positive: " + connectTimeoutMs);
        }
        final NioConnection connection;
        SocketChannel channel = null;
        try
        {
            channel = SocketChannel.open();
            channel.configureBlocking(false);
            channel.socket().setTcpNoDelay(true);
            connection = new NioConnection(this, channel, remote, true);
        }
        catch (final IOException ex)
        {
            if (channel != null)
            {
                closeQuietly(channel);
            }
            throw new java.io.UncheckedIOException(ex);
        }
        connection.idleTimeoutMs = connectTimeoutMs;
        connection.connecting = true;
        connection.slot = connections.size();
        connections.add(connection);
        restartTimeout(connection);
        connection.handler = handlerFactory.newHandler(connection);
        try
        {
            if (channel.connect(remote))
            {
                connection.key = channel.register(selector, SelectionKey.OP_READ, connection);
                onConnected(connection);
            }
            else
            {
                connection.key = channel.register(selector, SelectionKey.OP_CONNECT, connection);
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            connectFailed(connection, describe(ex));
        }
        return connection;
    }

    /** A connection {@link Acceptor} accepted on a listener tagged {@code listenerTag}: admit it, or refuse it. */
    void accept(final SocketChannel channel, final int listenerTag)
    {
        final InetSocketAddress remote;
        try
        {
            channel.configureBlocking(false);
            channel.socket().setTcpNoDelay(true);
            remote = (InetSocketAddress)channel.getRemoteAddress();
        }
        catch (final IOException ex)
        {
            closeQuietly(channel);
            return;
        }
        final boolean proxied = isProxied(listenerTag);
        if (proxied && !proxyPolicy.trusts(remote.getAddress()))
        {
            // DESIGN.md: a peer outside smtp.proxy_networks is closed without a greeting
            proxyRefusedTotal.incrementAndGet();
            LOG.warn("PROXY: connection from {} closed: not a trusted proxy (smtp.proxy_networks)", remote);
            closeQuietly(channel);
            return;
        }
        // a proxy's connection takes a slot now; its client, known once the header is read, is admitted then
        final int admission = proxied ? limiter.tryAcquireConnection() : limiter.tryAcquire(remote.getAddress());
        if (admission != ConnectionLimiter.ACCEPTED)
        {
            refusedTotal.incrementAndGet();
            Refusals.refuse(channel, Refusals.reply(admission));
            return;
        }
        acceptedTotal.incrementAndGet();
        if (acceptTargets != null)
        {
            // single-acceptor mode: hand the connection to the next loop in turn (it owns it from now on)
            final SelectorLoop target = acceptTargets.get(nextAcceptTarget++ % acceptTargets.size());
            if (target != this)
            {
                target.execute(() -> target.adopt(channel, remote, listenerTag));
                return;
            }
        }
        adopt(channel, remote, listenerTag);
    }

    /**
     * Takes ownership of an accepted, admitted connection (a proxied one holds a connection slot only); loop thread
     * only.
     */
    private void adopt(final SocketChannel channel, final InetSocketAddress remote, final int listenerTag)
    {
        final NioConnection connection = new NioConnection(this, channel, remote, false, listenerTag);
        final boolean proxied = isProxied(listenerTag);
        connection.idleTimeoutMs = 300_000;
        try
        {
            connection.key = channel.register(selector, SelectionKey.OP_READ, connection);
        }
        catch (final IOException ex)
        {
            if (proxied)
            {
                limiter.releaseConnection();
            }
            else
            {
                limiter.release(remote.getAddress());
            }
            closeQuietly(channel);
            return;
        }
        connection.slot = connections.size();
        connections.add(connection);
        if (proxied)
        {
            // no handler until the header names the client; the whole header within its timeout
            connection.proxyHeader = new ProxyHeaderParser();
            timeouts.arm(connection, timeoutNowMs, proxyPolicy.headerTimeoutMs());
            return;
        }
        connection.clientAdmitted = true;
        restartTimeout(connection);
        open(connection);
    }

    /**
     * Input of a proxied connection before its handler exists: the PROXY header. Once it is whole, the client it
     * names (or the peer, for LOCAL and UNKNOWN) becomes the remote address, is admitted by the limiter (421 and
     * close when over its limits), and the handler opens; bytes after the header stay buffered for it.
     *
     * @return true when the handler is open now.
     */
    @Override
    boolean readProxyHeader(final NioConnection connection)
    {
        final ProxyHeaderParser header = connection.proxyHeader;
        final int status = header.parse(connection.readBuffer, connection.readStart, connection.readBuffer.position());
        connection.readStart = header.consumedTo();
        if (status == ProxyHeaderParser.NEED_MORE)
        {
            connection.releaseReadBufferIfConsumed();
            return false;
        }
        if (status == ProxyHeaderParser.MALFORMED)
        {
            refuseProxied(connection, header.problem());
            return false;
        }
        connection.proxyHeader = null;
        if (!header.peerIsClient())
        {
            try
            {
                connection.clientAddress(
                    new InetSocketAddress(InetAddress.getByAddress(header.sourceAddress()), header.sourcePort()));
            }
            catch (final UnknownHostException ex)
            {
                throw new IllegalStateException("a 4- or 16-byte address refused", ex);
            }
        }
        final int admission = limiter.tryAdmitClient(connection.remoteAddress().getAddress());
        if (admission != ConnectionLimiter.ACCEPTED)
        {
            refusedTotal.incrementAndGet();
            connection.write(Refusals.reply(admission));
            connection.closeAfterFlush();
            return false;
        }
        connection.clientAdmitted = true;
        restartTimeout(connection);
        open(connection);
        return !connection.closed;
    }

    /** The peer closed before its PROXY header was whole: a proxy's bare TCP health check, if it sent nothing. */
    @Override
    void proxyHeaderMissing(final NioConnection connection)
    {
        proxyRefusedTotal.incrementAndGet();
        if (connection.proxyHeader.version() == 0)
        {
            LOG.info("PROXY: connection from {} closed by the peer before its header", connection.remoteAddress());
        }
        else
        {
            LOG.warn("PROXY: connection from {} closed by the peer in the middle of its header",
                connection.remoteAddress());
        }
    }

    @Override
    void proxyHeaderTimedOut(final NioConnection connection)
    {
        refuseProxied(connection, "no whole PROXY header within " + proxyPolicy.headerTimeoutMs() + " ms");
    }

    private void refuseProxied(final NioConnection connection, final String why)
    {
        proxyRefusedTotal.incrementAndGet();
        LOG.warn("PROXY: connection from {} closed: {}", connection.remoteAddress(), why);
        close(connection);
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

    @Override
    void updateInterest(final NioConnection connection)
    {
        final SelectionKey key = connection.key;
        if (key == null || !key.isValid())
        {
            return;
        }
        if (connection.connecting)
        {
            return;
        }
        final int ops = interestOps(connection);
        if (key.interestOps() != ops)
        {
            key.interestOps(ops);
        }
    }

    /** Draining: the listening sockets close. */
    @Override
    void stopAccepting()
    {
        acceptor.close();
    }

    @Override
    void onHandlerFailure(final NioConnection connection, final RuntimeException ex)
    {
        // A bug, not a protocol error: count it, keep the loop going, drop this connection only.
        if (handlerErrors.incrementAndGet() <= 100)
        {
            LOG.error("handler failure on {}, closing it", connection, ex);
        }
        close(connection);
    }

    public long handlerErrors()
    {
        return handlerErrors.get();
    }

    /**
     * The socket closes after the next select if it is registered (see {@link #closeAfterSelect}); the limiter frees
     * the client's slot.
     */
    @Override
    void closeSocket(final NioConnection connection)
    {
        if (connection.key != null)
        {
            connection.key.cancel();
            closeAfterSelect.add(connection.channel);
        }
        else
        {
            closeQuietly(connection.channel);
        }
        if (connection.clientAdmitted)
        {
            limiter.release(connection.remoteAddress().getAddress());
        }
        else if (!connection.outbound)
        {
            limiter.releaseConnection();
        }
    }

    @Override
    void handlerFailedAtEnd(final NioConnection connection, final String when, final RuntimeException ex)
    {
        LOG.error("handler failed {} {}", when, connection, ex);
    }

    private static int closeSockets(final ArrayList<SocketChannel> sockets)
    {
        final int count = sockets.size();
        for (int i = 0; i < count; i++)
        {
            closeQuietly(sockets.get(i));
        }
        sockets.clear();
        return count;
    }

    private void closeAll()
    {
        for (int i = connections.size() - 1; i >= 0; i--)
        {
            close(connections.get(i));
        }
    }

    static void closeQuietly(final java.io.Closeable closeable)
    {
        try
        {
            closeable.close();
        }
        catch (final IOException ignored)
        {
            // closing is best effort
        }
    }
}
