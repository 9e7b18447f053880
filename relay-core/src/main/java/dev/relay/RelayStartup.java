package dev.relay;

import dev.relay.Relay.SpoolUnavailableException;
import dev.relay.Relay.UnusableFileException;
import dev.relay.auth.PasswordVerifier;
import dev.relay.auth.UsersFile;
import dev.relay.config.AuthSettings;
import dev.relay.config.ClientTlsSettings;
import dev.relay.config.InboundSettings;
import dev.relay.config.RelayConfig;
import dev.relay.config.Routing;
import dev.relay.config.ServerTlsSettings;
import dev.relay.config.SpoolSettings;
import dev.relay.delivery.client.ClientTlsContext;
import dev.relay.net.BufferPool;
import dev.relay.net.ClientRates;
import dev.relay.net.ConnectionLimiter;
import dev.relay.net.InboundServer;
import dev.relay.net.ProxyPolicy;
import dev.relay.net.SelectorLoop;
import dev.relay.net.ServerTlsContext;
import dev.relay.smtp.SmtpSession;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolLock;

import java.io.IOException;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A start, in order: the spool lock; the files a start reads (certificate and key, the client's CAs, the users),
 * before anything opens, so that a bad file is a configuration error; the spool and its journal; the listeners and
 * inbound loops; the delivery loops. A step that fails closes what the steps before it opened. Then the
 * {@link Relay} wires and starts its stages. Static; the thread that starts the relay.
 */
final class RelayStartup
{
    private static final int POOLED_READ_BUFFERS_PER_LOOP = 256;
    /** Delivery loops are numbered after the inbound ones in logs (their queue ids need no generator). */
    private static final int DELIVERY_LOOP_INDEX_BASE = 100;

    private RelayStartup()
    {
    }

    /** {@link Relay#start(RelayConfig)}. */
    static Relay start(final RelayConfig config) throws IOException
    {
        final SpoolLock lock = lockSpool(config.spool());
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
    private static SpoolLock lockSpool(final SpoolSettings settings) throws SpoolUnavailableException
    {
        final SpoolLock lock;
        try
        {
            lock = SpoolLock.tryAcquire(settings.dir());
        }
        catch (final IOException | RuntimeException ex)
        {
            throw new SpoolUnavailableException(settings.dir() + ": " + ex.getMessage(), ex);
        }
        if (lock == null)
        {
            throw new SpoolUnavailableException(settings.dir() + ": in use by " +
                SpoolLock.holder(settings.dir()) + " (it holds " + SpoolLock.FILE_NAME + ")", null);
        }
        return lock;
    }

    private static Relay start(final RelayConfig config, final SpoolLock lock) throws IOException
    {
        // the certificate, key and users are read before anything opens: a bad file is a configuration error
        final ServerTlsContext tls = loadTls(config.serverTls());
        final ClientTlsContext clientTls;
        final UsersFile users;
        try
        {
            clientTls = loadClientTls(config.queue().routing(), config.clientTls());
            users = loadUsers(config.auth());
        }
        catch (final UnusableFileException ex)
        {
            closeTls(tls);
            throw ex;
        }
        final SpoolSettings spoolSettings = config.spool();
        final Spool spool;
        try
        {
            spool = Spool.open(spoolSettings.dir(), spoolSettings.sync(), spoolSettings.rollCycle(),
                spoolSettings.minFreeBytes());
        }
        catch (final IOException | RuntimeException ex)
        {
            closeTls(tls);
            throw new SpoolUnavailableException(spoolSettings.dir() + ": " + ex.getMessage(), ex);
        }
        final OutcomeJournal journal;
        try
        {
            journal = OutcomeJournal.open(spoolSettings.dir().resolve("journal"), spoolSettings.rollCycle());
        }
        catch (final RuntimeException ex)
        {
            spool.close();
            closeTls(tls);
            throw new SpoolUnavailableException(spoolSettings.dir().resolve("journal") + ": " + ex.getMessage(), ex);
        }
        final InboundSettings inboundSettings = config.inbound();
        final InboundServer inbound;
        final List<SelectorLoop> deliveryLoops = new ArrayList<>();
        final ConnectionLimiter limiter;
        final ProxyPolicy proxyPolicy;
        try
        {
            final int bufferSize = inboundSettings.bufferSize();
            final ConnectionLimiter.Limits limits = InboundWiring.limits(config.admission(), config.relay());
            final ClientRates.Limits rates = InboundWiring.rates(config.admission());
            limiter = new ConnectionLimiter(limits.maxConnections(), limits.maxPerClient(), limits.exempt(),
                new ClientRates(rates.connectionsPerMinute(), rates.messagesPerMinute(),
                    rates.authFailuresPerMinute()));
            inbound = InboundServer.withListeners(InboundWiring.listeners(inboundSettings),
                inboundSettings.ioThreads(),
                ignored -> new BufferPool(bufferSize, POOLED_READ_BUFFERS_PER_LOOP),
                ignored -> new BufferPool(Relay.WRITE_BUFFER_BYTES, POOLED_READ_BUFFERS_PER_LOOP),
                limiter, inboundSettings.singleAcceptor());
            proxyPolicy = inboundSettings.proxyProtocol() ? new ProxyPolicy(inboundSettings.proxyNetworks()::contains,
                inboundSettings.proxyTimeout().toMillis()) : null;
            if (proxyPolicy != null)
            {
                // DESIGN.md: the PROXY protocol is smtp.listen's; submission listeners take clients directly
                inbound.proxyProtocol(SmtpSession.SMTP_LISTENER, proxyPolicy);
            }
            for (int i = 0; i < config.delivery().ioThreads(); i++)
            {
                deliveryLoops.add(new SelectorLoop(DELIVERY_LOOP_INDEX_BASE + i, List.of(),
                    new BufferPool(Relay.DELIVERY_READ_BUFFER_BYTES, POOLED_READ_BUFFERS_PER_LOOP),
                    new BufferPool(Relay.DELIVERY_WRITE_BUFFER_BYTES, POOLED_READ_BUFFERS_PER_LOOP), limiter));
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
            tlsTaskPool(Math.max(inboundSettings.ioThreads(), config.delivery().ioThreads()));
        final PasswordVerifier passwords = users == null ? null :
            new PasswordVerifier(users, Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors() / 2)),
                config.serverTls().reloadInterval());
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

    private static ServerTlsContext loadTls(final ServerTlsSettings settings) throws UnusableFileException
    {
        if (!settings.enabled())
        {
            return null;
        }
        try
        {
            final ServerTlsContext tls = ServerTlsContext.load(settings.cert(), settings.key(),
                ServerTlsContext.Provider.valueOf(settings.provider().toUpperCase(Locale.ROOT)));
            tls.watch(settings.reloadInterval());
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
    private static ClientTlsContext loadClientTls(final Routing routing, final ClientTlsSettings settings)
        throws UnusableFileException
    {
        if (!routing.usesTls())
        {
            return null;
        }
        try
        {
            return ClientTlsContext.load(settings.caFile(),
                ServerTlsContext.Provider.valueOf(settings.provider().toUpperCase(Locale.ROOT)));
        }
        catch (final IOException | GeneralSecurityException ex)
        {
            throw new UnusableFileException("delivery.tls.ca_file: " + ex.getMessage(), ex);
        }
    }

    private static UsersFile loadUsers(final AuthSettings settings) throws UnusableFileException
    {
        try
        {
            return settings.users() == null ? null : UsersFile.load(settings.users());
        }
        catch (final IOException ex)
        {
            throw new UnusableFileException("smtp.auth.users: " + ex.getMessage(), ex);
        }
    }

    static void closeTls(final ServerTlsContext tls)
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
}
