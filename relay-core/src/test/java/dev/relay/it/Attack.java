package dev.relay.it;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/** Attack tools shared by the adversarial tests: many non-blocking connections, and a normal client on the side. */
final class Attack
{
    private Attack()
    {
    }

    /** One attacking connection: what it received and when the server closed it. */
    static final class Conn
    {
        final SocketChannel channel;
        final long openedNs;
        final StringBuilder received = new StringBuilder();
        long closedNs;

        Conn(final SocketChannel channel)
        {
            this.channel = channel;
            this.openedNs = System.nanoTime();
        }

        boolean closed()
        {
            return closedNs != 0;
        }

        Duration lifetime()
        {
            return Duration.ofNanos(closedNs - openedNs);
        }
    }

    /** Opens {@code count} non-blocking connections to 127.0.0.1:port, registered for reads with {@code selector}. */
    static List<Conn> open(final int port, final int count, final Selector selector) throws IOException
    {
        final List<Conn> conns = new ArrayList<>(count);
        for (int i = 0; i < count; i++)
        {
            final SocketChannel ch = SocketChannel.open(new InetSocketAddress("127.0.0.1", port));
            ch.configureBlocking(false);
            final Conn c = new Conn(ch);
            ch.register(selector, SelectionKey.OP_READ, c);
            conns.add(c);
        }
        return conns;
    }

    /** Reads whatever is ready (up to {@code waitMs}); marks connections closed at end of stream or reset. */
    static void pump(final Selector selector, final long waitMs, final ByteBuffer scratch) throws IOException
    {
        selector.select(key ->
        {
            final Conn c = (Conn)key.attachment();
            try
            {
                while (true)
                {
                    scratch.clear();
                    final int n = c.channel.read(scratch);
                    if (n < 0)
                    {
                        closeConn(c, key);
                        return;
                    }
                    if (n == 0)
                    {
                        return;
                    }
                    if (c.received.length() < 16_384)
                    {
                        c.received.append(new String(scratch.array(), 0, n, StandardCharsets.ISO_8859_1));
                    }
                }
            }
            catch (final IOException ex)
            {
                closeConn(c, key);
            }
        }, Math.max(1, waitMs));
    }

    static void closeConn(final Conn c, final SelectionKey key)
    {
        if (c.closedNs == 0)
        {
            c.closedNs = System.nanoTime();
        }
        key.cancel();
        try
        {
            c.channel.close();
        }
        catch (final IOException ignored)
        {
            // gone already
        }
    }

    /**
     * Normal clients on the side while an attack runs: one transaction after another (a short pause between), each
     * must finish within 5 s. {@link #stop()} returns how many completed and fails with the first problem.
     */
    static final class NormalTraffic implements AutoCloseable
    {
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final AtomicInteger done = new AtomicInteger();
        private final AtomicReference<Throwable> failure = new AtomicReference<>();
        private final Thread thread;

        NormalTraffic(final AdversarialRelay relay)
        {
            thread = new Thread(() ->
            {
                while (running.get())
                {
                    try
                    {
                        relay.sendOneMessage(Duration.ofSeconds(5));
                        done.incrementAndGet();
                        Thread.sleep(200);
                    }
                    catch (final Throwable ex)
                    {
                        failure.compareAndSet(null, ex);
                        return;
                    }
                }
            }, "normal-traffic");
            thread.setDaemon(true);
            thread.start();
        }

        int stop() throws InterruptedException
        {
            running.set(false);
            thread.join(15_000);
            if (failure.get() != null)
            {
                throw new AssertionError("a normal client failed during the attack", failure.get());
            }
            return done.get();
        }

        @Override
        public void close() throws InterruptedException
        {
            running.set(false);
            thread.join(15_000);
        }
    }
}
