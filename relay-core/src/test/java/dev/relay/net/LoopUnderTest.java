package dev.relay.net;

import dev.relay.Relay;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * What {@link LoopContractTest} drives: the real {@link SelectorLoop} over loopback sockets ({@link OverSockets}) or
 * the {@link LoopDouble} ({@link InMemory}), behind one interface, so one scenario list runs against both. Time is
 * the loop's: wall time for the real loop (with generous deadlines), the fake clock for the double.
 */
interface LoopUnderTest extends AutoCloseable
{
    /** Loop buffer sizes, the relay's delivery ones, the same on both sides. */
    int READ_BUFFER_BYTES = Relay.DELIVERY_READ_BUFFER_BYTES;
    int WRITE_BUFFER_BYTES = Relay.DELIVERY_WRITE_BUFFER_BYTES;

    /** A client connects; returns its end once {@code handler} is open. */
    Far inbound(ScriptedHandler handler, boolean peerReads);

    /** The loop connects to a listening peer; returns the peer's end once {@code handler} is open. */
    Far outbound(ScriptedHandler handler, boolean peerReads);

    /** The loop connects to a port nothing listens on. */
    void outboundToClosedPort(ScriptedHandler handler);

    /** The loop connects to a server that never answers (its accept queue is full), with this connect timeout. */
    void outboundUnanswered(ScriptedHandler handler, long connectTimeoutMs);

    /** Runs {@code command} on the loop thread (SelectorLoop#execute) and returns once it ran. */
    void onLoop(Runnable command);

    /** Lets loop time pass until {@code condition} holds, for about {@code maxMs}; returns whether it holds. */
    boolean await(BooleanSupplier condition, long maxMs);

    /** Lets {@code ms} of loop time pass (to see that something does not happen). */
    void pause(long ms);

    /** SelectorLoop#drain. */
    void drain(long timeoutMs);

    /** Whether the loop has ended (after a drain). */
    boolean isFinished();

    /** How far a timer may fire late on this loop: the real loop's clocks are read once per pass. */
    long slackMs();

    @Override
    void close();

    /** The peer's end of one connection. */
    interface Far
    {
        /** Sends {@code text} (encrypted once the far end speaks TLS). */
        void send(String text);

        /** Sends {@code bytes} as they are, under TLS too. */
        void sendRaw(byte[] bytes);

        /** The far end speaks TLS with {@code engine} from now on; {@link #received()} is then decrypted. */
        void startTls(javax.net.ssl.SSLEngine engine);

        /** The far end's TLS, null before {@link #startTls}. */
        TlsEndpoint tls();

        void stopReading();

        void startReading();

        /** Everything the peer has read so far (plaintext: decrypted under TLS). */
        byte[] received();

        long receivedCount();

        default String receivedText()
        {
            return new String(received(), StandardCharsets.ISO_8859_1);
        }

        /** The loop closed the connection and the peer read everything before the end. */
        boolean sawEnd();

        void close();
    }

    /** Counts the loop's passes (a hook's end of pass), so events can be placed in a pass. */
    final class PassCounter implements LoopHook
    {
        final AtomicLong passes = new AtomicLong();

        @Override
        public int doWork(final long nowMs)
        {
            return 0;
        }

        @Override
        public void endOfPass()
        {
            passes.incrementAndGet();
        }
    }

    /** The real loop on its own thread, peers on non-blocking loopback sockets pumped by the test thread. */
    final class OverSockets implements LoopUnderTest
    {
        /** Added to every wait: the machine is shared and may be slow. */
        private static final long GENEROUS_MS = 15_000;

        private final ServerSocketChannel listener;
        private final SelectorLoop loop;
        private final Thread thread;
        private final PassCounter counter = new PassCounter();
        private final LinkedBlockingQueue<ScriptedHandler> nextInbound = new LinkedBlockingQueue<>();
        private final List<SocketFar> fars = new ArrayList<>();
        private final List<ServerSocketChannel> servers = new ArrayList<>();
        private final List<SocketChannel> fillers = new ArrayList<>();
        private final java.util.concurrent.ExecutorService tlsTasks =
            java.util.concurrent.Executors.newSingleThreadExecutor(task -> new Thread(task, "contract-tls-task"));

        OverSockets()
        {
            try
            {
                listener = ServerSocketChannel.open();
                listener.bind(new InetSocketAddress("127.0.0.1", 0));
                loop = new SelectorLoop(0, List.of(listener), new BufferPool(READ_BUFFER_BYTES, 16),
                    new BufferPool(WRITE_BUFFER_BYTES, 16), new ConnectionLimiter(100, 0, address -> false));
            }
            catch (final IOException ex)
            {
                throw new UncheckedIOException(ex);
            }
            loop.handlerFactory(connection ->
            {
                final ScriptedHandler handler = nextInbound.poll();
                if (handler == null)
                {
                    throw new IllegalStateException("no handler scripted for this connection");
                }
                return handler.attach(connection);
            });
            loop.addHook(counter);
            loop.tlsTaskExecutor(tlsTasks);
            thread = new Thread(loop, "contract-loop");
            thread.start();
        }

        @Override
        public String toString()
        {
            return "SelectorLoop over loopback";
        }

        @Override
        public long slackMs()
        {
            return 20;
        }

        @Override
        public Far inbound(final ScriptedHandler handler, final boolean peerReads)
        {
            handler.passes = counter.passes::get;
            nextInbound.add(handler);
            try
            {
                final SocketChannel channel = SocketChannel.open(listener.getLocalAddress());
                channel.configureBlocking(false);
                final SocketFar far = new SocketFar(channel, peerReads);
                fars.add(far);
                awaitOrFail(() -> handler.has("open"), "inbound connection opened");
                return far;
            }
            catch (final IOException ex)
            {
                throw new UncheckedIOException(ex);
            }
        }

        @Override
        public Far outbound(final ScriptedHandler handler, final boolean peerReads)
        {
            handler.passes = counter.passes::get;
            try
            {
                final ServerSocketChannel server = ServerSocketChannel.open();
                servers.add(server);
                server.bind(new InetSocketAddress("127.0.0.1", 0));
                server.configureBlocking(false);
                final InetSocketAddress address = (InetSocketAddress)server.getLocalAddress();
                onLoop(() ->
                {
                    loop.connect(address, handler::attach, 5_000);
                    handler.record("connectReturned");
                });
                final SocketChannel[] accepted = new SocketChannel[1];
                awaitOrFail(() ->
                {
                    try
                    {
                        accepted[0] = server.accept();
                    }
                    catch (final IOException ex)
                    {
                        throw new UncheckedIOException(ex);
                    }
                    return accepted[0] != null;
                }, "outbound connection accepted");
                accepted[0].configureBlocking(false);
                final SocketFar far = new SocketFar(accepted[0], peerReads);
                fars.add(far);
                awaitOrFail(() -> handler.has("open"), "outbound connection opened");
                return far;
            }
            catch (final IOException ex)
            {
                throw new UncheckedIOException(ex);
            }
        }

        @Override
        public void outboundToClosedPort(final ScriptedHandler handler)
        {
            handler.passes = counter.passes::get;
            final InetSocketAddress address;
            try (ServerSocketChannel closed = ServerSocketChannel.open())
            {
                closed.bind(new InetSocketAddress("127.0.0.1", 0));
                address = (InetSocketAddress)closed.getLocalAddress();
            }
            catch (final IOException ex)
            {
                throw new UncheckedIOException(ex);
            }
            onLoop(() ->
            {
                loop.connect(address, handler::attach, 5_000);
                handler.record("connectReturned");
            });
        }

        @Override
        public void outboundUnanswered(final ScriptedHandler handler, final long connectTimeoutMs)
        {
            handler.passes = counter.passes::get;
            try
            {
                // a backlog of 1 holds two connections; beyond that the kernel drops the SYNs of new ones
                final ServerSocketChannel server = ServerSocketChannel.open();
                servers.add(server);
                server.bind(new InetSocketAddress("127.0.0.1", 0), 1);
                final InetSocketAddress address = (InetSocketAddress)server.getLocalAddress();
                final List<SocketChannel> queued = new ArrayList<>();
                for (int i = 0; i < 4; i++)
                {
                    final SocketChannel channel = SocketChannel.open();
                    fillers.add(channel);
                    channel.configureBlocking(false);
                    channel.connect(address);
                    queued.add(channel);
                }
                awaitOrFail(() ->
                {
                    int connected = 0;
                    for (final SocketChannel channel : queued)
                    {
                        try
                        {
                            if (channel.isConnected() || channel.finishConnect())
                            {
                                connected++;
                            }
                        }
                        catch (final IOException ex)
                        {
                            throw new UncheckedIOException(ex);
                        }
                    }
                    return connected >= 2;
                }, "the accept queue full");
                onLoop(() ->
                {
                    loop.connect(address, handler::attach, connectTimeoutMs);
                    handler.record("connectReturned");
                });
            }
            catch (final IOException ex)
            {
                throw new UncheckedIOException(ex);
            }
        }

        @Override
        public void onLoop(final Runnable command)
        {
            final CountDownLatch ran = new CountDownLatch(1);
            loop.execute(() ->
            {
                try
                {
                    command.run();
                }
                finally
                {
                    ran.countDown();
                }
            });
            awaitOrFail(() -> ran.getCount() == 0, "command ran on the loop");
        }

        @Override
        public boolean await(final BooleanSupplier condition, final long maxMs)
        {
            final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(maxMs + GENEROUS_MS);
            while (true)
            {
                final boolean moved = pump();
                if (condition.getAsBoolean())
                {
                    return true;
                }
                if (System.nanoTime() - deadline > 0)
                {
                    return false;
                }
                if (!moved)
                {
                    LockSupport.parkNanos(200_000);
                }
            }
        }

        @Override
        public void pause(final long ms)
        {
            final long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
            while (System.nanoTime() - end < 0)
            {
                if (!pump())
                {
                    LockSupport.parkNanos(200_000);
                }
            }
        }

        @Override
        public void drain(final long timeoutMs)
        {
            loop.drain(timeoutMs);
        }

        @Override
        public boolean isFinished()
        {
            return loop.isFinished();
        }

        @Override
        public void close()
        {
            loop.stop();
            try
            {
                thread.join(10_000);
            }
            catch (final InterruptedException ex)
            {
                Thread.currentThread().interrupt();
            }
            tlsTasks.shutdownNow();
            for (final SocketFar far : fars)
            {
                far.close();
            }
            for (final SocketChannel filler : fillers)
            {
                try
                {
                    filler.close();
                }
                catch (final IOException ignored)
                {
                    // closing is best effort
                }
            }
            for (final ServerSocketChannel server : servers)
            {
                try
                {
                    server.close();
                }
                catch (final IOException ignored)
                {
                    // closing is best effort
                }
            }
            if (thread.isAlive())
            {
                throw new AssertionError("loop thread did not end");
            }
        }

        private void awaitOrFail(final BooleanSupplier condition, final String what)
        {
            if (!await(condition, 0))
            {
                throw new AssertionError("timed out waiting: " + what);
            }
        }

        /** The peers read what has arrived (those that read); returns whether any byte moved. */
        private boolean pump()
        {
            boolean moved = false;
            for (final SocketFar far : fars)
            {
                moved |= far.pump();
            }
            return moved;
        }

        /** A peer on a non-blocking socket; reads only when {@link OverSockets#pump} runs and it reads. */
        private static final class SocketFar implements Far
        {
            private final SocketChannel channel;
            private final ByteBuffer readBuffer = ByteBuffer.allocate(256 * 1024);
            private final ByteArrayOutputStream received = new ByteArrayOutputStream();
            private volatile boolean reading;
            private boolean ended;
            private volatile TlsEndpoint tls;

            SocketFar(final SocketChannel channel, final boolean reading)
            {
                this.channel = channel;
                this.reading = reading;
            }

            boolean pump()
            {
                if (!reading || ended || !channel.isOpen())
                {
                    return false;
                }
                boolean moved = false;
                try
                {
                    while (true)
                    {
                        readBuffer.clear();
                        final int read = channel.read(readBuffer);
                        if (read < 0)
                        {
                            ended = true;
                            return true;
                        }
                        if (read == 0)
                        {
                            return moved;
                        }
                        if (tls == null)
                        {
                            received.write(readBuffer.array(), 0, read);
                        }
                        else
                        {
                            tls.receive(readBuffer.array(), 0, read);
                            sendRaw(tls.pump());
                            received.writeBytes(tls.takePlaintext());
                        }
                        moved = true;
                    }
                }
                catch (final IOException ex)
                {
                    // a reset: the loop closed with input it had not read
                    ended = true;
                    return true;
                }
            }

            @Override
            public void send(final String text)
            {
                final byte[] plain = text.getBytes(StandardCharsets.ISO_8859_1);
                if (tls != null)
                {
                    tls.send(plain);
                    sendRaw(tls.pump());
                    return;
                }
                sendRaw(plain);
            }

            @Override
            public void startTls(final javax.net.ssl.SSLEngine engine)
            {
                tls = new TlsEndpoint(engine);
                sendRaw(tls.pump());
            }

            @Override
            public TlsEndpoint tls()
            {
                return tls;
            }

            @Override
            public void sendRaw(final byte[] plain)
            {
                final ByteBuffer bytes = ByteBuffer.wrap(plain);
                try
                {
                    while (bytes.hasRemaining())
                    {
                        if (channel.write(bytes) == 0)
                        {
                            throw new AssertionError("peer could not send: its socket buffer is full");
                        }
                    }
                }
                catch (final IOException ex)
                {
                    throw new UncheckedIOException(ex);
                }
            }

            @Override
            public void stopReading()
            {
                reading = false;
            }

            @Override
            public void startReading()
            {
                reading = true;
            }

            @Override
            public byte[] received()
            {
                return received.toByteArray();
            }

            @Override
            public long receivedCount()
            {
                return received.size();
            }

            @Override
            public boolean sawEnd()
            {
                return ended;
            }

            @Override
            public void close()
            {
                try
                {
                    channel.close();
                }
                catch (final IOException ignored)
                {
                    // closing is best effort
                }
            }
        }
    }

    /** The double, passes run by the test thread on the fake clock. */
    final class InMemory implements LoopUnderTest
    {
        private final LoopDouble loop = new LoopDouble(READ_BUFFER_BYTES, WRITE_BUFFER_BYTES);
        private final PassCounter counter = new PassCounter();
        private final LinkedBlockingQueue<ScriptedHandler> nextInbound = new LinkedBlockingQueue<>();
        private int nextPort = 40_000;

        InMemory()
        {
            loop.addHook(counter);
            loop.tolerateHandlerFailures();
            loop.handlerFactory(connection -> nextInbound.remove().attach(connection));
        }

        @Override
        public String toString()
        {
            return "LoopDouble";
        }

        @Override
        public long slackMs()
        {
            return 0;
        }

        @Override
        public Far inbound(final ScriptedHandler handler, final boolean peerReads)
        {
            handler.passes = counter.passes::get;
            nextInbound.add(handler);
            final LoopDouble.Peer peer = loop.accept(new InetSocketAddress("127.0.0.1", nextPort++));
            if (!peerReads)
            {
                peer.stopReading();
            }
            if (!loop.runUntil(() -> handler.has("open"), 1_000))
            {
                throw new AssertionError("inbound connection not opened");
            }
            return new PeerFar(peer);
        }

        @Override
        public Far outbound(final ScriptedHandler handler, final boolean peerReads)
        {
            handler.passes = counter.passes::get;
            final LoopDouble.Peer[] peer = new LoopDouble.Peer[1];
            onLoop(() ->
            {
                peer[0] = loop.connect(new InetSocketAddress("127.0.0.1", 25), handler::attach, 5_000);
                if (!peerReads)
                {
                    peer[0].stopReading();
                }
                handler.record("connectReturned");
            });
            if (!loop.runUntil(() -> handler.has("open"), 1_000))
            {
                throw new AssertionError("outbound connection not opened");
            }
            return new PeerFar(peer[0]);
        }

        @Override
        public void outboundToClosedPort(final ScriptedHandler handler)
        {
            handler.passes = counter.passes::get;
            onLoop(() ->
            {
                loop.connect(new InetSocketAddress("127.0.0.1", 25), handler::attach, 5_000,
                    LoopDouble.Answer.REFUSE);
                handler.record("connectReturned");
            });
        }

        @Override
        public void outboundUnanswered(final ScriptedHandler handler, final long connectTimeoutMs)
        {
            handler.passes = counter.passes::get;
            onLoop(() ->
            {
                loop.connect(new InetSocketAddress("127.0.0.1", 25), handler::attach, connectTimeoutMs,
                    LoopDouble.Answer.SILENCE);
                handler.record("connectReturned");
            });
        }

        @Override
        public void onLoop(final Runnable command)
        {
            loop.execute(command);
            loop.runPass();
        }

        @Override
        public boolean await(final BooleanSupplier condition, final long maxMs)
        {
            return loop.runUntil(condition, maxMs);
        }

        @Override
        public void pause(final long ms)
        {
            loop.advance(ms);
        }

        @Override
        public void drain(final long timeoutMs)
        {
            loop.drain(timeoutMs);
        }

        @Override
        public boolean isFinished()
        {
            return loop.isFinished();
        }

        @Override
        public void close()
        {
            loop.stop();
        }

        private static final class PeerFar implements Far
        {
            private final LoopDouble.Peer peer;
            private final ByteArrayOutputStream received = new ByteArrayOutputStream();

            PeerFar(final LoopDouble.Peer peer)
            {
                this.peer = peer;
            }

            @Override
            public void send(final String text)
            {
                peer.send(text);
            }

            @Override
            public void sendRaw(final byte[] bytes)
            {
                peer.sendRaw(bytes);
            }

            @Override
            public void startTls(final javax.net.ssl.SSLEngine engine)
            {
                peer.startTls(engine);
            }

            @Override
            public TlsEndpoint tls()
            {
                return peer.tls();
            }

            @Override
            public void stopReading()
            {
                peer.stopReading();
            }

            @Override
            public void startReading()
            {
                peer.startReading();
            }

            @Override
            public byte[] received()
            {
                received.writeBytes(peer.takeReceivedBytes());
                return received.toByteArray();
            }

            @Override
            public long receivedCount()
            {
                return peer.receivedTotal();
            }

            @Override
            public boolean sawEnd()
            {
                return peer.sawEnd();
            }

            @Override
            public void close()
            {
                peer.close();
            }
        }
    }
}
