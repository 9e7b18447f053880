package dev.relay;

import dev.relay.config.RelayConfig;
import dev.relay.delivery.DeliveryStage;
import dev.relay.delivery.QueueCommand;
import dev.relay.metrics.MetricsServer;
import dev.relay.metrics.RelayMetrics;
import dev.relay.net.BufferPool;
import dev.relay.net.ClientRates;
import dev.relay.net.ConnectionLimiter;
import dev.relay.net.SelectorLoop;
import dev.relay.net.InboundServer;
import dev.relay.net.LoopHook;
import dev.relay.smtp.SessionContext;
import dev.relay.smtp.SmtpSession;
import dev.relay.smtp.SmtpSettings;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolLock;
import dev.relay.spool.SpoolWriter;
import dev.relay.spool.SyncMode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
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
    /** Output buffer of an inbound connection (replies); the read buffer is {@code smtp.buffer_size}. */
    public static final int WRITE_BUFFER_BYTES = 16 * 1024;
    private static final int POOLED_READ_BUFFERS_PER_LOOP = 256;
    /** Delivery loops are numbered after the inbound ones in logs (their queue ids need no generator). */
    private static final int DELIVERY_LOOP_INDEX_BASE = 100;
    /** Read buffer of an outbound (delivery) connection: the peer's replies. */
    public static final int DELIVERY_READ_BUFFER_BYTES = 16 * 1024;
    /** Output buffer of an outbound (delivery) connection: commands and the message body streamed through it. */
    public static final int DELIVERY_WRITE_BUFFER_BYTES = 64 * 1024;
    private static final long DELIVERY_DRAIN_MS = 5_000;
    /** How long the admin endpoint waits for the queue manager to run a queue command (one pass over the queue). */
    private static final long QUEUE_COMMAND_TIMEOUT_MS = 120_000;

    private final RelayConfig config;
    private final RelayMetrics metrics = new RelayMetrics();
    private final Spool spool;
    private final OutcomeJournal journal;
    private final InboundServer inbound;
    private final List<SelectorLoop> deliveryLoops;
    private final ConnectionLimiter limiter;
    private final SpoolLock lock;
    private DeliveryStage delivery;
    private MetricsServer metricsServer;
    private volatile boolean closed;

    private Relay(
        final RelayConfig config, final Spool spool, final OutcomeJournal journal, final InboundServer inbound,
        final List<SelectorLoop> deliveryLoops, final ConnectionLimiter limiter, final SpoolLock lock)
    {
        this.limiter = limiter;
        this.lock = lock;
        this.config = config;
        this.spool = spool;
        this.journal = journal;
        this.inbound = inbound;
        this.deliveryLoops = deliveryLoops;
    }

    /**
     * Opens the spool, binds the listeners and starts every thread.
     *
     * @throws SpoolUnavailableException when the spool directory cannot be created or written, or another process
     *                                   holds its {@link SpoolLock} (exit code 2).
     * @throws IOException when a listener cannot be bound.
     */
    public static Relay start(final RelayConfig config) throws IOException
    {
        final SpoolLock lock = lockSpool(config);
        try
        {
            return start(config, lock);
        }
        catch (final IOException | RuntimeException ex)
        {
            lock.close();
            throw ex;
        }
    }

    /** The spool is this process's alone while it runs: a second relay, or {@code spool transfer}, is refused. */
    private static SpoolLock lockSpool(final RelayConfig config) throws SpoolUnavailableException
    {
        final SpoolLock lock;
        try
        {
            lock = SpoolLock.tryAcquire(config.queueDir());
        }
        catch (final IOException | RuntimeException ex)
        {
            throw new SpoolUnavailableException(config.queueDir() + ": " + ex.getMessage(), ex);
        }
        if (lock == null)
        {
            throw new SpoolUnavailableException(config.queueDir() + ": in use by " +
                SpoolLock.holder(config.queueDir()) + " (it holds " + SpoolLock.FILE_NAME + ")", null);
        }
        return lock;
    }

    private static Relay start(final RelayConfig config, final SpoolLock lock) throws IOException
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
        final OutcomeJournal journal;
        try
        {
            journal = OutcomeJournal.open(config.queueDir().resolve("journal"), config.queueRollCycle());
        }
        catch (final RuntimeException ex)
        {
            spool.close();
            throw new SpoolUnavailableException(config.queueDir().resolve("journal") + ": " + ex.getMessage(), ex);
        }
        final InboundServer inbound;
        final List<SelectorLoop> deliveryLoops = new ArrayList<>();
        final ConnectionLimiter limiter;
        try
        {
            final int loops = config.smtpIoThreads();
            final int bufferSize = config.smtpBufferSize();
            limiter = new ConnectionLimiter(config.smtpMaxConnections(),
                config.smtpMaxConnectionsPerIp(),
                address -> config.smtpLimitsExemptRelayNetworks() && config.relayNetworks().contains(address),
                new ClientRates(config.smtpRateConnectionsPerMinute(), config.smtpRateMessagesPerMinute()));
            inbound = new InboundServer(config.smtpListen(), loops,
                ignored -> new BufferPool(bufferSize, POOLED_READ_BUFFERS_PER_LOOP),
                ignored -> new BufferPool(WRITE_BUFFER_BYTES, POOLED_READ_BUFFERS_PER_LOOP),
                limiter, config.smtpSingleAcceptor());
            for (int i = 0; i < config.deliveryIoThreads(); i++)
            {
                deliveryLoops.add(new SelectorLoop(DELIVERY_LOOP_INDEX_BASE + i, List.of(),
                    new BufferPool(DELIVERY_READ_BUFFER_BYTES, POOLED_READ_BUFFERS_PER_LOOP),
                    new BufferPool(DELIVERY_WRITE_BUFFER_BYTES, POOLED_READ_BUFFERS_PER_LOOP), limiter));
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            journal.close();
            spool.close();
            throw ex;
        }
        final Relay relay = new Relay(config, spool, journal, inbound, deliveryLoops, limiter, lock);
        try
        {
            relay.wireAndStart();
        }
        catch (final IOException | RuntimeException ex)
        {
            relay.closeQuietly();
            throw ex;
        }
        return relay;
    }

    private void wireAndStart() throws IOException
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
            loop.addHook(writerHook(writer));
            final SessionContext context = new SessionContext(settings, writer, loop.index(), events)
                .limiter(limiter)
                .tarpit(config.smtpSoftErrorLimit(), config.smtpErrorDelay().toMillis());
            loop.handlerFactory(connection -> new SmtpSession(context, connection));
        }
        startDelivery();
        startMetrics();
        inbound.start(Relay::onStageDeath);
        LOG.info("relay started: smtp on {}, spool {} (sync={}), {} io threads, {} delivery loops",
            inbound.boundAddresses(), config.queueDir().toAbsolutePath(), config.queueSync(), inbound.loops().size(),
            deliveryLoops.size());
    }

    private void startDelivery()
    {
        metrics.diskFullCounters(spool::allocationFailures, journal::skippedRecords);
        delivery = DeliveryStage.start(config, spool, journal, metrics, deliveryLoops, Relay::onStageDeath);
        metrics.spoolRoom(delivery::queuedBytes, spool::maxQueuedBytes, spool::usableBytes, spool::minFreeBytes);
        metrics.queueState(delivery::activeMessages, delivery::deferredMessages, delivery::oldestMessageAgeSeconds);
        metrics.heldState(delivery::heldMessages);
    }

    private void startMetrics() throws IOException
    {
        if (config.metricsListen() == null)
        {
            return;
        }
        metricsServer = MetricsServer.start(config.metricsListen(), metrics, inbound::connectionCount, () -> !closed && inbound.isRunning() && delivery.isRunning(),
            delivery::flush, config.metricsAdminToken(), this::queueCommand);
    }

    /** {@code POST /admin/queue/VERB} ({@code ops/relay spool hold ...}): run by the queue manager, answered here. */
    private MetricsServer.AdminReply queueCommand(final String verb, final String body) throws InterruptedException
    {
        final QueueCommand command;
        try
        {
            command = QueueCommand.parse(verb, body);
        }
        catch (final IllegalArgumentException ex)
        {
            return new MetricsServer.AdminReply(400, ex.getMessage());
        }
        if (!delivery.submit(command))
        {
            return new MetricsServer.AdminReply(503, "too many queue commands at once; try again");
        }
        try
        {
            return new MetricsServer.AdminReply(200, command.awaitReply(QUEUE_COMMAND_TIMEOUT_MS));
        }
        catch (final IllegalStateException ex)
        {
            return new MetricsServer.AdminReply(503, ex.getMessage());
        }
    }

    private static LoopHook writerHook(final SpoolWriter writer)
    {
        return new LoopHook()
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
        };
    }

    /** Messages delivery has not finished yet. */
    public int queuedMessages()
    {
        return delivery.queuedMessages();
    }

    /** Makes deferred mail due now ({@code ops/relay spool flush}). */
    public void flush()
    {
        delivery.flush();
    }

    /** The metrics endpoint's address, or null when {@code metrics.listen=off}. */
    public InetSocketAddress metricsAddress()
    {
        return metricsServer == null ? null : metricsServer.address();
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
        if (delivery != null)
        {
            // transactions in flight finish (or time out); what is left stays queued for the next start
            delivery.drain(DELIVERY_DRAIN_MS);
        }
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
        if (metricsServer != null)
        {
            metricsServer.close();
        }
        inbound.close();
        stopDelivery();
        journal.close();
        spool.close();
        try
        {
            lock.close();
        }
        catch (final IOException ex)
        {
            LOG.warn("spool lock: {}", ex.toString());
        }
        LOG.info("relay stopped");
    }

    private void stopDelivery() throws InterruptedException
    {
        if (delivery != null)
        {
            delivery.close();
        }
    }

    private void closeQuietly()
    {
        try
        {
            close();
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * A stage thread died of an {@code Error} (a bug, or the JVM in trouble: out of memory, a fault in mapped
     * memory). A relay with a dead loop would keep its port and serve nobody, so under {@link RelayMain} the process
     * ends with exit code 70 for its supervisor to restart it; every message that got a 250 is in the spool.
     */
    private static void onStageDeath(final Thread thread, final Throwable failure)
    {
        LOG.error("stage thread {} died", thread.getName(), failure);
        if (haltOnStageDeath)
        {
            System.err.println("relay: stage thread " + thread.getName() + " died: " + failure + "; exiting 70");
            Runtime.getRuntime().halt(70);
        }
    }

    private static volatile boolean haltOnStageDeath;

    /** Runs until SIGTERM or SIGINT, then drains; the process exit code. */
    static int runUntilStopped(final RelayConfig config)
    {
        haltOnStageDeath = true;
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
