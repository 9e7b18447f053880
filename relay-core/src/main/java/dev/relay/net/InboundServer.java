package dev.relay.net;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.ServerSocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;

/**
 * The set of inbound loops and their listeners. By default each loop gets its own listening socket per address,
 * all bound with SO_REUSEPORT, so the kernel spreads new connections over the loops and no acceptor hands them off
 * (one queue and one wake-up fewer per connection). {@code smtp.accept=acceptor} has loop 0 accept for all; it
 * measured no faster (README, "Protocol choices"), so it is not the default.
 * <p>
 * Built and controlled from the main thread; the loops run on their own threads ("smtp-in-N").
 */
public final class InboundServer implements AutoCloseable
{
    private static final int BACKLOG = 4096;

    private final List<SelectorLoop> loops = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private final List<InetSocketAddress> boundAddresses = new ArrayList<>();

    /**
     * Binds every listener (so a port conflict fails here, before anything runs).
     *
     * @param readPools one read-buffer pool per loop (pools are single-threaded).
     */
    public InboundServer(
        final List<InetSocketAddress> listen,
        final int loopCount,
        final IntFunction<BufferPool> readPools,
        final IntFunction<BufferPool> writePools,
        final ConnectionLimiter limiter) throws IOException
    {
        this(listen, loopCount, readPools, writePools, limiter, false);
    }

    /**
     * @param singleAcceptor true: loop 0 alone listens and hands connections to the loops in turn through their
     *                       command queues; false: every loop listens (SO_REUSEPORT) and the kernel spreads them.
     */
    public InboundServer(
        final List<InetSocketAddress> listen,
        final int loopCount,
        final IntFunction<BufferPool> readPools,
        final IntFunction<BufferPool> writePools,
        final ConnectionLimiter limiter,
        final boolean singleAcceptor) throws IOException
    {
        this(loopCount, untagged(listen), readPools, writePools, limiter, singleAcceptor);
    }

    /** An address to listen on and the tag its connections carry ({@link Connection#listenerTag()}). */
    public record Listener(InetSocketAddress address, int tag)
    {
    }

    private static List<Listener> untagged(final List<InetSocketAddress> listen)
    {
        final List<Listener> listeners = new ArrayList<>();
        for (final InetSocketAddress address : listen)
        {
            listeners.add(new Listener(address, 0));
        }
        return listeners;
    }

    /**
     * Listeners with tags, so the handler factory can tell SMTP from submission connections; binds every one
     * (a port conflict fails here).
     */
    public static InboundServer withListeners(
        final List<Listener> listen,
        final int loopCount,
        final IntFunction<BufferPool> readPools,
        final IntFunction<BufferPool> writePools,
        final ConnectionLimiter limiter,
        final boolean singleAcceptor) throws IOException
    {
        return new InboundServer(loopCount, listen, readPools, writePools, limiter, singleAcceptor);
    }

    private InboundServer(
        final int loopCount,
        final List<Listener> listen,
        final IntFunction<BufferPool> readPools,
        final IntFunction<BufferPool> writePools,
        final ConnectionLimiter limiter,
        final boolean singleAcceptor) throws IOException
    {
        final List<List<ServerSocketChannel>> perLoop = new ArrayList<>();
        final List<List<Integer>> tagsPerLoop = new ArrayList<>();
        for (int i = 0; i < loopCount; i++)
        {
            perLoop.add(new ArrayList<>());
            tagsPerLoop.add(new ArrayList<>());
        }
        try
        {
            for (final Listener listener : listen)
            {
                InetSocketAddress bindTo = listener.address();
                final int listeners = singleAcceptor ? 1 : loopCount;
                for (int i = 0; i < listeners; i++)
                {
                    final ServerSocketChannel channel = ServerSocketChannel.open();
                    perLoop.get(i).add(channel);
                    tagsPerLoop.get(i).add(listener.tag());
                    channel.setOption(StandardSocketOptions.SO_REUSEADDR, true);
                    if (listeners > 1)
                    {
                        channel.setOption(StandardSocketOptions.SO_REUSEPORT, true);
                    }
                    channel.bind(bindTo, BACKLOG);
                    if (i == 0)
                    {
                        // port 0: the first bind picks the port, the other loops share it
                        bindTo = (InetSocketAddress)channel.getLocalAddress();
                        boundAddresses.add(bindTo);
                    }
                }
            }
            for (int i = 0; i < loopCount; i++)
            {
                final int[] tags = tagsPerLoop.get(i).stream().mapToInt(Integer::intValue).toArray();
                loops.add(new SelectorLoop(i, perLoop.get(i), tags, readPools.apply(i), writePools.apply(i), limiter));
            }
            if (singleAcceptor && loopCount > 1)
            {
                loops.get(0).acceptFor(List.copyOf(loops));
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            for (final List<ServerSocketChannel> channels : perLoop)
            {
                for (final ServerSocketChannel channel : channels)
                {
                    try
                    {
                        channel.close();
                    }
                    catch (final IOException ignored)
                    {
                        // already failing
                    }
                }
            }
            throw ex;
        }
    }

    /**
     * Connections on the listeners tagged {@code listenerTag} start with a PROXY protocol header (HAProxy's v1 or
     * v2): see {@link SelectorLoop#proxyProtocol}. Before {@link #start}.
     */
    public void proxyProtocol(final int listenerTag, final ProxyPolicy policy)
    {
        for (final SelectorLoop loop : loops)
        {
            loop.proxyProtocol(listenerTag, policy);
        }
    }

    public List<SelectorLoop> loops()
    {
        return loops;
    }

    /** The addresses actually bound (port 0 replaced by the chosen port), in the order of the listen list. */
    public List<InetSocketAddress> boundAddresses()
    {
        return boundAddresses;
    }

    public void start(final Thread.UncaughtExceptionHandler onDeath)
    {
        for (final SelectorLoop loop : loops)
        {
            final Thread thread = new Thread(loop, "smtp-in-" + loop.index());
            thread.setUncaughtExceptionHandler(onDeath);
            threads.add(thread);
            thread.start();
        }
    }

    /** Stops accepting and lets sessions finish for up to {@code timeoutMs}; returns when all loops ended. */
    public void drain(final long timeoutMs) throws InterruptedException
    {
        for (final SelectorLoop loop : loops)
        {
            loop.drain(timeoutMs);
        }
        join(timeoutMs + 5_000);
    }

    /** Proxied connections refused by all loops so far (see {@link SelectorLoop#proxyRefusedTotal}). */
    public long proxyRefusedTotal()
    {
        long total = 0;
        for (final SelectorLoop loop : loops)
        {
            total += loop.proxyRefusedTotal();
        }
        return total;
    }

    public int connectionCount()
    {
        int count = 0;
        for (final SelectorLoop loop : loops)
        {
            count += loop.connectionCount();
        }
        return count;
    }

    public boolean isRunning()
    {
        for (final Thread thread : threads)
        {
            if (!thread.isAlive())
            {
                return false;
            }
        }
        return !threads.isEmpty();
    }

    private void join(final long timeoutMs) throws InterruptedException
    {
        final long deadline = System.currentTimeMillis() + timeoutMs;
        for (final Thread thread : threads)
        {
            thread.join(Math.max(1, deadline - System.currentTimeMillis()));
        }
    }

    @Override
    public void close() throws InterruptedException
    {
        for (final SelectorLoop loop : loops)
        {
            loop.stop();
        }
        join(10_000);
    }
}
