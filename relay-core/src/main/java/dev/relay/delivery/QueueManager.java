package dev.relay.delivery;

import dev.relay.config.RelayConfig;
import dev.relay.metrics.RelayMetrics;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolInjector;
import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpooledMessage;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.EpochClock;
import org.jctools.queues.MessagePassingQueue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The queue manager (Postfix's qmgr): a duty-cycle agent on its own thread ("queue-manager") that owns the spool
 * tail, what the outcome journal says, the retry schedule, expiry, the DSN triggers and disk clean-up, and hands
 * {@link DeliveryJob}s to the {@link DeliveryLoop}s — each next hop to one loop, by a stable hash of its key — taking
 * them back with an outcome for every recipient.
 * <p>
 * A duty cycle ({@link #doWork()}), reading the injected clock once: outcomes that came back (journaled at once) →
 * DSNs and moved copies the spool made durable → newly spooled messages (the tailer; also the replay after a
 * restart) → a flush asked for → retries that came due → a slice of moving deferred mail forward → jobs a loop's
 * queue could not take yet → housekeeping once a second (what to move forward, cycle files to delete).
 * <p>
 * Per recipient: 2xx → delivered; 4xx, connection loss or timeout → deferred, retried per
 * {@code delivery.retry.schedule} until {@code queue.max_age}, then bounced (4.4.7); 5xx → bounced. Every result
 * goes to the {@link OutcomeJournal} as soon as it is known; a restart replays the journal ({@link #recover()}) and
 * then the spool, so nothing delivered is sent again except transactions in flight at the crash, and nothing
 * pending is forgotten. A message with bounced recipients gets one RFC 3464 DSN to its sender, unless the sender is
 * {@code <>}.
 * <p>
 * DSN requests (RFC 3461) are honoured per recipient: a next hop that offers DSN gets them with the message and the
 * duty to act on them; otherwise the relay acts. NOTIFY without FAILURE (NEVER, or SUCCESS/DELAY alone) leaves a
 * bounced recipient out of the DSN, NOTIFY without DELAY leaves a deferred one out of the delay warning, and
 * NOTIFY with SUCCESS, relayed to a next hop without DSN, gets a "relayed" DSN at the end of that round.
 * <p>
 * Where mail waits: messages in a round (jobs out) are counted on them; deferred ones are reached only through the
 * {@link RetryQueue} (by next-attempt time) and new ones only through {@link #onSpooled}. Today every live message
 * is in memory; a bounded active set (Postfix's 20,000) replaces that queue with one kept on disk by next-attempt
 * time and loads a message's envelope when it becomes due, without changing the rounds, outcomes or clean-up.
 * <p>
 * Threads: {@link #recover()} on the control thread before the agent starts; the rest on the agent's thread;
 * {@link #queuedMessages()} and {@link #queuedBytes()} from any thread. Other threads reach it only through its
 * {@link QueueManagerProxy}. Allocates per message and per round, not per pass.
 */
public final class QueueManager implements Agent
{
    /** Longest park when idle: retries and housekeeping are due on time even with no other work. */
    static final long MAX_IDLE_MS = 100;
    static final int SPOOL_POLL_LIMIT = 512;
    private static final int RESULTS_PER_PASS = 4096;
    private static final long HOUSEKEEPING_INTERVAL_MS = 1_000;

    private final SpoolReader reader;
    private final OutcomeJournal journal;
    private final SpoolInjector injector;
    /** Replaced by a reload (routes), like the retry schedule. */
    private Router router;
    private final Bouncer bouncer;
    private final EpochClock clock;
    private final QueueManagerProxy inbox;
    private final DeliveryLoopProxy[] loops;
    private long[] retryScheduleMs;
    private final long maxAgeMs;
    private final int maxRecipientsPerTransaction;
    private final long delayWarningMs;

    private final OutcomeRecorder outcomes;
    private final Map<Long, QueuedMessage> live = new HashMap<>();
    private final JournalRecovery recovery = new JournalRecovery();
    private final SpoolCycles cycles;
    private final RetryQueue retries = new RetryQueue();
    /**
     * Messages finished since the tailer last reached the end of the spool. A message moved forward has more than
     * one copy in the spool (after a restart, copies from before it too), and the tailer may meet a later copy after
     * the message is done: it skips those. Cleared each time the tailer is at the end, as every copy of a finished
     * message was written before it finished.
     */
    private final Set<Long> finishedAhead = new HashSet<>();
    private final Consumer<SpooledMessage> onSpooled = this::onSpooled;
    private final MessagePassingQueue.Consumer<DeliveryJob> onResult = this::onResult;

    private long nowMs;
    private long nextHousekeepingMs;
    private boolean draining;
    private volatile int queuedMessages;
    private volatile long queuedBytes;

    /**
     * @param bouncer where DSNs are made; its spool injector is used on this agent's thread (also to move mail
     *                forward).
     * @param inbox   where the delivery loops hand jobs back and the control thread asks for a flush or drain.
     * @param loops   one proxy per delivery loop, indexed as the hop → loop hash counts them.
     * @param clock   the agent's clock: retries, expiry and delay warnings run on it.
     */
    public QueueManager(
        final RelayConfig config,
        final Spool spool,
        final OutcomeJournal journal,
        final Bouncer bouncer,
        final QueueManagerProxy inbox,
        final List<DeliveryLoopProxy> loops,
        final RelayMetrics metrics,
        final EpochClock clock)
    {
        this.reader = spool.newReader(null);
        this.journal = journal;
        this.injector = bouncer.injector();
        this.router = new Router(config);
        this.bouncer = bouncer;
        this.clock = clock;
        this.inbox = inbox;
        this.loops = loops.toArray(new DeliveryLoopProxy[0]);
        this.cycles = new SpoolCycles(spool, journal, reader, injector);
        this.outcomes = new OutcomeRecorder(journal, metrics);
        this.retryScheduleMs = retryScheduleMs(config);
        this.maxAgeMs = config.queueMaxAge().toMillis();
        this.maxRecipientsPerTransaction = config.deliveryMaxRecipientsPerTransaction();
        this.delayWarningMs = config.deliveryDelayWarning().toMillis();
        this.nowMs = clock.time();
    }

    private static long[] retryScheduleMs(final RelayConfig config)
    {
        final List<Duration> schedule = config.deliveryRetrySchedule();
        final long[] ms = new long[schedule.size()];
        for (int i = 0; i < ms.length; i++)
        {
            ms[i] = schedule.get(i).toMillis();
        }
        return ms;
    }

    /**
     * A reload's routes and retry schedule: the next round routes with them and the next deferral waits by them;
     * jobs out and retries already scheduled keep theirs.
     */
    private void reconfigure(final RelayConfig config)
    {
        router = new Router(config);
        retryScheduleMs = retryScheduleMs(config);
    }

    /** Reads the journal: what was delivered, bounced or deferred before this start. Before the agent runs. */
    public long recover()
    {
        return recovery.replay(journal);
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

    @Override
    public String roleName()
    {
        return "queue-manager";
    }

    @Override
    public int doWork()
    {
        nowMs = clock.time();
        final RelayConfig reload = inbox.takeReconfiguration();
        if (reload != null)
        {
            reconfigure(reload);
        }
        int work = inbox.drainResults(onResult, RESULTS_PER_PASS);
        work += injector.drainCompletions();
        if (!draining && inbox.drainRequested())
        {
            startDrain();
        }
        if (!draining)
        {
            work += pollSpool();
            if (inbox.takeFlushRequest())
            {
                work += flush();
            }
            work += startDueRounds();
            work += injector.doWork();
        }
        for (final DeliveryLoopProxy loop : loops)
        {
            work += loop.sendBacklog();
        }
        if (nowMs >= nextHousekeepingMs)
        {
            nextHousekeepingMs = nowMs + HOUSEKEEPING_INTERVAL_MS;
            if (!draining)
            {
                cycles.moveForward();
            }
            cycles.deleteFinished(recovery.replaying());
        }
        injector.endOfPass();
        queuedMessages = live.size();
        return work;
    }

    /** On the agent's thread as it stops (after the delivery loops stopped): the last outcomes are journaled. */
    @Override
    public void onClose()
    {
        inbox.drainResults(onResult, Integer.MAX_VALUE);
        reader.close();
    }

    private int pollSpool()
    {
        final int polled = reader.poll(onSpooled, SPOOL_POLL_LIMIT);
        if (polled == 0)
        {
            // at the end of the spool: every copy of a message finished so far has been read
            finishedAhead.clear();
            if (recovery.replaying())
            {
                recovery.endOfSpool();
            }
        }
        return polled;
    }

    private int startDueRounds()
    {
        int started = 0;
        QueuedMessage due;
        while ((due = retries.pollDue(nowMs)) != null)
        {
            startRound(due);
            started++;
        }
        return started;
    }

    private void startDrain()
    {
        draining = true;
        for (final DeliveryLoopProxy loop : loops)
        {
            loop.drain();
        }
    }

    private void onSpooled(final SpooledMessage message)
    {
        final QueuedMessage existing = live.get(message.queueId());
        if (existing != null)
        {
            onNewerCopy(existing, message);
            return;
        }
        if (finishedAhead.contains(message.queueId()))
        {
            // a later copy (moved forward, in this run or before a restart) of a message already finished
            return;
        }
        final JournalRecovery.Entry before = recovery.take(message.queueId());
        if (before != null && before.done())
        {
            return;
        }
        final QueuedMessage queued = new QueuedMessage(message);
        live.put(message.queueId(), queued);
        queuedBytes += message.bodyBytes();
        cycles.pin(queued);
        if (before != null)
        {
            before.applyTo(queued);
            if (queued.allFinal())
            {
                finish(queued);
                return;
            }
            if (before.nextAttemptMs() > nowMs && queued.anyDeferred())
            {
                retries.schedule(queued, before.nextAttemptMs());
                return;
            }
        }
        startRound(queued);
    }

    /** Routes every recipient that is not final into per-hop jobs, each to the loop that owns its hop. */
    private void startRound(final QueuedMessage queued)
    {
        cycles.stopMoving(queued);
        final List<byte[]> recipients = queued.message.recipients();
        final Map<NextHop, List<Integer>> byHop = new HashMap<>();
        for (int i = 0; i < recipients.size(); i++)
        {
            final byte status = queued.status[i];
            if (status == QueuedMessage.READY || status == QueuedMessage.DEFERRED)
            {
                final NextHop nextHop = router.routeRecipient(recipients.get(i));
                byHop.computeIfAbsent(nextHop, ignored -> new ArrayList<>()).add(i);
            }
        }
        for (final Map.Entry<NextHop, List<Integer>> entry : byHop.entrySet())
        {
            final NextHop nextHop = entry.getKey();
            final DeliveryLoopProxy loop = loopOf(nextHop);
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
                loop.send(new DeliveryJob(queued, queued.message, nextHop, chunk));
            }
        }
        if (queued.jobsOut == 0)
        {
            endRound(queued);
        }
    }

    /** The loop that owns {@code nextHop}: a stable hash of its key, so a hop's connections live on one loop. */
    private DeliveryLoopProxy loopOf(final NextHop nextHop)
    {
        return loops[Math.floorMod(nextHop.key().hashCode(), loops.length)];
    }

    /** A job came back from its delivery loop with an outcome for each recipient: journal them now. */
    private void onResult(final DeliveryJob job)
    {
        final QueuedMessage queued = job.queued;
        for (int i = 0; i < job.recipientIndexes.length; i++)
        {
            final int index = job.recipientIndexes[i];
            switch (job.outcome(i))
            {
                case DeliveryJob.DELIVERED:
                    outcomes.delivered(job, i, nowMs);
                    break;
                case DeliveryJob.BOUNCED:
                    outcomes.bounced(queued, index, job.relay(), job.tls(), job.statusCode(i), job.reply(i),
                        job.remoteHost(), nowMs);
                    break;
                default:
                    outcomes.deferred(queued, index, job.relay(), job.tls(), job.statusCode(i), job.reply(i),
                        job.remoteHost(), nowMs);
                    break;
            }
        }
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
            bouncer.reportRelayed(queued, nowMs);
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
            outcomes.expired(queued, ageMs);
            finish(queued);
            return;
        }
        final long delayMs = retryScheduleMs[Math.min(queued.attempts - 1, retryScheduleMs.length - 1)];
        final long dueMs = nowMs + delayMs;
        outcomes.scheduled(queued, dueMs);
        retries.schedule(queued, dueMs);
        if (delayWarningMs > 0 && !queued.warned && ageMs >= delayWarningMs && queued.message.reversePath().length > 0)
        {
            // delivery.delay_warning: tell the sender once that the message is still being retried (Postfix
            // delay_warning_time)
            queued.warned = true;
            bouncer.warnDelayed(queued, nowMs);
        }
    }

    /** Every recipient is final: the DSN for the bounced ones first (the message is removed once it is durable). */
    private void finish(final QueuedMessage queued)
    {
        if (queued.anyBounced() && queued.message.reversePath().length > 0 && !queued.bouncing)
        {
            queued.bouncing = true;
            final int bounce = bouncer.bounce(queued, nowMs, this::onBounceQueued);
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
        finishedAhead.add(queued.queueId());
        outcomes.done(queued);
        retries.remove(queued);
        live.remove(queued.queueId());
        queuedBytes -= queued.message.bodyBytes();
        cycles.unpin(queued);
    }

    /** Every deferred message is due now; every loop ends its hops' back-offs before it sees their jobs. */
    private int flush()
    {
        QueuedMessage due;
        final List<QueuedMessage> all = new ArrayList<>();
        while ((due = retries.pollDue(Long.MAX_VALUE)) != null)
        {
            all.add(due);
        }
        // back-offs end, a failed lookup is asked again now, not when its retry time comes
        for (final DeliveryLoopProxy loop : loops)
        {
            loop.flush();
        }
        for (final QueuedMessage queued : all)
        {
            startRound(queued);
        }
        DeliveryLog.info("flush: {} deferred messages made ready", all.size());
        return 1 + all.size();
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
        cycles.unpin(queued);
        queued.message = copy;
        queued.newerCopy = null;
        queued.moving = false;
        queued.copyPending = false;
        cycles.pin(queued);
        outcomes.restated(queued);
    }
}
