package dev.relay.delivery;

import dev.relay.config.QueueSettings;
import dev.relay.metrics.RelayMetrics;
import dev.relay.spool.DeferredBucket;
import dev.relay.spool.DeferredBuckets;
import dev.relay.spool.DeferredIndex;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.QueueEntry;
import dev.relay.spool.QueueRecovery;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolInjector;
import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpoolRecords;
import dev.relay.spool.SpooledMessage;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.EpochClock;
import org.jctools.queues.MessagePassingQueue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The queue manager (Postfix's qmgr): a duty-cycle agent on its own thread ("queue-manager") that owns the spool
 * tail, the active set, the deferred queue on disk, the journal, retries, expiry, the DSN triggers and disk clean-up,
 * and hands {@link DeliveryJob}s to the {@link DeliveryLoop}s — each next hop to one loop, by a stable hash of its
 * key — taking them back with an outcome for every recipient.
 * <p>
 * One state machine, over every queued message (why it is one file past 500 lines): <i>incoming</i> (in the spool,
 * not read yet) → {@link #onSpooled} → <i>active</i>, a round out ({@link #startRound}: jobs to the loops) → the
 * round's outcomes ({@link #endRound}) → <i>finished</i> ({@link #finish}: journaled, DSN queued) → <i>done</i>
 * ({@link #done}); or <i>waiting</i> in memory until due within {@link #KEEP_IN_MEMORY_MS} ({@link #waitUntil}), or
 * <i>deferred</i> on disk ({@link #park}) and back to active when due ({@link #takeDeferred}); or <i>held</i> by an
 * operator until released ({@link QueueSurgery}). The parts with a job of their own are apart: routing
 * ({@code Router}), the retry timer ({@code RetryQueue}), the on-disk queue ({@link DeferredQueue}), outcomes
 * ({@code OutcomeRecorder}), DSNs ({@code Bouncer}), cycles and moves ({@code SpoolCycles}), checkpoints
 * ({@code QueueCheckpointer}) and operator commands ({@link QueueSurgery}).
 * <p>
 * Where mail waits, as in Postfix: the active set in memory holds at most {@code queue.active_limit} messages (and
 * five times as many recipients) — those being delivered, due within {@link #KEEP_IN_MEMORY_MS}, or being moved
 * forward. A message deferred for longer is written to the {@link DeferredQueue} on disk and leaves the heap; it
 * comes back when its time has come, as long as the active set has room: a quarter of it is kept for new mail, and
 * mail taken back holds at most an eighth of it at once ({@link #DEFERRED_SHARE_DIVISOR}), so a backlog being
 * retried never holds up fresh mail. New mail waits in the spool itself (the incoming queue) while
 * the active set is full; accepting does not slow down. The heap thus holds a bounded active set and one small
 * object per index file, whatever the backlog.
 * <p>
 * A duty cycle ({@link #doWork()}), reading the injected clock once: outcomes that came back (journaled at once) →
 * DSNs and moved copies the spool made durable → newly spooled messages (the tailer, while there is room) → a
 * flush asked for → operators' queue commands → active messages that came due → deferred ones whose slot has
 * begun → a slice of moving mail forward → jobs a loop's queue could not take yet → housekeeping once a second
 * (moves, a checkpoint, deletions). Results and deferred mail taken back are worked in slices of {@link #SLICE}
 * with a look at the spool for new mail between them, as Postfix's qmgr alternates between its incoming and deferred
 * queues: a backlog made due at once never keeps a fresh message waiting for more than a slice.
 * <p>
 * Per recipient: 2xx → delivered; 4xx, connection loss or timeout → deferred, retried per
 * {@code delivery.retry.schedule} until {@code queue.max_age}, then bounced (4.4.7); 5xx → bounced. Every result
 * goes to the {@link OutcomeJournal} as soon as it is known. A restart reads the last checkpoint and what the journal
 * says since ({@link #recover()}, {@link QueueRecovery}): bounded work whatever the backlog, so new mail is served at
 * once; nothing delivered is sent again except transactions in flight at the crash, and nothing pending is
 * forgotten. A message with bounced recipients gets one RFC 3464 DSN to its sender, unless the sender is
 * {@code <>}.
 * <p>
 * Queue surgery (Postfix's postsuper verbs, {@link QueueCommand}): an operator's hold, release, delete or requeue
 * arrives through the proxy and runs here, whole, in one pass ({@link QueueSurgery}): over the active set, then over
 * the deferred index up to where each bucket ended when it began. A held message waits in the index's hold bucket
 * ({@link DeferredIndex#HOLD_SLOT}): no round starts for it, it is not flushed and does not expire; its age keeps
 * counting (as Postfix's), so one released after {@code queue.max_age} gets one attempt and then bounces. Release
 * and requeue make a message due now and end the delivery loops' back-offs, as a flush does; delete finishes its
 * recipients as deleted in the journal, without a DSN. A message with a round out is held, deleted or released
 * when that round ends. Each message touched is logged with the operator's command.
 * <p>
 * DSN requests (RFC 3461) are honoured per recipient: a next hop that offers DSN gets them with the message and the
 * duty to act on them; otherwise the relay acts. NOTIFY without FAILURE (NEVER, or SUCCESS/DELAY alone) leaves a
 * bounced recipient out of the DSN, NOTIFY without DELAY leaves a deferred one out of the delay warning, and
 * NOTIFY with SUCCESS, relayed to a next hop without DSN, gets a "relayed" DSN at the end of that round.
 * <p>
 * Threads: {@link #recover()} on the control thread before the agent starts; the rest on the agent's thread; the
 * counters ({@link #queuedMessages()} ...) from any thread. Other threads reach it only through its
 * {@link QueueManagerProxy}. Allocates per message and per round, not per pass.
 */
public final class QueueManager implements Agent
{
    /** Longest park when idle: retries and housekeeping are due on time even with no other work. */
    static final long MAX_IDLE_MS = 100;
    /** A message due again within this stays in memory; one due later waits on disk. */
    static final long KEEP_IN_MEMORY_MS = 10_000;
    static final int SPOOL_POLL_LIMIT = 512;
    private static final int TAKE_PER_PASS = 512;
    /**
     * Deferred messages taken back, or results handed back, between two looks at the spool for new mail: a backlog
     * made due at once is worked through in slices with new mail taken between them (Postfix's qmgr alternates
     * between its incoming and deferred queues), so a fresh message waits for one slice, not a pass.
     */
    static final int SLICE = 32;
    private static final int PULL_SCAN_PER_PASS = 4096;
    private static final int RESULTS_PER_PASS = 4096;
    private static final int RECIPIENTS_PER_MESSAGE_LIMIT = 5;
    /**
     * The part of the active set that deferred mail taken back may hold at once: {@code queue.active_limit} divided
     * by this. A backlog made due keeps the loops busy with far fewer in flight, and each active message costs every
     * checkpoint its entry, so a drain that filled the active set would stall the queue manager (and fresh mail)
     * for tens of milliseconds each time (Postfix's qmgr likewise keeps the deferred queue from taking the active set).
     */
    static final int DEFERRED_SHARE_DIVISOR = 8;
    private static final long HOUSEKEEPING_INTERVAL_MS = 1_000;

    private final Spool spool;
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
    private final int activeLimit;
    private final int recipientLimit;
    /** At most this many of the active set are taken back from the deferred queue at once. */
    private final int takenBackLimit;

    private final OutcomeRecorder outcomes;
    private final Map<Long, QueuedMessage> live = new HashMap<>();
    private final DeferredIndex index;
    /** The index's buckets and live counts (the gauges, and what a flush makes ready). */
    private final DeferredBuckets deferredBuckets;
    private final DeferredQueue deferred;
    private final SpoolCycles cycles;
    private final QueueCheckpointer checkpoints;
    private final CheckpointWriter checkpointWriter;
    private final QueueSurgery surgery;
    private final RetryQueue retries = new RetryQueue();
    private final QueueEntry scratch = new QueueEntry();
    private final Consumer<SpooledMessage> onSpooled = this::onSpooled;
    private final MessagePassingQueue.Consumer<DeliveryJob> onResult = this::onResult;

    private QueueRecovery.Result recovered;
    private boolean started;
    /** Messages the journal names since the checkpoint, while the tailer reads again what it read before a stop. */
    private Map<Long, QueueRecovery.Tail> rereading;
    /** Per spool lane: a message whose END is before this was handed over before the stop. */
    private long[] rereadFrom;
    /** Per spool lane: the last record written before the start. */
    private long[] rereadEnd;
    /** A flush makes every slot up to this due now; {@link Long#MIN_VALUE} when none is running. */
    private long flushUpToSlot = Long.MIN_VALUE;
    private int activeRecipients;
    private int takenBack;
    private long activeBytes;
    private long nowMs;
    private long nextHousekeepingMs;
    private boolean draining;
    private volatile int activeMessages;
    private volatile long deferredMessages;
    private volatile long heldMessages;
    private volatile long queuedBytes;
    private volatile long indexFileBytes;
    private volatile long oldestReceivedAtMs = Long.MAX_VALUE;

    /**
     * @param bouncer where DSNs are made; its spool injector is used on this agent's thread (also to move mail
     *                forward).
     * @param inbox   where the delivery loops hand jobs back and the control thread asks for a flush or drain.
     * @param loops   one proxy per delivery loop, indexed as the hop → loop hash counts them.
     * @param clock   the agent's clock: retries, expiry and delay warnings run on it.
     */
    public QueueManager(
        final QueueSettings settings,
        final Spool spool,
        final OutcomeJournal journal,
        final Bouncer bouncer,
        final QueueManagerProxy inbox,
        final List<DeliveryLoopProxy> loops,
        final RelayMetrics metrics,
        final EpochClock clock)
    {
        this(settings, spool, journal, bouncer, inbox, loops, metrics, clock, CheckpointWriter.direct());
    }

    QueueManager(
        final QueueSettings settings,
        final Spool spool,
        final OutcomeJournal journal,
        final Bouncer bouncer,
        final QueueManagerProxy inbox,
        final List<DeliveryLoopProxy> loops,
        final RelayMetrics metrics,
        final EpochClock clock,
        final CheckpointWriter checkpointWriter)
    {
        this.spool = spool;
        this.reader = spool.newReader(null);
        this.journal = journal;
        this.injector = bouncer.injector();
        this.router = new Router(settings.routing());
        this.bouncer = bouncer;
        this.clock = clock;
        this.inbox = inbox;
        this.loops = loops.toArray(new DeliveryLoopProxy[0]);
        this.index = DeferredIndex.open(spool.dir().resolve("deferred"));
        this.deferredBuckets = index.buckets();
        this.deferred = new DeferredQueue(index, journal, reader, spool);
        this.cycles = new SpoolCycles(spool, journal, index, injector, this::onMoved);
        this.checkpointWriter = checkpointWriter;
        this.checkpoints = new QueueCheckpointer(index, journal, spool, reader, checkpointWriter);
        this.outcomes = new OutcomeRecorder(journal, metrics);
        this.retryScheduleMs = retryScheduleMs(settings);
        this.surgery = new QueueSurgery(journal, deferred, index, this.loops, new QueueSurgery.ActiveSet()
        {
            @Override
            public java.util.Collection<QueuedMessage> messages()
            {
                return live.values();
            }

            @Override
            public void unschedule(final QueuedMessage queued)
            {
                retries.remove(queued);
            }

            @Override
            public void park(final QueuedMessage queued)
            {
                QueueManager.this.park(queued);
            }

            @Override
            public void startRound(final QueuedMessage queued)
            {
                QueueManager.this.startRound(queued);
            }

            @Override
            public void done(final QueuedMessage queued)
            {
                QueueManager.this.done(queued);
            }
        });
        this.maxAgeMs = settings.maxAge().toMillis();
        this.maxRecipientsPerTransaction = settings.maxRecipientsPerTransaction();
        this.delayWarningMs = settings.delayWarning().toMillis();
        this.activeLimit = settings.activeLimit();
        this.recipientLimit = activeLimit * RECIPIENTS_PER_MESSAGE_LIMIT;
        this.takenBackLimit = Math.max(1, activeLimit / DEFERRED_SHARE_DIVISOR);
        this.nowMs = clock.time();
    }

    private static long[] retryScheduleMs(final QueueSettings settings)
    {
        final List<Duration> schedule = settings.retrySchedule();
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
    private void reconfigure(final QueueSettings settings)
    {
        router = new Router(settings.routing());
        retryScheduleMs = retryScheduleMs(settings);
    }

    /**
     * Reads where the queue stood at the last stop: the checkpoint, the journal since, the index entries written
     * since (bounded by the checkpoint interval, not the backlog). Before the agent runs; the agent's first pass
     * takes the active set back.
     *
     * @return journal records read.
     */
    public long recover()
    {
        recovered = QueueRecovery.recover(index, journal, spool.repairedFromCycle());
        cycles.restoreSpooled(recovered.spoolBytesByCycle);
        countDeferred();
        queuedBytes = deferredBuckets.liveBytes();
        indexFileBytes = deferredBuckets.fileBytes();
        return recovered.journalRecords;
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

    /** Messages not yet finished, active, deferred or held (for metrics and {@code /health}); any thread. */
    public int queuedMessages()
    {
        return (int)Math.min(Integer.MAX_VALUE, activeMessages + deferredMessages + heldMessages);
    }

    /** Messages on hold, waiting on disk until an operator releases them; any thread. */
    public long heldMessages()
    {
        return heldMessages;
    }

    /** Messages in the active set; any thread. */
    public int activeMessages()
    {
        return activeMessages;
    }

    /** Messages waiting on disk for their next attempt (not the held ones); any thread. */
    public long deferredMessages()
    {
        return deferredMessages;
    }

    /** When the oldest queued message was received; {@link Long#MAX_VALUE} when none is queued. Any thread. */
    public long oldestReceivedAtMs()
    {
        return oldestReceivedAtMs;
    }

    /** Body bytes of the messages not yet finished ({@code queue.max_bytes}); any thread. */
    public long queuedBytes()
    {
        return queuedBytes;
    }

    /**
     * Bytes of the deferred index's files (dead entries too, until their file goes), as of the last housekeeping:
     * disk the backlog takes beside its spool records, counted against {@code queue.max_bytes}; any thread.
     */
    public long deferredIndexBytes()
    {
        return indexFileBytes;
    }

    /** Kills of taken index entries that a durable checkpoint allows and are not done yet (tests). */
    int checkpointKillsLeft()
    {
        return checkpoints.killsLeft();
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
        final QueueSettings reload = inbox.takeReconfiguration();
        if (reload != null)
        {
            reconfigure(reload);
        }
        if (!started)
        {
            startRecovered();
        }
        int work = drainResults();
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
        }
        work += runCommands();
        if (!draining)
        {
            work += startDueRounds();
            work += takeDeferred();
            work += injector.doWork();
        }
        for (final DeliveryLoopProxy loop : loops)
        {
            work += loop.sendBacklog();
        }
        if (nowMs >= nextHousekeepingMs)
        {
            nextHousekeepingMs = nowMs + HOUSEKEEPING_INTERVAL_MS;
            work += housekeeping();
        }
        work += checkpoints.applyKills();
        injector.endOfPass();
        activeMessages = live.size();
        countDeferred();
        queuedBytes = activeBytes + deferredBuckets.liveBytes();
        return work;
    }

    /** On the agent's thread as it stops (after the delivery loops stopped): the last outcomes, a last checkpoint. */
    @Override
    public void onClose()
    {
        inbox.drainResults(onResult, Integer.MAX_VALUE);
        if (started && rereading == null)
        {
            checkpoints.takeNow(clock.time(), live.values(), cycles.spooledBytes(), cycles);
        }
        checkpointWriter.close();
        index.close();
        reader.close();
    }

    /** The first pass: the tailer goes where the checkpoint says, and the recovered active set is taken back. */
    private void startRecovered()
    {
        started = true;
        if (recovered == null)
        {
            return;
        }
        reader.startAt(recovered.spoolResumeIndexes);
        rereading = recovered.filter;
        rereadFrom = recovered.spoolReadIndexes;
        rereadEnd = reader.lastIndexes();
        int taken = 0;
        for (final QueueEntry entry : recovered.active)
        {
            final SpooledMessage message = reader.readMessage(entry.lane, entry.queueId, entry.startIndex,
                entry.endIndex, entry.bodyBytes, entry.chunkCount);
            if (message == null)
            {
                DeliveryLog.error("{}: active at the stop, but its records are no longer in the spool (damaged); not"
                    + " delivered", dev.relay.smtp.QueueIds.format(entry.queueId));
                continue;
            }
            final QueuedMessage queued = QueuedMessage.fromEntry(entry, message);
            addActive(queued);
            taken++;
            resume(queued, entry.dueMs);
        }
        DeliveryLog.info("queue: {} active and {} deferred messages after the start ({} journal records read{})",
            taken, deferredBuckets.liveCount(), recovered.journalRecords, recovered.fromCheckpoint ? "" :
                "; no checkpoint: the spool is read from its start");
        recovered = null;
    }

    /** A message known before this start goes on: finished, waits for its time, or a round starts. */
    private void resume(final QueuedMessage queued, final long dueMs)
    {
        if (queued.allFinal())
        {
            finish(queued);
        }
        else if (queued.held)
        {
            park(queued);
        }
        else if (dueMs > nowMs && queued.anyDeferred())
        {
            waitUntil(queued, dueMs);
        }
        else
        {
            startRound(queued);
        }
    }

    private boolean roomForNew()
    {
        return live.size() < activeLimit && activeRecipients < recipientLimit;
    }

    private boolean roomForDeferred()
    {
        return live.size() < activeLimit - activeLimit / 4 && activeRecipients < recipientLimit - recipientLimit / 4;
    }

    private void addActive(final QueuedMessage queued)
    {
        live.put(queued.queueId(), queued);
        activeRecipients += queued.recipientCount();
        activeBytes += queued.message.bodyBytes();
        cycles.pin(queued);
    }

    private void removeActive(final QueuedMessage queued)
    {
        if (live.remove(queued.queueId()) == queued)
        {
            if (queued.takenBack)
            {
                queued.takenBack = false;
                takenBack--;
            }
            activeRecipients -= queued.recipientCount();
            activeBytes -= queued.message.bodyBytes();
        }
        retries.remove(queued);
        cycles.unpin(queued);
    }

    /** Results of the loops, in slices with new mail taken between them. */
    private int drainResults()
    {
        int drained = 0;
        int work = 0;
        while (drained < RESULTS_PER_PASS)
        {
            final int slice = inbox.drainResults(onResult, SLICE);
            drained += slice;
            work += slice;
            if (slice < SLICE)
            {
                break;
            }
            work += pollSpoolBetweenSlices();
        }
        return work;
    }

    /** New mail between two slices of backlog work, unless the relay is stopping (then none is taken). */
    private int pollSpoolBetweenSlices()
    {
        return draining || inbox.drainRequested() ? 0 : pollSpool();
    }

    private int pollSpool()
    {
        if (!roomForNew())
        {
            return 0;
        }
        final int room = Math.min(SPOOL_POLL_LIMIT, activeLimit - live.size());
        final int polled = reader.poll(onSpooled, room);
        if (rereading != null && (polled < room || reader.readPast(rereadEnd)))
        {
            DeliveryLog.info("queue: the spool written before the start is read again; checkpoints resume");
            rereading = null;
        }
        return polled;
    }

    private void onSpooled(final SpooledMessage message)
    {
        QueueRecovery.Tail before = null;
        if (rereading != null)
        {
            if (message.lane() < rereadFrom.length && message.endIndex() < rereadFrom[message.lane()])
            {
                return;
            }
            before = rereading.get(message.queueId());
            if (before != null && !before.takeOnce())
            {
                return;
            }
        }
        if (before == null && message.origin() == SpoolRecords.ORIGIN_REQUEUE)
        {
            // a moved copy: the message reads from it since the copy was committed (or the copy is an orphan)
            return;
        }
        if (live.containsKey(message.queueId()))
        {
            return;
        }
        cycles.addSpooled(message);
        final QueuedMessage queued = new QueuedMessage(message);
        addActive(queued);
        if (before != null)
        {
            queued.toEntry(scratch, 0, 0);
            before.applyTo(scratch, -1);
            queued.applyEntry(scratch);
            resume(queued, before.legacyDueMs());
            return;
        }
        startRound(queued);
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

    /**
     * Deferred messages whose slot has begun (all, during a flush) come back while there is room, in slices with new
     * mail taken between them.
     */
    private int takeDeferred()
    {
        int taken = 0;
        int polled = 0;
        final long horizon = Math.max(nowMs, flushUpToSlot);
        while (taken < TAKE_PER_PASS && roomForDeferred() && takenBack < takenBackLimit)
        {
            if (taken > 0 && taken % SLICE == 0)
            {
                polled += pollSpoolBetweenSlices();
            }
            final QueuedMessage queued = deferred.takeDue(horizon);
            if (queued == null)
            {
                flushUpToSlot = Long.MIN_VALUE;
                break;
            }
            taken++;
            addActive(queued);
            queued.takenBack = true;
            takenBack++;
            if (queued.held)
            {
                // held mail is never due; should an entry of it be met here, it goes back to wait
                park(queued);
                continue;
            }
            final long dueMs = flushUpToSlot >= DeferredIndex.slotOf(queued.nextAttemptMs) ? nowMs :
                queued.nextAttemptMs;
            if (dueMs <= nowMs)
            {
                startRound(queued);
            }
            else
            {
                retries.schedule(queued, dueMs);
            }
        }
        return taken + polled;
    }

    private void startDrain()
    {
        draining = true;
        for (final DeliveryLoopProxy loop : loops)
        {
            loop.drain();
        }
    }

    /** Routes every recipient that is not final into per-hop jobs, each to the loop that owns its hop. */
    private void startRound(final QueuedMessage queued)
    {
        cycles.stopMoving(queued);
        queued.parkWhenMoved = false;
        retries.remove(queued);
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
        if (queued.anySuccessToReport())
        {
            bouncer.reportRelayed(queued, nowMs);
        }
        if (queued.deleteAfterRound)
        {
            surgery.delete(queued);
            return;
        }
        if (!queued.anyDeferred())
        {
            finish(queued);
            return;
        }
        queued.attempts++;
        if (queued.held)
        {
            // held while the round was out: it waits in the hold bucket, and does not expire while it is there
            if (queued.moving)
            {
                queued.parkWhenMoved = true;
            }
            else
            {
                park(queued);
            }
            return;
        }
        final long ageMs = nowMs - queued.message.receivedAtMs();
        if (ageMs >= maxAgeMs)
        {
            outcomes.expired(queued, ageMs);
            finish(queued);
            return;
        }
        final long delayMs = retryScheduleMs[Math.min(queued.attempts - 1, retryScheduleMs.length - 1)];
        if (delayWarningMs > 0 && !queued.warned && ageMs >= delayWarningMs && queued.message.reversePath().length > 0)
        {
            // delivery.delay_warning: tell the sender once that the message is still being retried (Postfix
            // delay_warning_time)
            queued.warned = true;
            bouncer.warnDelayed(queued, nowMs);
        }
        waitUntil(queued, nowMs + delayMs);
    }

    /**
     * {@code queued} waits for its next attempt at {@code dueMs}: in memory when that is soon (and there is room),
     * else on disk — moved forward first when its spool cycle holds little live mail.
     */
    private void waitUntil(final QueuedMessage queued, final long dueMs)
    {
        retries.schedule(queued, dueMs);
        if (dueMs - nowMs <= KEEP_IN_MEMORY_MS && roomForDeferred())
        {
            return;
        }
        if (!queued.moving && cycles.isSparse(cycles.cycleOf(queued)) && cycles.move(queued))
        {
            queued.parkWhenMoved = true;
            return;
        }
        if (!queued.moving)
        {
            park(queued);
        }
    }

    /** Writes a waiting message to the deferred queue (a held one to the hold bucket); drops it from the active set. */
    private void park(final QueuedMessage queued)
    {
        if (deferred.park(queued, queued.held ? DeferredIndex.HOLD_SLOT : queued.nextAttemptMs))
        {
            removeActive(queued);
        }
    }

    /** The copy of a message moved forward is committed: one taken from disk for that goes back to wait. */
    private void onMoved(final QueuedMessage queued, final SpooledMessage copy)
    {
        outcomes.restated(queued);
        if (queued.parkWhenMoved && queued.jobsOut == 0 && (queued.heapIndex >= 0 || queued.held))
        {
            queued.parkWhenMoved = false;
            park(queued);
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
        cycles.stopMoving(queued);
        outcomes.done(queued);
        removeActive(queued);
    }

    /** Every deferred message is due now; every loop ends its hops' back-offs before it sees their jobs. */
    private int flush()
    {
        final List<QueuedMessage> all = new ArrayList<>();
        QueuedMessage due;
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
        long onDisk = 0;
        for (final DeferredBucket bucket : deferredBuckets.all())
        {
            if (bucket.liveCount() > 0 && bucket.slot() != DeferredIndex.HOLD_SLOT)
            {
                flushUpToSlot = Math.max(flushUpToSlot, bucket.slot());
                onDisk += bucket.liveCount();
            }
        }
        DeliveryLog.info("flush: {} deferred messages made ready", all.size() + onDisk);
        return 1 + all.size();
    }

    /** Moves, a checkpoint when due, deletions, the oldest message's age. */
    private int housekeeping()
    {
        int work = 0;
        if (!draining && rereading == null)
        {
            cycles.moveActive();
            work += pullSparse();
        }
        if (rereading == null && started)
        {
            if (checkpoints.maybeTake(nowMs, live.values(), cycles.spooledBytes(), cycles))
            {
                work++;
            }
            cycles.deleteBefore(Math.min(checkpoints.spoolKeepFrom(), reader.resumeCycle()),
                checkpoints.journalKeepFrom());
        }
        long oldest = deferredBuckets.oldestReceivedAtMs();
        for (final QueuedMessage queued : live.values())
        {
            oldest = Math.min(oldest, queued.message.receivedAtMs());
        }
        oldestReceivedAtMs = oldest;
        indexFileBytes = deferredBuckets.fileBytes();
        return work;
    }

    /**
     * Deferred messages in sparse cycles are taken from disk to be moved forward, then wait on disk again; none while
     * a flush runs. The flush's "due now" is the slot bound it reads the index up to ({@link #flushUpToSlot}), which
     * a message pulled out of the index does not see: parked again after its move at its old time, once the flush
     * had found the index empty and ended, it waited for that time (an hour, after a flushed outage). The flush
     * takes every entry it covers back itself, and delivering them empties their cycles without a copy.
     */
    private int pullSparse()
    {
        if (flushUpToSlot != Long.MIN_VALUE)
        {
            return 0;
        }
        final java.util.Set<Integer> sparse = cycles.sparseCycles();
        final int[] budget = {PULL_SCAN_PER_PASS};
        int pulled = 0;
        while (cycles.canMove() && roomForDeferred())
        {
            final QueuedMessage queued = deferred.pullNext(sparse::contains, budget);
            if (queued == null)
            {
                break;
            }
            addActive(queued);
            if (!queued.held)
            {
                retries.schedule(queued, Math.max(queued.nextAttemptMs, nowMs));
            }
            if (cycles.move(queued))
            {
                queued.parkWhenMoved = true;
            }
            else if (queued.held)
            {
                park(queued);
            }
            pulled++;
        }
        return pulled;
    }

    private void countDeferred()
    {
        final long held = deferredBuckets.heldCount();
        heldMessages = held;
        deferredMessages = deferredBuckets.liveCount() - held;
    }

    /** Operators' queue commands, each run whole; while draining, each is refused. */
    private int runCommands()
    {
        int work = 0;
        QueueCommand command;
        while ((command = inbox.pollCommand()) != null)
        {
            work++;
            if (draining)
            {
                command.fail("the relay is stopping");
                continue;
            }
            try
            {
                command.complete(surgery.run(command, nowMs));
            }
            catch (final RuntimeException ex)
            {
                DeliveryLog.error("queue command {} ({}) failed: {}", command, command.operator, ex.toString());
                command.fail(ex.toString());
            }
        }
        return work;
    }
}
