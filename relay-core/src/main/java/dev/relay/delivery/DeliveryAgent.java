package dev.relay.delivery;

import dev.relay.config.RelayConfig;
import dev.relay.metrics.RelayMetrics;
import dev.relay.net.LoopHook;
import dev.relay.net.SelectorLoop;
import dev.relay.smtp.DsnParameters;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpooledMessage;
import org.jctools.queues.MessagePassingQueue;
import org.jctools.queues.MpscArrayQueue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * The queue manager of the relay, running as a hook on the delivery selector loop ("smtp-out-0") beside the
 * {@link DeliveryLoop} that owns every outbound connection: it hands that loop {@link DeliveryJob}s over a queue and
 * takes them back, with their outcomes, over another.
 * <p>
 * Each pass: outcomes that came back (journaled at once) → newly spooled messages (a tailer on the spool) → route
 * their recipients to next hops, grouped per hop into jobs for the delivery loop → retries that came due →
 * housekeeping once a second (moving deferred mail forward, finished spool cycles).
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
public final class DeliveryAgent implements LoopHook
{
    private static final int SPOOL_POLL_LIMIT = 512;
    private static final int RESULTS_PER_PASS = 4096;
    static final int RESULT_QUEUE_CAPACITY = 16 * 1024;
    private static final long HOUSEKEEPING_INTERVAL_MS = 1_000;

    private final RelayConfig config;
    private final Spool spool;
    private final SpoolReader reader;
    private final OutcomeJournal journal;
    private final SelectorLoop loop;
    private final Router router;
    private final Bouncer bouncer;
    private final SpoolMover mover;
    private final RelayMetrics metrics;
    private final long[] retryScheduleMs;
    private final long maxAgeMs;
    private final int maxRecipientsPerTransaction;
    private final long delayWarningMs;
    private final MpscArrayQueue<DeliveryJob> results = new MpscArrayQueue<>(RESULT_QUEUE_CAPACITY);
    private final MessagePassingQueue.Consumer<DeliveryJob> onResult = this::onResult;
    private final DeliveryLoop deliveryLoop;
    /** Jobs the delivery loop's queue could not take yet, in order. */
    private final ArrayDeque<DeliveryJob> unsentJobs = new ArrayDeque<>();

    private final Map<Long, QueuedMessage> live = new HashMap<>();
    private final Map<Long, Recovered> recovered = new HashMap<>();
    /** Live messages by the spool cycle of their first record: what pins each cycle file on disk. */
    private final TreeMap<Integer, Set<QueuedMessage>> liveByCycle = new TreeMap<>();
    private final RetryQueue retries = new RetryQueue();
    private final Consumer<SpooledMessage> onSpooled = this::onSpooled;
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
        this.bouncer = bouncer;
        this.mover = new SpoolMover(bouncer.writer(), spool);
        this.metrics = metrics;
        this.deliveryLoop = new DeliveryLoop(config, loop, spool, resolver, results, loop::wakeup, metrics);
        final List<Duration> schedule = config.deliveryRetrySchedule();
        this.retryScheduleMs = new long[schedule.size()];
        for (int i = 0; i < retryScheduleMs.length; i++)
        {
            retryScheduleMs[i] = schedule.get(i).toMillis();
        }
        this.maxAgeMs = config.queueMaxAge().toMillis();
        this.maxRecipientsPerTransaction = config.deliveryMaxRecipientsPerTransaction();
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

    /** The delivery loop this agent hands its jobs to (a hook on the same selector loop, for now). */
    public DeliveryLoop deliveryLoop()
    {
        return deliveryLoop;
    }

    /** Stops starting transactions; connections finish what they are doing and close. Loop thread. */
    public void drain()
    {
        draining = true;
        deliveryLoop.drain();
    }

    @Override
    public int doWork(final long nowMs)
    {
        this.nowMs = nowMs;
        int work = results.drain(onResult, RESULTS_PER_PASS);
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
        work += offerUnsentJobs();
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
        return flushRequested || !results.isEmpty() || !unsentJobs.isEmpty() || (mover.hasWork() && !draining);
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
                handOver(new DeliveryJob(queued, queued.message, entry.getKey(), chunk));
            }
        }
        if (queued.jobsOut == 0)
        {
            endRound(queued);
        }
    }

    private void handOver(final DeliveryJob job)
    {
        if (!unsentJobs.isEmpty() || !deliveryLoop.offer(job))
        {
            unsentJobs.addLast(job);
        }
    }

    private int offerUnsentJobs()
    {
        int offered = 0;
        DeliveryJob job;
        while ((job = unsentJobs.peekFirst()) != null && deliveryLoop.offer(job))
        {
            unsentJobs.pollFirst();
            offered++;
        }
        return offered;
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
                    delivered(job, i);
                    break;
                case DeliveryJob.BOUNCED:
                    bounced(queued, index, job.relay(), job.statusCode(i), job.reply(i), job.remoteHost());
                    break;
                default:
                    deferred(queued, index, job.relay(), job.statusCode(i), job.reply(i), job.remoteHost());
                    break;
            }
        }
        jobDone(job);
    }

    private void delivered(final DeliveryJob job, final int position)
    {
        final QueuedMessage queued = job.queued;
        final int index = job.recipientIndexes[position];
        final String reply = job.reply(position);
        final String dsn = job.statusCode(position);
        queued.status[index] = QueuedMessage.DELIVERED;
        if (!job.peerOffersDsn() && DsnParameters.notifiesSuccess(queued.message.notify(index)))
        {
            // RFC 3461 §6.2.3: the next hop cannot carry NOTIFY=SUCCESS on, so the relay reports "relayed" itself
            queued.markSuccessToReport(index);
            queued.lastReply[index] = reply;
            queued.remoteMta[index] = job.nextHop.host();
        }
        journal.recordResult(queued.queueId(), index, OutcomeJournal.DELIVERED, queued.attempts + 1, 0, reply);
        metrics.onDelivered((nowMs - queued.message.receivedAtMs()) * 1_000_000L);
        DeliveryLog.attempt(queued.queueIdText(), recipient(queued, index), job.relay(),
            nowMs - queued.message.receivedAtMs(), dsn == null ? "2.0.0" : dsn, "sent", reply);
    }

    private void bounced(
        final QueuedMessage queued, final int index, final String relay, final String dsn, final String reply,
        final String remoteHost)
    {
        queued.status[index] = QueuedMessage.BOUNCED;
        queued.lastReply[index] = reply;
        queued.lastStatusCode[index] = dsn == null ? "5.0.0" : dsn;
        queued.remoteMta[index] = remoteHost;
        journal.recordResult(queued.queueId(), index, OutcomeJournal.BOUNCED, queued.attempts + 1, 0, reply);
        metrics.onBounced();
        DeliveryLog.attempt(queued.queueIdText(), recipient(queued, index), relay,
            nowMs - queued.message.receivedAtMs(), queued.lastStatusCode[index], "bounced", reply);
    }

    private void deferred(
        final QueuedMessage queued, final int index, final String relay, final String dsn, final String reply,
        final String remoteHost)
    {
        queued.status[index] = QueuedMessage.DEFERRED;
        queued.lastReply[index] = reply;
        queued.lastStatusCode[index] = dsn == null ? "4.0.0" : dsn;
        queued.remoteMta[index] = remoteHost;
        metrics.onDeferred();
        DeliveryLog.attempt(queued.queueIdText(), recipient(queued, index), relay,
            nowMs - queued.message.receivedAtMs(), queued.lastStatusCode[index], "deferred", reply);
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
        // back-offs end, a failed lookup is asked again now, not when its retry time comes
        deliveryLoop.flush();
        for (final QueuedMessage queued : all)
        {
            startRound(queued);
        }
        DeliveryLog.info("flush: {} deferred messages made ready", all.size());
    }

    private void housekeeping()
    {
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
    }
}
