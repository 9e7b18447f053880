package dev.relay;

import dev.relay.auth.PasswordVerifier;
import dev.relay.auth.UsersFile;
import dev.relay.config.RelayConfig;
import dev.relay.config.SmtpServerSettings;
import dev.relay.delivery.client.ClientTlsContext;
import dev.relay.delivery.DeliveryStage;
import dev.relay.delivery.QueueCommand;
import dev.relay.metrics.MetricsServer;
import dev.relay.metrics.RelayMetrics;
import dev.relay.net.ConnectionLimiter;
import dev.relay.net.SelectorLoop;
import dev.relay.net.InboundServer;
import dev.relay.net.LoopHook;
import dev.relay.net.ProxyPolicy;
import dev.relay.net.ServerTlsContext;
import dev.relay.smtp.SessionContext;
import dev.relay.smtp.SmtpSession;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolLock;
import dev.relay.spool.SpoolWriter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The running relay: wires the stages that {@link RelayStartup} opened from a validated configuration (smtp hands
 * messages to the spool through {@code MessageSink}; each loop runs its spool writer's completions as a
 * {@link LoopHook}), starts the threads, puts a reload's settings records in force stage by stage, and stops them in
 * order. Used by {@link RelayMain} (through {@link RelayProcess}) and by in-process tests and benchmarks.
 */
public final class Relay implements AutoCloseable
{
    private static final Logger LOG = LoggerFactory.getLogger(Relay.class);
    /** Output buffer of an inbound connection (replies); the read buffer is {@code smtp.buffer_size}. */
    public static final int WRITE_BUFFER_BYTES = 16 * 1024;
    /**
     * Read buffer of an outbound (delivery) connection: the peer's replies. 32 KiB, not 16: over TLS a record's
     * plaintext (up to 16 KiB and a few bytes) is unwrapped straight into it.
     */
    public static final int DELIVERY_READ_BUFFER_BYTES = 32 * 1024;
    /** Output buffer of an outbound (delivery) connection: commands and the message body streamed through it. */
    public static final int DELIVERY_WRITE_BUFFER_BYTES = 64 * 1024;
    private static final long DELIVERY_DRAIN_MS = 5_000;
    /** How long a reload waits for a stage thread to take the new configuration (it takes it within a pass). */
    private static final long STAGE_RELOAD_MS = 5_000;
    /** How long the admin endpoint waits for the queue manager to run a queue command (one pass over the queue). */
    private static final long QUEUE_COMMAND_TIMEOUT_MS = 120_000;

    /** What is in force: the start's configuration, then each accepted reload's ({@link #reload()}). */
    private volatile RelayConfig config;
    private final RelayMetrics metrics = new RelayMetrics();
    private final Spool spool;
    private final OutcomeJournal journal;
    private final InboundServer inbound;
    private final List<SelectorLoop> deliveryLoops;
    private final ConnectionLimiter limiter;
    private final SpoolLock lock;
    private final ServerTlsContext tls;
    private final ClientTlsContext clientTls;
    private final ExecutorService tlsTasks;
    private final PasswordVerifier passwords;
    private final UsersFile users;
    private final ProxyPolicy proxyPolicy;
    /** Each inbound loop's session context, by loop index: a reload hands each its new settings. */
    private final List<SessionContext> contexts = new ArrayList<>();
    private volatile ConfigReload.Source configSource;
    private DeliveryStage delivery;
    private MetricsServer metricsServer;
    private volatile boolean closed;

    Relay(
        final RelayConfig config, final Spool spool, final OutcomeJournal journal, final InboundServer inbound,
        final List<SelectorLoop> deliveryLoops, final ConnectionLimiter limiter, final SpoolLock lock,
        final ServerTlsContext tls, final ClientTlsContext clientTls, final ExecutorService tlsTasks,
        final PasswordVerifier passwords, final UsersFile users, final ProxyPolicy proxyPolicy)
    {
        this.users = users;
        this.proxyPolicy = proxyPolicy;
        this.limiter = limiter;
        this.lock = lock;
        this.tls = tls;
        this.clientTls = clientTls;
        this.tlsTasks = tlsTasks;
        this.passwords = passwords;
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
        return RelayStartup.start(config);
    }

    /** Hands each inbound loop its sessions and spool writer, then starts delivery, metrics and the loops. */
    void wireAndStart() throws IOException
    {
        final SmtpServerSettings settings = config.smtp();
        final InboundEvents events = new InboundEvents(metrics);
        metrics.proxyRefusedCounter(inbound::proxyRefusedTotal);
        for (final SelectorLoop loop : inbound.loops())
        {
            final SpoolWriter writer = spool.newWriter(loop::wakeup);
            loop.addHook(writerHook(writer));
            final SessionContext context = new SessionContext(settings, writer, loop.index(), events)
                .limiter(limiter)
                .tarpit(config.admission().softErrorLimit(), config.admission().errorDelay().toMillis());
            if (tls != null)
            {
                context.tls(tls, config.serverTls().handshakeTimeout().toMillis(), config.serverTls().required());
                loop.tlsTaskExecutor(tlsTasks);
            }
            if (passwords != null)
            {
                context.auth(passwords.forLoop(loop::execute), config.auth().allowPlaintext());
            }
            contexts.add(context);
            loop.handlerFactory(connection -> new SmtpSession(context, connection));
        }
        startDelivery();
        startMetrics();
        inbound.start(RelayProcess::onStageDeath);
        LOG.info("relay started: smtp on {}{}, spool {} (sync={}), {} io threads, {} delivery loops{}", smtpAddresses(),
            (config.inbound().submissionListen().isEmpty() ? "" : ", submission on " + submissionAddresses()) +
                (config.inbound().submissionsListen().isEmpty() ? "" : ", submissions on " + submissionsAddresses()),
            config.spool().dir().toAbsolutePath(), config.spool().sync(), inbound.loops().size(), deliveryLoops.size(),
            (tls == null ? "" : ", STARTTLS" + (config.serverTls().required() ? " required" : "")) +
                (passwords == null ? "" : ", AUTH") +
                (config.inbound().proxyProtocol() ? ", PROXY protocol from " + config.inbound().proxyNetworks() : ""));
    }

    private void startDelivery()
    {
        metrics.diskFullCounters(spool::allocationFailures, journal::skippedRecords);
        for (final SelectorLoop loop : deliveryLoops)
        {
            if (tlsTasks != null)
            {
                loop.tlsTaskExecutor(tlsTasks);
            }
        }
        delivery = DeliveryStage.start(config.queue(), config.delivery(), config.dns(), spool, journal, metrics,
            deliveryLoops, clientTls, RelayProcess::onStageDeath);
        metrics.spoolRoom(delivery::queuedBytes, spool::maxQueuedBytes, spool::usableBytes, spool::minFreeBytes);
        metrics.queueState(delivery::activeMessages, delivery::deferredMessages, delivery::oldestMessageAgeSeconds);
        metrics.heldState(delivery::heldMessages);
    }

    private void startMetrics() throws IOException
    {
        if (config.metrics().listen() == null)
        {
            return;
        }
        metricsServer = MetricsServer.start(config.metrics().listen(), metrics, inbound::connectionCount,
            () -> !closed && inbound.isRunning() && delivery.isRunning(), delivery::flush,
            config.metrics().adminToken(),
            this::queueCommand, () ->
            {
                final ConfigReload.Result result = reload();
                return new MetricsServer.AdminAnswer(result.accepted(), result.report());
            });
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

    /**
     * Where {@link #reload()} reads the configuration again: the file this relay started from and the system
     * properties ({@code RelayMain}); none for a relay built from a map (then a reload is refused).
     */
    public void configSource(final ConfigReload.Source source)
    {
        this.configSource = source;
    }

    /** Reads the configuration again from its source; puts in force what may change ({@link #reload(RelayConfig)}). */
    public synchronized ConfigReload.Result reload()
    {
        final ConfigReload.Source source = configSource;
        if (source == null)
        {
            return ConfigReload.prepareRefused(config, "this relay was not started from a configuration file");
        }
        return apply(ConfigReload.prepare(config, source));
    }

    /**
     * A reload to {@code next} (validated): the keys a reload may change are put in force, stage by stage on each
     * stage's own thread (inbound loops through {@code execute}, admission through volatile snapshots, the queue
     * manager through its proxy), the certificate and users files are read again now; changed restart-only keys are
     * logged and keep their running values. Open connections go on untouched. Any thread; reloads run one at a time.
     */
    public synchronized ConfigReload.Result reload(final RelayConfig next)
    {
        return apply(ConfigReload.prepare(config, () -> next));
    }

    private ConfigReload.Result apply(final ConfigReload.Result result)
    {
        if (!result.accepted())
        {
            return result;
        }
        if (closed)
        {
            return ConfigReload.prepareRefused(config, "the relay is stopping");
        }
        final RelayConfig inForce = result.inForce();
        final SmtpServerSettings settings = inForce.smtp();
        final int softErrorLimit = inForce.admission().softErrorLimit();
        final long errorDelayMs = inForce.admission().errorDelay().toMillis();
        // each loop takes its sessions' settings between two passes; the reload returns once all have, so a
        // connection accepted after it gets them
        final CountDownLatch loopsDone = new CountDownLatch(contexts.size());
        for (int i = 0; i < contexts.size(); i++)
        {
            final SessionContext context = contexts.get(i);
            inbound.loops().get(i).execute(() ->
            {
                context.reconfigure(settings, softErrorLimit, errorDelayMs);
                loopsDone.countDown();
            });
        }
        limiter.limits(InboundWiring.limits(inForce.admission(), inForce.relay()));
        limiter.rates().limits(InboundWiring.rates(inForce.admission()));
        if (proxyPolicy != null)
        {
            proxyPolicy.trustedPeers(inForce.inbound().proxyNetworks()::contains);
        }
        delivery.reconfigure(inForce.queue(), STAGE_RELOAD_MS);
        if (tls != null)
        {
            tls.reloadIfChanged();
        }
        if (users != null)
        {
            users.reloadIfChanged();
        }
        try
        {
            if (!loopsDone.await(STAGE_RELOAD_MS, TimeUnit.MILLISECONDS))
            {
                LOG.warn("reload: an inbound loop took more than {} ms to take the new settings", STAGE_RELOAD_MS);
            }
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
        config = inForce;
        ConfigReload.logApplied(result);
        return result;
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

    /** The configuration in force: the start's, or the last accepted reload's. */
    public RelayConfig config()
    {
        return config;
    }

    /** Inbound admission: connections open, per client address. */
    public ConnectionLimiter connectionLimiter()
    {
        return limiter;
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
        return inbound.boundAddresses().subList(0, config.inbound().smtpListen().size());
    }

    /** The {@code submission.listen} addresses actually bound. */
    public List<InetSocketAddress> submissionAddresses()
    {
        final int from = config.inbound().smtpListen().size();
        return inbound.boundAddresses().subList(from, from + config.inbound().submissionListen().size());
    }

    /** The {@code submissions.listen} addresses actually bound. */
    public List<InetSocketAddress> submissionsAddresses()
    {
        final int from = config.inbound().smtpListen().size() + config.inbound().submissionListen().size();
        return inbound.boundAddresses().subList(from, from + config.inbound().submissionsListen().size());
    }

    /** The inbound TLS context (null without TLS), e.g. to make it look at its files now. */
    public ServerTlsContext tls()
    {
        return tls;
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
        LOG.info("draining: no new connections; open transactions get up to {}", config.inbound().drainTimeout());
        inbound.drain(config.inbound().drainTimeout().toMillis());
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
        RelayStartup.closeTls(tls);
        if (tlsTasks != null)
        {
            tlsTasks.shutdownNow();
        }
        if (passwords != null)
        {
            passwords.close();
        }
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

    void closeQuietly()
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

    /** A configured file (certificate, key, users) does not load: a configuration error (exit code 2). */
    public static final class UnusableFileException extends IOException
    {
        private static final long serialVersionUID = 1L;

        UnusableFileException(final String message, final Throwable cause)
        {
            super(message, cause);
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
