package dev.relay;

import dev.relay.config.RelayConfig;
import dev.relay.metrics.RelayMetrics;
import dev.relay.net.BufferPool;
import dev.relay.net.ConnectionLimiter;
import dev.relay.net.SelectorLoop;
import dev.relay.net.InboundServer;
import dev.relay.net.LoopHook;
import dev.relay.smtp.SessionContext;
import dev.relay.smtp.SmtpSession;
import dev.relay.smtp.SmtpSettings;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolWriter;
import dev.relay.spool.SyncMode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * The running relay: builds the stages from a validated configuration, wires them (smtp hands messages to the
 * spool through {@code MessageSink}; each loop runs its spool writer's completions as a {@link LoopHook}), starts
 * the threads and stops them in order. Used by {@link RelayMain} and by in-process tests and benchmarks.
 */
public final class Relay implements AutoCloseable
{
    private static final Logger LOG = LoggerFactory.getLogger(Relay.class);
    private static final int WRITE_BUFFER_BYTES = 16 * 1024;
    private static final int POOLED_READ_BUFFERS_PER_LOOP = 256;

    private final RelayConfig config;
    private final RelayMetrics metrics = new RelayMetrics();
    private final Spool spool;
    private final InboundServer inbound;
    private volatile boolean closed;

    private Relay(final RelayConfig config, final Spool spool, final InboundServer inbound)
    {
        this.config = config;
        this.spool = spool;
        this.inbound = inbound;
    }

    /**
     * Opens the spool, binds the listeners and starts every thread.
     *
     * @throws SpoolUnavailableException when the spool directory cannot be created or written (exit code 2).
     * @throws IOException when a listener cannot be bound.
     */
    public static Relay start(final RelayConfig config) throws IOException
    {
        final Spool spool;
        try
        {
            spool = Spool.open(config.queueDir(), syncMode(config), config.queueRollCycle(),
                config.queueMinFreeBytes());
        }
        catch (final IOException | RuntimeException ex)
        {
            throw new SpoolUnavailableException(config.queueDir() + ": " + ex.getMessage(), ex);
        }
        final InboundServer inbound;
        try
        {
            final int loops = config.smtpIoThreads();
            final int bufferSize = config.smtpBufferSize();
            final ConnectionLimiter limiter = new ConnectionLimiter(config.smtpMaxConnections(),
                config.smtpMaxConnectionsPerIp(),
                address -> config.smtpLimitsExemptRelayNetworks() && config.relayNetworks().contains(address));
            inbound = new InboundServer(config.smtpListen(), loops,
                ignored -> new BufferPool(bufferSize, POOLED_READ_BUFFERS_PER_LOOP),
                ignored -> new BufferPool(WRITE_BUFFER_BYTES, POOLED_READ_BUFFERS_PER_LOOP),
                limiter);
        }
        catch (final IOException | RuntimeException ex)
        {
            spool.close();
            throw ex;
        }
        final Relay relay = new Relay(config, spool, inbound);
        relay.wireAndStart();
        return relay;
    }

    private void wireAndStart()
    {
        final SmtpSettings settings = new SmtpSettings(
            config.smtpHostname(),
            config.smtpMaxMessageSize(),
            config.smtpMaxRecipients(),
            config.smtpMaxErrors(),
            config.smtpMaxHops(),
            config.smtpMaxCommandLength(),
            config.smtpCommandTimeout().toMillis(),
            config.smtpDataTimeout().toMillis(),
            config.relayNetworks()::contains,
            config::isRelayDomain);
        final InboundEvents events = new InboundEvents(metrics);
        for (final SelectorLoop loop : inbound.loops())
        {
            final SpoolWriter writer = spool.newWriter(loop::wakeup);
            loop.addHook(new LoopHook()
            {
                @Override
                public int doWork(final long nowMs)
                {
                    return writer.drainCompletions();
                }

                @Override
                public void endOfPass()
                {
                    writer.endOfPass();
                }

                @Override
                public boolean hasPendingWork()
                {
                    return writer.hasCompletions();
                }
            });
            final SessionContext context = new SessionContext(settings, writer, loop.index(), events);
            loop.handlerFactory(connection -> new SmtpSession(context, connection));
        }
        inbound.start();
        LOG.info("relay started: smtp on {}, spool {} (sync={}), {} io threads", inbound.boundAddresses(),
            config.queueDir().toAbsolutePath(), config.queueSync(), inbound.loops().size());
    }

    public RelayConfig config()
    {
        return config;
    }

    public RelayMetrics metrics()
    {
        return metrics;
    }

    public Spool spool()
    {
        return spool;
    }

    /** The SMTP addresses actually bound (an ephemeral port resolved). */
    public List<InetSocketAddress> smtpAddresses()
    {
        return inbound.boundAddresses();
    }

    /**
     * SIGTERM behaviour: stop accepting, answer new commands with 421, let transactions in DATA finish for up to
     * {@code smtp.drain_timeout}, then close the spool cleanly.
     */
    public void drainAndClose() throws InterruptedException
    {
        if (closed)
        {
            return;
        }
        LOG.info("draining: no new connections; open transactions get up to {}", config.smtpDrainTimeout());
        inbound.drain(config.smtpDrainTimeout().toMillis());
        close();
    }

    @Override
    public void close() throws InterruptedException
    {
        if (closed)
        {
            return;
        }
        closed = true;
        inbound.close();
        spool.close();
        LOG.info("relay stopped");
    }

    /** Runs until SIGTERM or SIGINT, then drains; the process exit code. */
    static int runUntilStopped(final RelayConfig config)
    {
        final Relay relay;
        try
        {
            relay = start(config);
        }
        catch (final SpoolUnavailableException ex)
        {
            System.err.println("relay: spool directory unusable: " + ex.getMessage());
            return RelayMain.EXIT_CONFIG;
        }
        catch (final IOException ex)
        {
            System.err.println("relay: cannot start: " + ex);
            return RelayMain.EXIT_FAILURE;
        }
        final CountDownLatch stop = new CountDownLatch(1);
        final SignalHandler onSignal = signal ->
        {
            LOG.info("received SIG{}", signal.getName());
            stop.countDown();
        };
        Signal.handle(new Signal("TERM"), onSignal);
        Signal.handle(new Signal("INT"), onSignal);
        try
        {
            stop.await();
            relay.drainAndClose();
            return RelayMain.EXIT_OK;
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            return RelayMain.EXIT_FAILURE;
        }
    }

    static SyncMode syncMode(final RelayConfig config)
    {
        switch (config.queueSync())
        {
            case ALWAYS:
                return SyncMode.ALWAYS;
            case NONE:
                return SyncMode.NONE;
            default:
                return SyncMode.BATCH;
        }
    }

    private static InetAddress toInet(final byte[] address)
    {
        try
        {
            return InetAddress.getByAddress(address);
        }
        catch (final java.net.UnknownHostException ex)
        {
            throw new IllegalArgumentException(ex);
        }
    }

    /** The spool directory cannot be created, opened or written. */
    public static final class SpoolUnavailableException extends IOException
    {
        private static final long serialVersionUID = 1L;

        SpoolUnavailableException(final String message, final Throwable cause)
        {
            super(message, cause);
        }
    }
}
