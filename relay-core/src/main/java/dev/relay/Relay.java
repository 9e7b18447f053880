package dev.relay;

import dev.relay.auth.PasswordVerifier;
import dev.relay.auth.UsersFile;
import dev.relay.config.NetworkList;
import dev.relay.config.RelayConfig;
import dev.relay.config.TlsLevel;
import dev.relay.config.TlsPolicy;
import dev.relay.delivery.client.ClientTlsContext;
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
import dev.relay.net.ProxyPolicy;
import dev.relay.net.ServerTlsContext;
import dev.relay.smtp.SessionContext;
import dev.relay.smtp.SmtpSession;
import dev.relay.smtp.SmtpSettings;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolLock;
import dev.relay.spool.SpoolWriter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

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

    private Relay(
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
        // the certificate, key and users are read before anything opens: a bad file is a configuration error
        final ServerTlsContext tls = loadTls(config);
        final ClientTlsContext clientTls;
        try
        {
            clientTls = loadClientTls(config);
        }
        catch (final UnusableFileException ex)
        {
            closeTls(tls);
            throw ex;
        }
        final UsersFile users;
        try
        {
            users = config.smtpAuthUsers() == null ? null : UsersFile.load(config.smtpAuthUsers());
        }
        catch (final IOException ex)
        {
            closeTls(tls);
            throw new UnusableFileException("smtp.auth.users: " + ex.getMessage(), ex);
        }
        final Spool spool;
        try
        {
            spool = Spool.open(config.queueDir(), config.queueSync(), config.queueRollCycle(),
                config.queueMinFreeBytes());
        }
        catch (final IOException | RuntimeException ex)
        {
            closeTls(tls);
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
            closeTls(tls);
            throw new SpoolUnavailableException(config.queueDir().resolve("journal") + ": " + ex.getMessage(), ex);
        }
        final InboundServer inbound;
        final List<SelectorLoop> deliveryLoops = new ArrayList<>();
        final ConnectionLimiter limiter;
        final ProxyPolicy proxyPolicy;
        try
        {
            final int loops = config.smtpIoThreads();
            final int bufferSize = config.smtpBufferSize();
            final ConnectionLimiter.Limits limits = limits(config);
            limiter = new ConnectionLimiter(limits.maxConnections(), limits.maxPerClient(), limits.exempt(),
                new ClientRates(config.smtpRateConnectionsPerMinute(), config.smtpRateMessagesPerMinute(),
                    config.smtpRateAuthFailuresPerMinute()));
            inbound = InboundServer.withListeners(listeners(config), loops,
                ignored -> new BufferPool(bufferSize, POOLED_READ_BUFFERS_PER_LOOP),
                ignored -> new BufferPool(WRITE_BUFFER_BYTES, POOLED_READ_BUFFERS_PER_LOOP),
                limiter, config.smtpSingleAcceptor());
            proxyPolicy = config.smtpProxyProtocol() ?
                new ProxyPolicy(config.smtpProxyNetworks()::contains, config.smtpProxyTimeout().toMillis()) : null;
            if (proxyPolicy != null)
            {
                // DESIGN.md: the PROXY protocol is smtp.listen's; submission listeners take clients directly
                inbound.proxyProtocol(SmtpSession.SMTP_LISTENER, proxyPolicy);
            }
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
            closeTls(tls);
            throw ex;
        }
        final ExecutorService tlsTasks = tls == null && clientTls == null ? null :
            tlsTaskPool(Math.max(config.smtpIoThreads(), config.deliveryIoThreads()));
        final PasswordVerifier passwords = users == null ? null :
            new PasswordVerifier(users, Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors() / 2)),
                config.smtpTlsReloadInterval());
        final Relay relay = new Relay(config, spool, journal, inbound, deliveryLoops, limiter, lock, tls, clientTls,
            tlsTasks, passwords, users, proxyPolicy);
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

    /** smtp.listen (tag 0), then submission.listen and submissions.listen, in that order. */
    private static List<InboundServer.Listener> listeners(final RelayConfig config)
    {
        final List<InboundServer.Listener> listeners = new ArrayList<>();
        for (final InetSocketAddress address : config.smtpListen())
        {
            listeners.add(new InboundServer.Listener(address, SmtpSession.SMTP_LISTENER));
        }
        for (final InetSocketAddress address : config.submissionListen())
        {
            listeners.add(new InboundServer.Listener(address, SmtpSession.SUBMISSION_LISTENER));
        }
        for (final InetSocketAddress address : config.submissionsListen())
        {
            listeners.add(new InboundServer.Listener(address, SmtpSession.SUBMISSIONS_LISTENER));
        }
        return listeners;
    }

    private static ServerTlsContext loadTls(final RelayConfig config) throws UnusableFileException
    {
        if (!config.tlsEnabled())
        {
            return null;
        }
        try
        {
            final ServerTlsContext tls = ServerTlsContext.load(config.smtpTlsCert(), config.smtpTlsKey(),
                ServerTlsContext.Provider.valueOf(config.smtpTlsProvider().toUpperCase(java.util.Locale.ROOT)));
            tls.watch(config.smtpTlsReloadInterval());
            return tls;
        }
        catch (final IOException | GeneralSecurityException ex)
        {
            throw new UnusableFileException("smtp.tls.cert / smtp.tls.key: " + ex.getMessage(), ex);
        }
    }

    /**
     * The client TLS of delivery (STARTTLS to next hops) with the CAs of {@code delivery.tls.ca_file} or the JDK's;
     * none when every level is {@code none}.
     */
    private static ClientTlsContext loadClientTls(final RelayConfig config) throws UnusableFileException
    {
        boolean wanted = config.deliveryTls() != TlsLevel.NONE;
        for (final TlsPolicy policy : config.deliveryTlsPolicy())
        {
            wanted |= policy.level() != TlsLevel.NONE;
        }
        if (!wanted)
        {
            return null;
        }
        try
        {
            return ClientTlsContext.load(config.deliveryTlsCaFile(),
                ServerTlsContext.Provider.valueOf(config.smtpTlsProvider().toUpperCase(java.util.Locale.ROOT)));
        }
        catch (final IOException | GeneralSecurityException ex)
        {
            throw new UnusableFileException("delivery.tls.ca_file: " + ex.getMessage(), ex);
        }
    }

    private static void closeTls(final ServerTlsContext tls)
    {
        if (tls != null)
        {
            tls.close();
        }
    }

    /**
     * Threads for TLS handshakes' delegated tasks (the key exchange and the signature with our key: the costly part
     * of a handshake), shared by the loops so a burst of handshakes does not stall the loops' other connections.
     */
    private static ExecutorService tlsTaskPool(final int loops)
    {
        final AtomicInteger names = new AtomicInteger();
        return Executors.newFixedThreadPool(Math.max(1, Math.min(loops, Runtime.getRuntime().availableProcessors())),
            task ->
            {
                final Thread thread = new Thread(task, "tls-task-" + names.getAndIncrement());
                thread.setDaemon(true);
                return thread;
            });
    }

    /** What the SMTP conversation takes from {@code config}. */
    private static SmtpSettings smtpSettings(final RelayConfig config)
    {
        return new SmtpSettings(
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
    }

    /** Inbound admission from {@code config}: relay.networks exempt unless smtp.limits_exempt_relay_networks=false. */
    private static ConnectionLimiter.Limits limits(final RelayConfig config)
    {
        final boolean exemptRelayNetworks = config.smtpLimitsExemptRelayNetworks();
        final NetworkList relayNetworks = config.relayNetworks();
        return new ConnectionLimiter.Limits(config.smtpMaxConnections(), config.smtpMaxConnectionsPerIp(),
            address -> exemptRelayNetworks && relayNetworks.contains(address));
    }

    private void wireAndStart() throws IOException
    {
        final SmtpSettings settings = smtpSettings(config);
        final InboundEvents events = new InboundEvents(metrics);
        metrics.proxyRefusedCounter(inbound::proxyRefusedTotal);
        for (final SelectorLoop loop : inbound.loops())
        {
            final SpoolWriter writer = spool.newWriter(loop::wakeup);
            loop.addHook(writerHook(writer));
            final SessionContext context = new SessionContext(settings, writer, loop.index(), events)
                .limiter(limiter)
                .tarpit(config.smtpSoftErrorLimit(), config.smtpErrorDelay().toMillis());
            if (tls != null)
            {
                context.tls(tls, config.smtpTlsHandshakeTimeout().toMillis(), config.smtpTlsRequired());
                loop.tlsTaskExecutor(tlsTasks);
            }
            if (passwords != null)
            {
                context.auth(passwords.forLoop(loop::execute), config.smtpAuthAllowPlaintext());
            }
            contexts.add(context);
            loop.handlerFactory(connection -> new SmtpSession(context, connection));
        }
        startDelivery();
        startMetrics();
        inbound.start(Relay::onStageDeath);
        LOG.info("relay started: smtp on {}{}, spool {} (sync={}), {} io threads, {} delivery loops{}", smtpAddresses(),
            (config.submissionListen().isEmpty() ? "" : ", submission on " + submissionAddresses()) +
                (config.submissionsListen().isEmpty() ? "" : ", submissions on " + submissionsAddresses()),
            config.queueDir().toAbsolutePath(), config.queueSync(), inbound.loops().size(), deliveryLoops.size(),
            (tls == null ? "" : ", STARTTLS" + (config.smtpTlsRequired() ? " required" : "")) +
                (passwords == null ? "" : ", AUTH") +
                (config.smtpProxyProtocol() ? ", PROXY protocol from " + config.smtpProxyNetworks() : ""));
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
        delivery = DeliveryStage.start(config, spool, journal, metrics, deliveryLoops, clientTls,
            Relay::onStageDeath);
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
        metricsServer = MetricsServer.start(config.metricsListen(), metrics, inbound::connectionCount,
            () -> !closed && inbound.isRunning() && delivery.isRunning(), delivery::flush, config.metricsAdminToken(),
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
        final SmtpSettings settings = smtpSettings(inForce);
        final int softErrorLimit = inForce.smtpSoftErrorLimit();
        final long errorDelayMs = inForce.smtpErrorDelay().toMillis();
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
        limiter.limits(limits(inForce));
        limiter.rates().limits(new ClientRates.Limits(inForce.smtpRateConnectionsPerMinute(),
            inForce.smtpRateMessagesPerMinute(), inForce.smtpRateAuthFailuresPerMinute()));
        if (proxyPolicy != null)
        {
            proxyPolicy.trustedPeers(inForce.smtpProxyNetworks()::contains);
        }
        delivery.reconfigure(inForce, STAGE_RELOAD_MS);
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
        return inbound.boundAddresses().subList(0, config.smtpListen().size());
    }

    /** The {@code submission.listen} addresses actually bound. */
    public List<InetSocketAddress> submissionAddresses()
    {
        final int from = config.smtpListen().size();
        return inbound.boundAddresses().subList(from, from + config.submissionListen().size());
    }

    /** The {@code submissions.listen} addresses actually bound. */
    public List<InetSocketAddress> submissionsAddresses()
    {
        final int from = config.smtpListen().size() + config.submissionListen().size();
        return inbound.boundAddresses().subList(from, from + config.submissionsListen().size());
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
        closeTls(tls);
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

    /**
     * Runs until SIGTERM or SIGINT, then drains; SIGHUP reloads the configuration from {@code source}. Returns the
     * process exit code.
     */
    static int runUntilStopped(final RelayConfig config, final ConfigReload.Source source)
    {
        haltOnStageDeath = true;
        // the JVM's default for SIGHUP is to exit (129): from here on it reloads (once started; ignored before), on
        // the thread the JVM runs signal handlers on
        final AtomicReference<Relay> started = new AtomicReference<>();
        Signal.handle(new Signal("HUP"), signal ->
        {
            final Relay running = started.get();
            if (running == null)
            {
                LOG.warn("received SIGHUP while starting: ignored (the configuration being started is the file's)");
                return;
            }
            LOG.info("received SIGHUP: reloading the configuration");
            running.reload();
        });
        final long preloadStartNs = System.nanoTime();
        final int preloaded = ClassPreloader.loadAll();
        LOG.debug("{} classes preloaded in {} ms", preloaded, (System.nanoTime() - preloadStartNs) / 1_000_000);
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
        catch (final UnusableFileException ex)
        {
            System.err.println("relay: invalid configuration:");
            System.err.println(ex.getMessage());
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
        relay.configSource(source);
        started.set(relay);
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
