package dev.relay.delivery;

import dev.relay.config.RelayConfig;
import dev.relay.metrics.RelayMetrics;
import dev.relay.net.LoopHook;
import dev.relay.net.SelectorLoop;
import dev.relay.smtp.ClientListener;
import dev.relay.smtp.ClientSettings;
import dev.relay.smtp.DsnParameters;
import dev.relay.smtp.OutboundMessage;
import dev.relay.smtp.RecipientResult;
import dev.relay.smtp.TransactionResult;
import dev.relay.smtp.SmtpClientSession;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpooledMessage;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * The queue manager and the SMTP client pool of the relay, running as a hook on one delivery selector loop
 * ("smtp-out-0"), which owns every outbound connection: nothing here is touched by another thread except through
 * {@link SelectorLoop#execute}.
 * <p>
 * Each pass: take newly spooled messages (a tailer on the spool) → route their recipients to next hops, grouped
 * per hop into transactions → hand them to idle pooled connections or open new ones (bounded per hop) → retries
 * that came due → housekeeping once a second (idle connections, finished spool cycles).
 * <p>
 * Per recipient: 2xx → delivered; 4xx, connection loss or timeout → deferred, retried per
 * {@code delivery.retry.schedule} until {@code queue.max_age}, then bounced (4.4.7); 5xx → bounced. Every result
 * goes to the {@link OutcomeJournal} as soon as it is known; a restart replays the journal and then the spool, so
 * nothing delivered is sent again except transactions in flight at the crash, and nothing pending is forgotten.
 * A message with bounced recipients gets one RFC 3464 DSN to its sender, unless the sender is {@code <>}.
 * <p>
 * DSN requests (RFC 3461) are honoured per recipient: a next hop that offers DSN gets them with the message and the
 * duty to act on them; otherwise the relay acts. NOTIFY without FAILURE (NEVER, or SUCCESS/DELAY alone) leaves a
 * bounced recipient out of the DSN, NOTIFY without DELAY leaves a deferred one out of the delay warning, and
 * NOTIFY with SUCCESS, relayed to a next hop without DSN, gets a "relayed" DSN at the end of that round.
 */
public final class DeliveryAgent implements LoopHook, ClientListener
{
    private static final int SPOOL_POLL_LIMIT = 512;
    private static final long HOUSEKEEPING_INTERVAL_MS = 1_000;

    private final RelayConfig config;
    private final Spool spool;
    private final SpoolReader reader;
    private final OutcomeJournal journal;
    private final SelectorLoop loop;
    private final Router router;
    private final HopResolver resolver;
    private final Bouncer bouncer;
    private final SpoolMover mover;
    private final RelayMetrics metrics;
    private final ClientSettings clientSettings;
    private final long[] retryScheduleMs;
    private final long maxAgeMs;
    private final int maxConnectionsPerHop;
    private final int maxTransactionsPerConnection;
    private final int maxRecipientsPerTransaction;
    private final long idleTimeoutMs;
    private final long connectTimeoutMs;
    private final long delayWarningMs;

    private final Map<Long, QueuedMessage> live = new HashMap<>();
    private final Map<Long, Recovered> recovered = new HashMap<>();
    private final Map<String, Hop> hops = new HashMap<>();
    private final IdentityHashMap<SmtpClientSession, HopConnection> sessions = new IdentityHashMap<>();
    /** Live messages by the spool cycle of their first record: what pins each cycle file on disk. */
    private final TreeMap<Integer, Set<QueuedMessage>> liveByCycle = new TreeMap<>();
    private final RetryQueue retries = new RetryQueue();
    private final Consumer<SpooledMessage> onSpooled = this::onSpooled;
    private final List<Hop> dirtyHops = new ArrayList<>();
    private final ArrayDeque<SpoolBodyCursor> cursors = new ArrayDeque<>();
    /** Finished messages whose moved copy was written but not yet read back: the tailer skips that copy. */
    private final Set<Long> finishedBeforeCopyRead = new HashSet<>();

    private long nowMs;
    private long nextHousekeepingMs;
    private volatile int queuedMessages;
    private volatile long queuedBytes;
    private volatile boolean flushRequested;
    private boolean draining;

    /** What the journal said about a message before this run. */
    private static final class Recovered
    {
        final Map<Integer, Byte> status = new HashMap<>();
        final Map<Integer, String> text = new HashMap<>();
        int attempts;
        long nextAttemptMs;
        boolean done;
    }

    public DeliveryAgent(
        final RelayConfig config,
        final Spool spool,
        final OutcomeJournal journal,
        final SelectorLoop loop,
        final HopResolver resolver,
        final Bouncer bouncer,
        final RelayMetrics metrics)
    {
        this.config = config;
        this.spool = spool;
        this.reader = spool.newReader(null);
        this.journal = journal;
        this.loop = loop;
        this.router = new Router(config);
        this.resolver = resolver;
        this.bouncer = bouncer;
        this.mover = new SpoolMover(bouncer.writer(), spool);
        this.metrics = metrics;
        this.clientSettings = new ClientSettings(
            config.smtpHostname(),
            config.deliveryCommandTimeout().toMillis(),
            config.deliveryDataInitTimeout().toMillis(),
            config.deliveryDataBlockTimeout().toMillis(),
            config.deliveryDataDoneTimeout().toMillis(),
            config.deliveryMaxRecipientsPerTransaction(),
            config.deliveryMinDataRate());
        final List<Duration> schedule = config.deliveryRetrySchedule();
        this.retryScheduleMs = new long[schedule.size()];
        for (int i = 0; i < retryScheduleMs.length; i++)
        {
            retryScheduleMs[i] = schedule.get(i).toMillis();
        }
        this.maxAgeMs = config.queueMaxAge().toMillis();
        this.maxConnectionsPerHop = config.deliveryMaxConnectionsPerHop();
        this.maxTransactionsPerConnection = config.deliveryMaxMessagesPerConnection();
        this.maxRecipientsPerTransaction = config.deliveryMaxRecipientsPerTransaction();
        this.idleTimeoutMs = config.deliveryIdleTimeout().toMillis();
        this.connectTimeoutMs = config.deliveryConnectTimeout().toMillis();
        this.delayWarningMs = config.deliveryDelayWarning().toMillis();
        this.nowMs = System.currentTimeMillis();
    }

    /** Reads the journal: what was delivered, bounced or deferred before this start. Call before the loop runs. */
    public long recover()
    {
        return journal.replay(new OutcomeJournal.Visitor()
        {
            @Override
            public void onResult(
                final long queueId, final int recipient, final byte status, final int attempts,
                final long nextAttemptMs, final String text)
            {
                final Recovered state = recovered.computeIfAbsent(queueId, ignored -> new Recovered());
                state.status.put(recipient, status);
                state.text.put(recipient, text);
                state.attempts = Math.max(state.attempts, attempts);
                state.nextAttemptMs = Math.max(state.nextAttemptMs, nextAttemptMs);
            }

            @Override
            public void onDone(final long queueId)
            {
                recovered.computeIfAbsent(queueId, ignored -> new Recovered()).done = true;
            }
        });
    }

    /** Spool records the reader skipped as damaged (metrics); any thread, racy read. */
    public long spoolDamagedRecords()
    {
        return reader.damagedRecords();
    }

    /** Messages the reader dropped for a damaged record (metrics); any thread, racy read. */
    public long spoolDamagedMessages()
    {
        return reader.damagedMessages();
    }

    /** Messages not yet finished (for metrics and {@code /health}); any thread. */
    public int queuedMessages()
    {
        return queuedMessages;
    }

    /** Body bytes of the messages not yet finished ({@code queue.max_bytes}); any thread. */
    public long queuedBytes()
    {
        return queuedBytes;
    }

    /** Makes every deferred message due now and every down hop eligible for a probe; any thread. */
    public void flush()
    {
        flushRequested = true;
        loop.wakeup();
    }

    /** Stops starting transactions; connections finish what they are doing and close. Loop thread. */
    public void drain()
    {
        draining = true;
        for (final Hop hop : hops.values())
        {
            for (final HopConnection connection : new ArrayList<>(hop.idle))
            {
                connection.session.quit();
            }
            hop.idle.clear();
        }
    }

    @Override
    public int doWork(final long nowMs)
    {
        this.nowMs = nowMs;
        int work = 0;
        if (!draining)
        {
            final int polled = reader.poll(onSpooled, SPOOL_POLL_LIMIT);
            if (polled == 0 && !recovered.isEmpty())
            {
                // the replay reached the end of the spool: what the journal still names is no longer spooled
                recovered.clear();
            }
            work += polled;
            if (flushRequested)
            {
                flushRequested = false;
                onFlush();
            }
            QueuedMessage due;
            while ((due = retries.pollDue(nowMs)) != null)
            {
                startRound(due);
                work++;
            }
            work += mover.doWork();
        }
        for (int i = 0; i < dirtyHops.size(); i++)
        {
            final Hop hop = dirtyHops.get(i);
            hop.dirty = false;
            dispatch(hop);
        }
        dirtyHops.clear();
        if (nowMs >= nextHousekeepingMs)
        {
            nextHousekeepingMs = nowMs + HOUSEKEEPING_INTERVAL_MS;
            housekeeping();
        }
        queuedMessages = live.size();
        return work;
    }

    @Override
    public boolean hasPendingWork()
    {
        return flushRequested || !dirtyHops.isEmpty() || (mover.hasWork() && !draining);
    }

    private void onSpooled(final SpooledMessage message)
    {
        final QueuedMessage existing = live.get(message.queueId());
        if (existing != null)
        {
            onNewerCopy(existing, message);
            return;
        }
        if (finishedBeforeCopyRead.remove(message.queueId()))
        {
            // the moved copy of a message that was finished before the tailer reached the copy
            return;
        }
        final Recovered before = recovered.remove(message.queueId());
        if (before != null && before.done)
        {
            return;
        }
        final QueuedMessage queued = new QueuedMessage(message);
        live.put(message.queueId(), queued);
        queuedBytes += message.bodyBytes();
        pin(queued);
        if (before != null)
        {
            for (final Map.Entry<Integer, Byte> entry : before.status.entrySet())
            {
                final int index = entry.getKey();
                if (index >= 0 && index < queued.recipientCount())
                {
                    queued.status[index] = toQueuedStatus(entry.getValue());
                    queued.lastReply[index] = before.text.get(index);
                }
            }
            queued.attempts = before.attempts;
            if (queued.allFinal())
            {
                finish(queued);
                return;
            }
            if (before.nextAttemptMs > nowMs && queued.anyDeferred())
            {
                retries.schedule(queued, before.nextAttemptMs);
                return;
            }
        }
        startRound(queued);
    }

    private static byte toQueuedStatus(final byte journalStatus)
    {
        switch (journalStatus)
        {
            case OutcomeJournal.DELIVERED:
                return QueuedMessage.DELIVERED;
            case OutcomeJournal.BOUNCED:
                return QueuedMessage.BOUNCED;
            default:
                return QueuedMessage.DEFERRED;
        }
    }

    /** Routes every recipient that is not final into per-hop jobs. */
    private void startRound(final QueuedMessage queued)
    {
        if (queued.moving)
        {
            mover.abandon(queued);
        }
        final List<byte[]> recipients = queued.message.recipients();
        final Map<NextHop, List<Integer>> byHop = new HashMap<>();
        for (int i = 0; i < recipients.size(); i++)
        {
            final byte status = queued.status[i];
            if (status == QueuedMessage.READY || status == QueuedMessage.DEFERRED)
            {
                final NextHop nextHop = router.route(Router.domainOf(recipients.get(i)));
                byHop.computeIfAbsent(nextHop, ignored -> new ArrayList<>()).add(i);
            }
        }
        for (final Map.Entry<NextHop, List<Integer>> entry : byHop.entrySet())
        {
            final Hop hop = hops.computeIfAbsent(entry.getKey().key(), ignored -> new Hop(entry.getKey()));
            final List<Integer> indexes = entry.getValue();
            for (int from = 0; from < indexes.size(); from += maxRecipientsPerTransaction)
            {
                final int to = Math.min(indexes.size(), from + maxRecipientsPerTransaction);
                final int[] chunk = new int[to - from];
                for (int i = from; i < to; i++)
                {
                    chunk[i - from] = indexes.get(i);
                    queued.status[indexes.get(i)] = QueuedMessage.IN_FLIGHT;
                }
                queued.jobsOut++;
                hop.jobs.add(new DeliveryJob(queued, hop, chunk, cursors, spool));
            }
            markDirty(hop);
        }
        if (queued.jobsOut == 0)
        {
            endRound(queued);
        }
    }

    private void markDirty(final Hop hop)
    {
        if (!hop.dirty)
        {
            hop.dirty = true;
            dirtyHops.add(hop);
        }
    }

    /**
     * Matches waiting jobs with connections: idle ones first, then new ones up to the hop's limit, each to the most
     * preferred address not backed off ({@link Hop#nextAddress}); when every address is backed off and no
     * connection is left, the waiting mail is deferred.
     */
    private void dispatch(final Hop hop)
    {
        if (hop.jobs.isEmpty() || draining)
        {
            return;
        }
        if (hop.needsLookup(nowMs))
        {
            if (hop.startLookup())
            {
                resolver.resolve(hop.nextHop, nowMs, result -> loop.execute(() -> onResolved(hop, result)));
            }
            return;
        }
        final HopAddresses addresses = hop.addresses();
        if (!addresses.ok())
        {
            failAllQueued(hop, addresses.permanent(), addresses.statusCode(), addresses.reason());
            return;
        }
        while (!hop.jobs.isEmpty() && !hop.idle.isEmpty())
        {
            final HopConnection connection = hop.idle.pollFirst();
            if (!connection.closed)
            {
                send(connection, hop.jobs.pollFirst());
            }
        }
        // a connect may fail inside open() (onClosed at once): the conditions are read again on every turn, and the
        // turns are bounded in case an address is neither taken nor backed off
        for (int opened = 0; opened < maxConnectionsPerHop && !hop.jobs.isEmpty() &&
            hop.connecting() < hop.jobs.size() && hop.connections.size() < maxConnectionsPerHop; opened++)
        {
            final HopAddress address = hop.nextAddress(nowMs);
            if (address == null)
            {
                break;
            }
            open(hop, address);
        }
        if (!hop.jobs.isEmpty() && hop.connections.isEmpty())
        {
            // every address is backed off: the mail waits for its next retry (Postfix qmgr's dead destination)
            failAllQueued(hop, false, "4.4.1", "delivery temporarily suspended: " + hop.lastFailure());
        }
    }

    private void onResolved(final Hop hop, final HopAddresses result)
    {
        hop.resolved(result);
        if (!result.ok())
        {
            DeliveryLog.info("{}: lookup failed: {}", hop.nextHop.key(), result.reason());
        }
        markDirty(hop);
    }

    private void open(final Hop hop, final HopAddress address)
    {
        final HopConnection connection = new HopConnection(hop, address);
        hop.opened(connection);
        metrics.onConnectionOut();
        try
        {
            loop.connect(address.address(), conn ->
            {
                final SmtpClientSession session = new SmtpClientSession(clientSettings, conn, this);
                connection.session = session;
                sessions.put(session, connection);
                return session;
            }, connectTimeoutMs);
        }
        catch (final java.io.UncheckedIOException ex)
        {
            // no socket could even be opened (descriptor limit): the address counts as unreachable for now
            final String failure = "connect to " + DeliveryLog.relay(address) + ": cannot open a socket: " +
                ex.getCause().getMessage();
            DeliveryLog.info("{}: {}", hop, failure);
            hop.closed(connection, failure, nowMs);
        }
    }

    private void send(final HopConnection connection, final DeliveryJob job)
    {
        connection.job = job;
        job.startedMs = nowMs;
        job.connection = connection;
        if (!connection.session.send(job))
        {
            // the session was not idle after all: put the job back and drop this connection from the pool
            connection.job = null;
            job.hop.jobs.addFirst(job);
            connection.session.quit();
        }
    }

    @Override
    public void onReady(final SmtpClientSession session)
    {
        final HopConnection connection = sessions.get(session);
        if (connection == null)
        {
            return;
        }
        connection.ready = true;
        final Hop hop = connection.hop;
        // a greeting is not yet proof of health (a peer may greet and then break every session): a probe stays the
        // hop's only one until it finishes a transaction (onTransactionDone)
        becomeIdleOrWork(connection);
        markDirty(hop);
    }

    @Override
    public void onTransactionDone(
        final SmtpClientSession session, final OutboundMessage message, final TransactionResult results)
    {
        final HopConnection connection = sessions.get(session);
        if (connection == null || connection.job == null)
        {
            return;
        }
        final DeliveryJob job = connection.job;
        connection.job = null;
        connection.transactions++;
        job.outboundClosed();
        if (results.sessionBroke())
        {
            // the session broke mid-transaction: a hop failure, counted when onClosed follows
            connection.brokeInFlight = true;
        }
        else
        {
            // the peer spoke SMTP to the end of a transaction (whatever its replies): the address is healthy again
            connection.hop.transactionCompleted(connection);
        }
        final String relay = DeliveryLog.relay(connection.address);
        for (int i = 0; i < job.recipientIndexes.length; i++)
        {
            final RecipientResult result = results.get(i);
            final String reply = result.diagnostic();
            switch (result.status())
            {
                case DELIVERED:
                    delivered(job, i, relay, reply, result.enhancedCode(), session.capabilities().dsn());
                    break;
                case FAILED:
                    bounced(job.queued, job.recipientIndexes[i], relay, result.enhancedCode(), reply, job);
                    break;
                default:
                    deferred(job.queued, job.recipientIndexes[i], relay, result.enhancedCode(), reply, job);
                    break;
            }
        }
        jobDone(job);
        if (session.isClosed())
        {
            // ended with the transaction (the server answered mid-body, or the transfer was too slow): onClosed follows
            return;
        }
        if (connection.transactions >= maxTransactionsPerConnection || draining)
        {
            session.quit();
        }
        else
        {
            becomeIdleOrWork(connection);
        }
    }

    @Override
    public void onClosed(final SmtpClientSession session, final String reason)
    {
        final HopConnection connection = sessions.remove(session);
        if (connection == null)
        {
            return;
        }
        connection.closed = true;
        final Hop hop = connection.hop;
        final String relay = DeliveryLog.relay(connection.address);
        final DeliveryJob job = connection.job;
        if (job != null)
        {
            connection.job = null;
            job.outboundClosed();
            for (final int index : job.recipientIndexes)
            {
                deferred(job.queued, index, relay, "4.4.2", reason, job);
            }
            jobDone(job);
        }
        String failure = null;
        if (!connection.ready || job != null || connection.brokeInFlight)
        {
            // never got as far as a usable session (refused, timed out, greeting or HELO refused), or lost one
            // mid-transaction (timeout, garbage, drop, 421): this address backs off, the next one is tried at once
            failure = (connection.ready ? "session with " : "connect to ") + relay + ": " + reason;
            DeliveryLog.info("{}: {}", hop, failure);
        }
        hop.closed(connection, failure, nowMs);
        if (failure != null && hop.connections.isEmpty() && hop.allBackedOff(nowMs))
        {
            // the last usable address just failed: the waiting mail is deferred with what it met
            failAllQueued(hop, false, "4.4.1", failure);
        }
        markDirty(hop);
    }

    private void becomeIdleOrWork(final HopConnection connection)
    {
        final Hop hop = connection.hop;
        if (!hop.jobs.isEmpty() && !draining)
        {
            send(connection, hop.jobs.pollFirst());
            return;
        }
        connection.idleSinceMs = nowMs;
        hop.idle.addFirst(connection);
    }

    private void delivered(
        final DeliveryJob job, final int position, final String relay, final String reply, final String dsn,
        final boolean peerOffersDsn)
    {
        final QueuedMessage queued = job.queued;
        final int index = job.recipientIndexes[position];
        queued.status[index] = QueuedMessage.DELIVERED;
        if (!peerOffersDsn && DsnParameters.notifiesSuccess(queued.message.notify(index)))
        {
            // RFC 3461 §6.2.3: the next hop cannot carry NOTIFY=SUCCESS on, so the relay reports "relayed" itself
            queued.markSuccessToReport(index);
            queued.lastReply[index] = reply;
            queued.remoteMta[index] = job.hop.nextHop.host();
        }
        journal.recordResult(queued.queueId(), index, OutcomeJournal.DELIVERED, queued.attempts + 1, 0, reply);
        metrics.onDelivered((nowMs - queued.message.receivedAtMs()) * 1_000_000L);
        DeliveryLog.attempt(queued.queueIdText(), recipient(queued, index), relay,
            nowMs - queued.message.receivedAtMs(), dsn == null ? "2.0.0" : dsn, "sent", reply);
    }

    private void bounced(
        final QueuedMessage queued, final int index, final String relay, final String dsn, final String reply,
        final DeliveryJob job)
    {
        queued.status[index] = QueuedMessage.BOUNCED;
        queued.lastReply[index] = reply;
        queued.lastStatusCode[index] = dsn == null ? "5.0.0" : dsn;
        queued.remoteMta[index] = job == null || job.connection == null ? null : job.connection.address.host();
        journal.recordResult(queued.queueId(), index, OutcomeJournal.BOUNCED, queued.attempts + 1, 0, reply);
        metrics.onBounced();
        DeliveryLog.attempt(queued.queueIdText(), recipient(queued, index), relay,
            nowMs - queued.message.receivedAtMs(), queued.lastStatusCode[index], "bounced", reply);
    }

    private void deferred(
        final QueuedMessage queued, final int index, final String relay, final String dsn, final String reply,
        final DeliveryJob job)
    {
        queued.status[index] = QueuedMessage.DEFERRED;
        queued.lastReply[index] = reply;
        queued.lastStatusCode[index] = dsn == null ? "4.0.0" : dsn;
        queued.remoteMta[index] = job == null || job.connection == null ? null : job.connection.address.host();
        metrics.onDeferred();
        DeliveryLog.attempt(queued.queueIdText(), recipient(queued, index), relay,
            nowMs - queued.message.receivedAtMs(), queued.lastStatusCode[index], "deferred", reply);
    }

    private void failAllQueued(final Hop hop, final boolean permanent, final String dsn, final String reason)
    {
        DeliveryJob job;
        while ((job = hop.jobs.pollFirst()) != null)
        {
            for (final int index : job.recipientIndexes)
            {
                if (permanent)
                {
                    bounced(job.queued, index, "none", dsn, reason, job);
                }
                else
                {
                    deferred(job.queued, index, "none", dsn, reason, job);
                }
            }
            jobDone(job);
        }
    }

    private void jobDone(final DeliveryJob job)
    {
        final QueuedMessage queued = job.queued;
        if (--queued.jobsOut == 0)
        {
            endRound(queued);
        }
    }

    /** Every job of this round came back: finish, or schedule the next attempt, or expire. */
    private void endRound(final QueuedMessage queued)
    {
        if (queued.newerCopy != null)
        {
            takeNewerCopy(queued, queued.newerCopy);
        }
        if (queued.anySuccessToReport())
        {
            reportRelayed(queued);
        }
        if (!queued.anyDeferred())
        {
            finish(queued);
            return;
        }
        queued.attempts++;
        final long ageMs = nowMs - queued.message.receivedAtMs();
        if (ageMs >= maxAgeMs)
        {
            for (int i = 0; i < queued.recipientCount(); i++)
            {
                if (queued.status[i] == QueuedMessage.DEFERRED)
                {
                    final String reply = "message expired after " + Duration.ofMillis(ageMs).toSeconds() +
                        "s in the queue; last error: " + queued.lastReply[i];
                    queued.status[i] = QueuedMessage.BOUNCED;
                    queued.lastReply[i] = reply;
                    queued.lastStatusCode[i] = "4.4.7";
                    journal.recordResult(queued.queueId(), i, OutcomeJournal.BOUNCED, queued.attempts, 0, reply);
                    metrics.onBounced();
                    DeliveryLog.attempt(queued.queueIdText(), recipient(queued, i), "none", ageMs, "4.4.7",
                        "expired", reply);
                }
            }
            finish(queued);
            return;
        }
        final long delayMs = retryScheduleMs[Math.min(queued.attempts - 1, retryScheduleMs.length - 1)];
        final long dueMs = nowMs + delayMs;
        for (int i = 0; i < queued.recipientCount(); i++)
        {
            if (queued.status[i] == QueuedMessage.DEFERRED)
            {
                journal.recordResult(queued.queueId(), i, OutcomeJournal.DEFERRED, queued.attempts, dueMs,
                    queued.lastReply[i]);
            }
        }
        retries.schedule(queued, dueMs);
        if (delayWarningMs > 0 && !queued.warned && ageMs >= delayWarningMs && queued.message.reversePath().length > 0)
        {
            // delivery.delay_warning: tell the sender once that the message is still being retried (Postfix
            // delay_warning_time); the warning is not journaled, so a restart may send a second one
            queued.warned = true;
            bouncer.warnDelayed(queued, (message, dsnQueueId) ->
                DeliveryLog.info("{}: sender delay notification: {}", message.queueIdText(), dsnQueueId));
        }
    }

    /**
     * The "relayed" DSN for the recipients of this round that asked for SUCCESS and went to a next hop without DSN
     * (RFC 3461 §6.2.3, as Postfix does). Like the delay warning it is not journaled: a crash before it is spooled
     * loses it, and the recipients stay delivered.
     */
    private void reportRelayed(final QueuedMessage queued)
    {
        if (queued.message.reversePath().length == 0)
        {
            queued.successToReport = null;
            DeliveryLog.info("{}: null sender: no success notification", queued.queueIdText());
            return;
        }
        if (bouncer.reportRelayed(queued, (message, dsnQueueId) ->
            DeliveryLog.info("{}: sender success notification: {}", message.queueIdText(), dsnQueueId)) ==
            Bouncer.REFUSED)
        {
            DeliveryLog.warn("{}: could not queue the success notification (spool refused it)",
                queued.queueIdText());
        }
    }

    private void finish(final QueuedMessage queued)
    {
        if (queued.anyBounced() && queued.message.reversePath().length > 0 && !queued.bouncing)
        {
            queued.bouncing = true;
            final int bounce = bouncer.bounce(queued, this::onBounceQueued);
            if (bounce == Bouncer.QUEUED)
            {
                return;
            }
            if (bounce == Bouncer.REFUSED)
            {
                DeliveryLog.warn("{}: could not queue the non-delivery notification (spool refused it)",
                    queued.queueIdText());
            }
        }
        else if (queued.anyBounced() && queued.message.reversePath().length == 0)
        {
            DeliveryLog.info("{}: null sender: no non-delivery notification", queued.queueIdText());
        }
        done(queued);
    }

    private void onBounceQueued(final QueuedMessage queued, final String dsnQueueId)
    {
        DeliveryLog.info("{}: sender non-delivery notification: {}", queued.queueIdText(), dsnQueueId);
        done(queued);
    }

    private void done(final QueuedMessage queued)
    {
        if (queued.finished)
        {
            return;
        }
        queued.finished = true;
        if (queued.copyPending)
        {
            finishedBeforeCopyRead.add(queued.queueId());
        }
        journal.recordDone(queued.queueId());
        retries.remove(queued);
        live.remove(queued.queueId());
        queuedBytes -= queued.message.bodyBytes();
        unpin(queued);
        DeliveryLog.info("{}: removed", queued.queueIdText());
    }

    private void onFlush()
    {
        QueuedMessage due;
        final List<QueuedMessage> all = new ArrayList<>();
        while ((due = retries.pollDue(Long.MAX_VALUE)) != null)
        {
            all.add(due);
        }
        for (final Hop hop : hops.values())
        {
            hop.flush(); // back-offs end, a failed lookup is asked again now, not when its retry time comes
        }
        for (final QueuedMessage queued : all)
        {
            startRound(queued);
        }
        DeliveryLog.info("flush: {} deferred messages made ready", all.size());
    }

    private void housekeeping()
    {
        // idle pooled connections past delivery.idle_timeout are closed with QUIT
        for (final Hop hop : hops.values())
        {
            for (int i = hop.connections.size() - 1; i >= 0; i--)
            {
                final HopConnection connection = hop.connections.get(i);
                if (connection.job != null && connection.session != null)
                {
                    connection.session.checkTransferDeadline(nowMs);
                }
            }
            final Iterator<HopConnection> idle = hop.idle.descendingIterator();
            while (idle.hasNext())
            {
                final HopConnection connection = idle.next();
                if (nowMs - connection.idleSinceMs >= idleTimeoutMs)
                {
                    idle.remove();
                    connection.session.quit();
                }
            }
        }
        moveDeferredForward();
        deleteFinishedCycles();
    }

    private void pin(final QueuedMessage queued)
    {
        liveByCycle.computeIfAbsent(spool.cycleOf(queued.message.startIndex()), ignored -> new HashSet<>()).add(queued);
    }

    private void unpin(final QueuedMessage queued)
    {
        final int cycle = spool.cycleOf(queued.message.startIndex());
        final Set<QueuedMessage> pinned = liveByCycle.get(cycle);
        if (pinned != null && pinned.remove(queued) && pinned.isEmpty())
        {
            liveByCycle.remove(cycle);
        }
    }

    /**
     * Postfix moves mail it cannot deliver to its deferred queue; here, deferred messages whose records sit in a
     * cycle older than the previous one are copied into the current cycle (same queue id, same recipients), so a
     * few old deferred messages never pin hours of spool files. The copy takes over when the tailer reads it.
     */
    private void moveDeferredForward()
    {
        if (liveByCycle.isEmpty())
        {
            return;
        }
        final int oldest = liveByCycle.firstKey();
        if (oldest >= spool.currentCycle() - 1)
        {
            return;
        }
        for (final QueuedMessage queued : liveByCycle.get(oldest))
        {
            if (queued.jobsOut == 0 && !queued.moving && !queued.copyPending && !queued.bouncing &&
                !queued.finished && queued.newerCopy == null && !mover.offer(queued))
            {
                break;
            }
        }
    }

    /** The tailer met a second copy of a live message (moved forward, or both copies seen again after a restart). */
    private void onNewerCopy(final QueuedMessage queued, final SpooledMessage copy)
    {
        if (copy.startIndex() <= queued.message.startIndex())
        {
            return;
        }
        if (queued.jobsOut > 0)
        {
            queued.newerCopy = copy;
            return;
        }
        takeNewerCopy(queued, copy);
    }

    private void takeNewerCopy(final QueuedMessage queued, final SpooledMessage copy)
    {
        unpin(queued);
        queued.message = copy;
        queued.newerCopy = null;
        queued.moving = false;
        queued.copyPending = false;
        pin(queued);
        // the journal cycles the old records' outcomes live in may now be deleted: restate them
        for (int i = 0; i < queued.recipientCount(); i++)
        {
            final byte status = queued.status[i];
            if (status == QueuedMessage.DELIVERED || status == QueuedMessage.BOUNCED ||
                status == QueuedMessage.DEFERRED)
            {
                journal.recordResult(queued.queueId(), i, status == QueuedMessage.DELIVERED ? OutcomeJournal.DELIVERED :
                    status == QueuedMessage.BOUNCED ? OutcomeJournal.BOUNCED : OutcomeJournal.DEFERRED,
                    queued.attempts, queued.nextAttemptMs, queued.lastReply[i]);
            }
        }
    }

    /**
     * Disk use follows live mail: spool (and journal) cycles older than every live message, every message still
     * being received, and the tailer's own position are deleted.
     */
    private void deleteFinishedCycles()
    {
        int keepFrom = spool.currentCycle();
        if (!liveByCycle.isEmpty())
        {
            keepFrom = Math.min(keepFrom, liveByCycle.firstKey());
        }
        final long resumeIndex = reader.resumeIndex();
        if (resumeIndex > 0)
        {
            keepFrom = Math.min(keepFrom, spool.cycleOf(resumeIndex));
        }
        if (!recovered.isEmpty())
        {
            // still replaying after a restart: nothing is known to be finished yet
            return;
        }
        final int deleted = spool.deleteCyclesBefore(keepFrom);
        final int deletedJournal = journal.deleteCyclesBefore(keepFrom);
        if (deleted + deletedJournal > 0)
        {
            DeliveryLog.info("spool: deleted {} finished cycle files ({} journal)", deleted, deletedJournal);
        }
    }

    private static String recipient(final QueuedMessage queued, final int index)
    {
        return new String(queued.message.recipients().get(index), StandardCharsets.UTF_8);
    }

    /** Closes the spool tailer; loop thread, after the loop stopped dispatching. */
    public void close()
    {
        reader.close();
        resolver.close();
    }
}
