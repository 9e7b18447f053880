package dev.relay.delivery;

import dev.relay.config.DeliverySettings;
import dev.relay.config.DnsSettings;
import dev.relay.config.QueueSettings;
import dev.relay.delivery.client.ClientTlsContext;
import dev.relay.metrics.RelayMetrics;
import dev.relay.net.SelectorLoop;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.SystemEpochClock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The delivery stage: one {@link QueueManager} agent on its thread ("queue-manager") and a {@link DeliveryLoop} on
 * each of the given selector loops ("smtp-out-N"), wired through their proxies; the spool wakes the queue manager
 * when new mail is committed. Builds, starts, drains and stops them in order.
 * <p>
 * Control thread only (the relay's start and stop); the accessors from any thread.
 */
public final class DeliveryStage
{
    private static final Logger LOG = LoggerFactory.getLogger(DeliveryStage.class);

    private final List<SelectorLoop> selectorLoops;
    private final List<DeliveryLoop> loops = new ArrayList<>();
    private final List<Thread> loopThreads = new ArrayList<>();
    private final QueueManagerProxy proxy = QueueManagerProxy.create();
    private final AtomicLong errors = new AtomicLong();
    private final HopResolver resolver;
    private final QueueManager queueManager;
    private AgentRunner runner;

    private DeliveryStage(
        final QueueSettings queue, final DeliverySettings delivery, final Spool spool, final OutcomeJournal journal,
        final RelayMetrics metrics, final List<SelectorLoop> selectorLoops, final HopResolver resolver,
        final ClientTlsContext tls)
    {
        this.selectorLoops = selectorLoops;
        this.resolver = resolver;
        final List<DeliveryLoopProxy> proxies = new ArrayList<>();
        for (int i = 0; i < selectorLoops.size(); i++)
        {
            final SelectorLoop selectorLoop = selectorLoops.get(i);
            final DeliveryLoopProxy loopProxy = new DeliveryLoopProxy(selectorLoop::wakeup);
            proxies.add(loopProxy);
            final DeliveryLoop loop =
                new DeliveryLoop(delivery, selectorLoop, spool, resolver, loopProxy, proxy, metrics, tls);
            selectorLoop.addHook(loop);
            loops.add(loop);
        }
        final Bouncer bouncer = new Bouncer(delivery.hostname(), spool.newInjector(proxy::newMail,
            delivery.hostname()), spool);
        this.queueManager = new QueueManager(queue, spool, journal, bouncer, proxy, proxies, metrics,
            SystemEpochClock.INSTANCE, CheckpointWriter.threaded());
    }

    /**
     * Builds the stage on {@code selectorLoops} (not yet started), replays the journal, and starts every thread.
     *
     * @param queue    the queue manager's settings.
     * @param delivery the delivery loops' settings (and the name DSNs are signed with).
     * @param dnsSettings the MX lookups'.
     * @param tls     the client TLS of the delivery loops (STARTTLS to next hops).
     * @param onDeath called when a stage thread dies of an {@code Error}.
     */
    public static DeliveryStage start(
        final QueueSettings queue, final DeliverySettings delivery, final DnsSettings dnsSettings, final Spool spool,
        final OutcomeJournal journal, final RelayMetrics metrics,
        final List<SelectorLoop> selectorLoops, final ClientTlsContext tls,
        final Thread.UncaughtExceptionHandler onDeath)
    {
        final MxHopResolver mx = MxHopResolver.create(dnsSettings);
        final HopResolver resolver = new SystemHopResolver(mx);
        final DeliveryStage stage = new DeliveryStage(queue, delivery, spool, journal, metrics, selectorLoops, resolver,
            tls);
        final MxResolver dns = mx.resolver();
        metrics.destinations(stage::hopCount, stage::hopsReclaimed, dns::lookupsStarted, dns::cacheHits,
            dns::queriesSent, dns::queriesInFlight, dns::peakQueriesInFlight);
        stage.start(queue, spool, metrics, onDeath);
        return stage;
    }

    private void start(
        final QueueSettings queue, final Spool spool, final RelayMetrics metrics,
        final Thread.UncaughtExceptionHandler onDeath)
    {
        metrics.spoolDamageCounters(queueManager::spoolDamagedRecords, queueManager::spoolDamagedMessages);
        final long startNs = System.nanoTime();
        final long replayed = queueManager.recover();
        LOG.info("delivery: queue state read in {} ms ({} journal records; {} messages deferred on disk)",
            (System.nanoTime() - startNs) / 1_000_000, replayed, queueManager.deferredMessages());
        // a committed message wakes the queue manager at once (it would otherwise see it at its next 100 ms park)
        spool.newMailListener(proxy::newMail);
        // the deferred index is disk the backlog takes too (~150 bytes a message; as much as a small body)
        spool.limitQueuedBytes(() -> queueManager.queuedBytes() + queueManager.deferredIndexBytes(),
            queue.maxBytes());
        for (int i = 0; i < selectorLoops.size(); i++)
        {
            final Thread thread = new Thread(selectorLoops.get(i), "smtp-out-" + i);
            thread.setUncaughtExceptionHandler(onDeath);
            thread.start();
            loopThreads.add(thread);
        }
        runner = new AgentRunner(proxy.idleStrategy(), this::onError, null, queueManager);
        AgentRunner.startOnThread(runner, task ->
        {
            final Thread thread = new Thread(task, queueManager.roleName());
            thread.setUncaughtExceptionHandler(onDeath);
            return thread;
        });
    }

    /** A bug in a duty cycle: counted and logged (the first hundred); the agent goes on. Errors stop it. */
    private void onError(final Throwable failure)
    {
        if (errors.incrementAndGet() <= 100)
        {
            LOG.error("queue manager: duty cycle failed", failure);
        }
    }

    /** Messages not finished yet; any thread. */
    public int queuedMessages()
    {
        return queueManager.queuedMessages();
    }

    /** Messages in the active set (in memory); any thread. */
    public int activeMessages()
    {
        return queueManager.activeMessages();
    }

    /** Messages waiting on disk for their next attempt; any thread. */
    public long deferredMessages()
    {
        return queueManager.deferredMessages();
    }

    /** Messages on hold (an operator's {@code spool hold}); any thread. */
    public long heldMessages()
    {
        return queueManager.heldMessages();
    }

    /** Seconds since the oldest queued message was received; 0 when none is queued. Any thread. */
    public long oldestMessageAgeSeconds()
    {
        final long oldest = queueManager.oldestReceivedAtMs();
        return oldest == Long.MAX_VALUE ? 0 : Math.max(0, (System.currentTimeMillis() - oldest) / 1000);
    }

    /** Body bytes of the messages not finished yet ({@code queue.max_bytes}, the disk headroom gauges); any thread. */
    public long queuedBytes()
    {
        return queueManager.queuedBytes();
    }

    /** Makes deferred mail due now and every back-off end; any thread. */
    public void flush()
    {
        resolver.flush();
        proxy.flush();
    }

    /**
     * A reload: the queue manager routes and retries with {@code settings}' routes and schedule from its next duty
     * cycle on. Returns once it has taken them (so mail spooled after this is routed by them), or after
     * {@code timeoutMs}; control thread.
     */
    public void reconfigure(final QueueSettings settings, final long timeoutMs)
    {
        proxy.reconfigure(settings);
        final long deadline = System.currentTimeMillis() + timeoutMs;
        while (proxy.reconfigurationPending() && System.currentTimeMillis() < deadline && isRunning())
        {
            try
            {
                Thread.sleep(1);
            }
            catch (final InterruptedException ex)
            {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /**
     * Hands an operator's queue command to the queue manager, which completes its reply; any thread.
     *
     * @return false when too many commands wait already.
     */
    public boolean submit(final QueueCommand command)
    {
        return proxy.submit(command);
    }

    /** Every delivery thread is alive; any thread. */
    public boolean isRunning()
    {
        final AgentRunner runner = this.runner;
        if (runner == null || runner.isClosed() || runner.thread() == null || !runner.thread().isAlive())
        {
            return false;
        }
        for (final Thread thread : loopThreads)
        {
            if (!thread.isAlive())
            {
                return false;
            }
        }
        return true;
    }

    /**
     * Starts no more transactions: what is in flight finishes (or times out) for up to {@code timeoutMs}, what is
     * left stays queued for the next start.
     */
    public void drain(final long timeoutMs) throws InterruptedException
    {
        proxy.drain();
        final long deadline = System.currentTimeMillis() + timeoutMs;
        while (System.currentTimeMillis() < deadline && connectionCount() > 0)
        {
            Thread.sleep(20);
        }
    }

    /** Next hops with a pool on a delivery loop now; any thread, racy. */
    public long hopCount()
    {
        long count = 0;
        for (final DeliveryLoop loop : loops)
        {
            count += loop.hopCount();
        }
        return count;
    }

    /** Pools dropped after their hop was unused for delivery.idle_timeout; any thread, racy. */
    public long hopsReclaimed()
    {
        long count = 0;
        for (final DeliveryLoop loop : loops)
        {
            count += loop.hopsReclaimed();
        }
        return count;
    }

    private int connectionCount()
    {
        int count = 0;
        for (final DeliveryLoop loop : loops)
        {
            count += loop.connectionCount();
        }
        return count;
    }

    /**
     * Stops the delivery loops (closing their connections: what was in flight goes back deferred), then the queue
     * manager, which journals the last outcomes and closes its tailer, then the resolver.
     */
    public void close() throws InterruptedException
    {
        for (final SelectorLoop loop : selectorLoops)
        {
            loop.stop();
        }
        for (final Thread thread : loopThreads)
        {
            thread.join(10_000);
        }
        if (runner != null)
        {
            runner.close();
        }
        resolver.close();
    }
}
