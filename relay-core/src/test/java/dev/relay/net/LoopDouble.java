package dev.relay.net;

import dev.relay.Relay;

import javax.net.ssl.SSLEngine;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.SocketOption;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;
import java.nio.channels.spi.SelectorProvider;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.function.BooleanSupplier;

/**
 * The loop's side of connections, in memory, for tests of a {@link ConnectionHandler}: {@link SelectorLoop}'s passes
 * run one at a time on the test's thread, on a fake clock, with a scripted {@link Peer} at the far end of each
 * connection instead of a socket.
 * <p>
 * It keeps the contract the real loop keeps (SelectorLoop's class javadoc), the same way, and promises nothing the
 * real loop does not: a pass is select (I/O of the ready connections, connects, accepts) → commands
 * ({@link #execute}) → hooks → tarpitted connections due → input of resumed connections → one flush per dirty
 * connection, then {@code onOutputDrained} when it emptied the buffer → hooks' end of pass → expired timeouts.
 * Its connections are the real {@link NioConnection}s (reads, input offered to the handler, compaction, writes,
 * flushes, pause and resume, close grace, TLS wrap and unwrap run the relay's own code), each over a
 * {@link MemoryChannel} to its peer where the real loop gives it a socket; this class is their
 * {@link ConnectionLoop}, as SelectorLoop is on the relay, and runs that class's steps of a pass (a ready
 * connection's connect, read and write, tarpits due, resumed input, flushes and {@code onOutputDrained}, timeouts
 * and close grace, connect and TLS failures, closing, hooks, opening a handler, telling handlers to drain) and its
 * interest ops. Its own are the fake select (a connection is ready for what it is interested in as far as its peer's
 * bytes, end or window say), the commands queue, the fake clock and the order of a pass (the same order, in
 * {@link #runPass}).
 * Output goes through a
 * bounded direct buffer from a {@link BufferPool} (by default the size the relay uses for delivery,
 * {@value Relay#DELIVERY_WRITE_BUFFER_BYTES} bytes) and reaches the peer only as far as the peer's window allows; an
 * inbound connection is not read while its output is blocked, an outbound one is; timeouts live in the real
 * {@link DeadlineLists} on the fake clock, and a timed-out or closing connection gets the real grace period.
 * {@code LoopContractTest} runs the same scenarios against this class and against SelectorLoop over loopback
 * sockets, so a difference shows up there.
 * <p>
 * TLS ({@link Connection#startTls}) is NioConnection's, with the real {@link TlsLayer} over the peer's bytes; delegated
 * tasks run in the next pass (as a command: off the handler's call, then back on the
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
public final class LoopDouble extends ConnectionLoop
{
    /** The fake clock's start (epoch milliseconds). */
    public static final long START_MS = 1_700_000_000_000L;
    /** What a peer takes before it reads, unless a test sets {@link Peer#window(int)}. */
    public static final int DEFAULT_WINDOW_BYTES = 256 * 1024;
    /** Passes without the clock moving after which {@link #runUntilIdle()} gives up: a handler that spins. */
    private static final int MAX_BUSY_PASSES = 200_000;

    private static final int OP_READ = SelectionKey.OP_READ;
    private static final int OP_WRITE = SelectionKey.OP_WRITE;
    private static final int OP_CONNECT = SelectionKey.OP_CONNECT;

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

    private final BufferPool tlsPool = new BufferPool(SelectorLoop.TLS_BUFFER_BYTES, 16);
    private final Executor tlsTasks = this::execute;
    private NioConnection[] ready = new NioConnection[8];
    /** The far ends still reading: a peer reads what reached it even after the loop closed its side. */
    private final ArrayList<Peer> peers = new ArrayList<>();
    private final ArrayList<NioConnection> arriving = new ArrayList<>();
    private final ArrayDeque<Runnable> commands = new ArrayDeque<>();
    private final List<RuntimeException> failures = new ArrayList<>();

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
        super(readPool, writePool);
        this.nowMs = START_MS;
        this.timeoutNowMs = START_MS;
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
    @Override
    public void execute(final Runnable command)
    {
        commands.add(command);
    }

    /** The fake clock (epoch milliseconds), also each connection's {@link Connection#nowMs()}. */
    @Override
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
        final Peer peer = newConnection(remote, false, Answer.ACCEPT, listenerTag);
        arriving.add(peer.connection);
        return peer;
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
        final Peer peer = newConnection(remote, true, answer, 0);
        final NioConnection connection = peer.connection;
        connection.idleTimeoutMs = connectTimeoutMs;
        connection.connecting = true;
        peer.interestOps = OP_CONNECT;
        connection.slot = connections.size();
        connections.add(connection);
        restartTimeout(connection);
        connection.handler = handlerFactory.newHandler(connection);
        return peer;
    }

    /** A NioConnection over a {@link MemoryChannel} to a new {@link Peer}, as the real loop makes one over a socket. */
    private Peer newConnection(
        final InetSocketAddress remote, final boolean outbound, final Answer answer, final int listenerTag)
    {
        final Peer peer = new Peer(answer);
        peer.connection = new NioConnection(this, new MemoryChannel(peer), remote, outbound, listenerTag);
        peers.add(peer);
        return peer;
    }

    private static Peer peer(final NioConnection connection)
    {
        return ((MemoryChannel)connection.channel).peer;
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
            // one fake clock for both: the wall clock and the timeouts' monotonic one
            timeoutNowMs = nowMs;
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
        work += hooks.run(nowMs);
        work += resumes.resumeDue(nowMs);
        work += resumes.deliverQueued();
        work += dirty.flushAll();
        hooks.endOfPass();
        work += timeouts.poll(nowMs, onTimeout, 256);
        reportFailures();
        return work;
    }

    @Override
    int index()
    {
        return 0;
    }

    @Override
    BufferPool tlsPool()
    {
        return tlsPool;
    }

    @Override
    Executor tlsTaskExecutor()
    {
        return tlsTasks;
    }

    private long nextEventMs()
    {
        long next = Math.min(timeouts.nextDeadlineMs(), resumes.nextResumeAtMs());
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

    @Override
    void onHookFailure(final RuntimeException ex)
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

    /**
     * The fake select for one connection: ready as far as its interest and its peer say (bytes sent or the end to
     * read, window to write into, a connect answered), then SelectorLoop's steps ({@link ConnectionLoop#onReady}).
     *
     * @return 1 if it was ready.
     */
    private int onReady(final NioConnection connection)
    {
        if (connection.closed)
        {
            return 0;
        }
        final Peer peer = peer(connection);
        int readyOps = 0;
        if (connection.connecting)
        {
            if (peer.answer == Answer.SILENCE)
            {
                return 0;
            }
            readyOps = OP_CONNECT;
        }
        else
        {
            // a socket in error is ready for whatever it is interested in (epoll reports EPOLLERR/EPOLLHUP)
            final boolean broken = peer.state != Peer.OPEN;
            if ((peer.interestOps & OP_READ) != 0 && (broken || peer.toLoop.size() > 0))
            {
                readyOps |= OP_READ;
            }
            if ((peer.interestOps & OP_WRITE) != 0 && (broken || peer.room() > 0))
            {
                readyOps |= OP_WRITE;
            }
            if (readyOps == 0)
            {
                return 0;
            }
        }
        onReady(connection, readyOps);
        return 1;
    }

    private void adopt(final NioConnection connection)
    {
        connection.idleTimeoutMs = 300_000;
        peer(connection).interestOps = OP_READ;
        connection.slot = connections.size();
        connections.add(connection);
        restartTimeout(connection);
        open(connection);
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

    /**
     * NioConnection's call: its writes add output (plaintext, not closing: the other calls come from TLS steps and
     * closes), which {@link Peer#writesPerFlush()} counts.
     */
    @Override
    void markDirty(final NioConnection connection)
    {
        if (connection.tls == null && !connection.closing)
        {
            peer(connection).writesSinceFlush++;
        }
        super.markDirty(connection);
    }

    /** Counts the writes that filled the buffer about to be flushed, then flushes (NioConnection's steps). */
    @Override
    int flush(final NioConnection connection) throws IOException
    {
        final Peer peer = peer(connection);
        if (connection.writeBuffer != null && connection.writeBuffer.position() > 0 && peer.writesSinceFlush > 0)
        {
            peer.writesPerFlush.add(peer.writesSinceFlush);
            peer.writesSinceFlush = 0;
        }
        return connection.flushOutput();
    }

    @Override
    void updateInterest(final NioConnection connection)
    {
        if (connection.closed || connection.connecting)
        {
            return;
        }
        peer(connection).interestOps = interestOps(connection);
    }

    /** Draining: {@link #accept} refuses from now on. */
    @Override
    void stopAccepting()
    {
    }

    @Override
    void proxyHeaderTimedOut(final NioConnection connection)
    {
        throw new IllegalStateException("the PROXY header is not modelled: " + connection);
    }

    @Override
    void proxyHeaderMissing(final NioConnection connection)
    {
        throw new IllegalStateException("the PROXY header is not modelled: " + connection);
    }

    @Override
    boolean readProxyHeader(final NioConnection connection)
    {
        throw new IllegalStateException("the PROXY header is not modelled: " + connection);
    }

    @Override
    void onHandlerFailure(final NioConnection connection, final RuntimeException ex)
    {
        failures.add(ex);
        close(connection);
    }

    /** The peer sees the end once it has read what was written before; the loop no longer reads or writes. */
    @Override
    void closeSocket(final NioConnection connection)
    {
        peer(connection).interestOps = 0;
        peer(connection).onLoopClosed();
    }

    @Override
    void handlerFailedAtEnd(final NioConnection connection, final String when, final RuntimeException ex)
    {
        failures.add(ex);
    }

    private void closeAll()
    {
        for (int i = connections.size() - 1; i >= 0; i--)
        {
            close(connections.get(i));
        }
    }

    /**
     * A {@link Peer}'s end as the loop sees it: the {@link SocketChannel} a NioConnection reads and writes (and TLS
     * wraps into), where the real loop has a socket. Reads and writes are the peer's; the rest of a socket (connect,
     * options, shutdown) is the loop's business, which this double does itself, so none of it is modelled.
     */
    static final class MemoryChannel extends SocketChannel
    {
        private final Peer peer;

        MemoryChannel(final Peer peer)
        {
            super(SelectorProvider.provider());
            this.peer = peer;
        }

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
        public long read(final ByteBuffer[] dsts, final int offset, final int length)
        {
            throw notModelled("scattering read");
        }

        @Override
        public long write(final ByteBuffer[] srcs, final int offset, final int length)
        {
            throw notModelled("gathering write");
        }

        @Override
        public SocketChannel bind(final SocketAddress local)
        {
            throw notModelled("bind");
        }

        @Override
        public <T> SocketChannel setOption(final SocketOption<T> name, final T value)
        {
            throw notModelled("setOption");
        }

        @Override
        public <T> T getOption(final SocketOption<T> name)
        {
            throw notModelled("getOption");
        }

        @Override
        public Set<SocketOption<?>> supportedOptions()
        {
            return Set.of();
        }

        @Override
        public SocketChannel shutdownInput()
        {
            throw notModelled("shutdownInput");
        }

        @Override
        public SocketChannel shutdownOutput()
        {
            throw notModelled("shutdownOutput");
        }

        @Override
        public Socket socket()
        {
            throw notModelled("socket");
        }

        @Override
        public boolean isConnected()
        {
            return peer.connection != null && !peer.connection.connecting;
        }

        @Override
        public boolean isConnectionPending()
        {
            return peer.connection != null && peer.connection.connecting;
        }

        @Override
        public boolean connect(final SocketAddress remote)
        {
            throw notModelled("connect");
        }

        /** The far end's answer to a connect the loop saw answered (a silent one never is). */
        @Override
        public boolean finishConnect() throws IOException
        {
            if (peer.answer == Answer.REFUSE)
            {
                throw new ConnectException("Connection refused");
            }
            return true;
        }

        @Override
        public SocketAddress getRemoteAddress()
        {
            return peer.connection.remoteAddress();
        }

        @Override
        public SocketAddress getLocalAddress()
        {
            throw notModelled("getLocalAddress");
        }

        @Override
        protected void implCloseSelectableChannel()
        {
        }

        @Override
        protected void implConfigureBlocking(final boolean block)
        {
        }

        private static UnsupportedOperationException notModelled(final String what)
        {
            return new UnsupportedOperationException(what + " is the loop's business, not modelled by LoopDouble");
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

        /** The loop's side, a NioConnection over this peer's {@link MemoryChannel}. */
        NioConnection connection;
        /** How the far end answers an outbound connect. */
        final Answer answer;
        /** The loop's interest in this connection (SelectionKey's bits): what a pass finds it ready for. */
        int interestOps;
        int writesSinceFlush;
        final List<Integer> writesPerFlush = new ArrayList<>();
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

        private Peer(final Answer answer)
        {
            this.answer = answer;
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
            return writesPerFlush;
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
