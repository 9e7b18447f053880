package dev.relay.spool;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Where the queue stood when the relay stopped or died, read in bounded time: the last {@link QueueCheckpoint}, the
 * journal records after it, and the {@link DeferredIndex} entries written after it. Nothing proportional to the
 * backlog is read: the deferred mail stays where it is, and its count comes from the checkpoint.
 * <p>
 * The rules, per message the journal names since the checkpoint (its last SCHEDULED or ACTIVATED record is its
 * base; outcomes after the base are applied to it; DONE ends it):
 * <ul>
 * <li>DONE: finished; nothing of it is delivered again.</li>
 * <li>last base SCHEDULED, and the entry it names is on disk: it waits there (deferred).</li>
 * <li>last base ACTIVATED: it was active; its state is that entry's, plus the outcomes after it.</li>
 * <li>no base, active in the checkpoint: the checkpoint's state, plus the outcomes.</li>
 * <li>no base, not in the checkpoint: the spool tailer read it after the checkpoint; it meets it again and applies
 * the outcomes ({@link #filter}).</li>
 * </ul>
 * An entry written after the checkpoint that no SCHEDULED record confirms (the crash came between the two writes)
 * is taken out: its message is active by the rules above. Entries the checkpoint or the journal name as taken are
 * killed once the next checkpoint is durable ({@link DeferredIndex#take}).
 * <p>
 * Without a checkpoint (a spool from before it, or a damaged one) the whole journal is read and the spool from its
 * start, as before: the one start that costs time proportional to the queue.
 * <p>
 * Thread: the queue manager's control thread before it starts, or a tool's. Allocates per message named.
 */
public final class QueueRecovery
{
    private static final Logger LOG = LoggerFactory.getLogger(QueueRecovery.class);

    /** What the journal says about one message since the checkpoint. */
    public static final class Tail
    {
        boolean done;
        long scheduledSeq = -1;
        long scheduledSlot;
        long scheduledPosition;
        long activatedSeq = -1;
        long activatedSlot;
        long activatedPosition;
        int attempts;
        /** The last HELD (1) or RELEASED (2) record; 0 when none. */
        byte held;
        /** The latest next-attempt time of a DEFERRED outcome (journals from before the index). */
        long legacyDueMs;
        byte[] status = new byte[0];
        String[] text = new String[0];
        long[] seq = new long[0];
        /** Recovered from the checkpoint or an entry, deferred, or done: the tailer skips its spool copy. */
        boolean skip;
        /** The tailer met it (a second copy is skipped). */
        boolean handled;

        /** Whether the spool tailer is to take this message: once (it marks it met), unless recovered elsewhere. */
        public boolean takeOnce()
        {
            if (skip || handled)
            {
                return false;
            }
            handled = true;
            return true;
        }

        /** When a journal from before the index said the next attempt is due; 0 when it did not. */
        public long legacyDueMs()
        {
            return legacyDueMs;
        }

        /** The attempts the journal counted. */
        public int attempts()
        {
            return attempts;
        }

        /** Applies the recipients' outcomes recorded after event {@code afterSeq} to {@code entry}. */
        public void applyTo(final QueueEntry entry, final long afterSeq)
        {
            for (int i = 0; i < status.length && i < entry.recipientCount(); i++)
            {
                if (status[i] != 0 && seq[i] > afterSeq)
                {
                    // DELETED (an operator's, a DONE follows unless a crash came first) is final without a DSN,
                    // as a delivered recipient is
                    entry.status[i] = status[i] == OutcomeJournal.DELIVERED || status[i] == OutcomeJournal.DELETED ?
                        QueueEntry.DELIVERED : status[i] == OutcomeJournal.BOUNCED ? QueueEntry.BOUNCED :
                        QueueEntry.DEFERRED;
                    entry.reply[i] = text[i];
                }
            }
            entry.attempts = Math.max(entry.attempts, attempts);
            // every entry written after a HELD or RELEASED record says the same, so the last one can be applied to any
            if (held == 1)
            {
                entry.flags |= QueueEntry.FLAG_HELD;
            }
            else if (held == 2)
            {
                entry.flags &= ~QueueEntry.FLAG_HELD;
            }
        }

        void result(final int recipient, final byte result, final String reply, final int attempts, final long dueMs,
            final long at)
        {
            if (recipient < 0 || recipient > 100_000)
            {
                return;
            }
            if (recipient >= status.length)
            {
                status = java.util.Arrays.copyOf(status, recipient + 1);
                text = java.util.Arrays.copyOf(text, recipient + 1);
                seq = java.util.Arrays.copyOf(seq, recipient + 1);
            }
            status[recipient] = result;
            text[recipient] = reply;
            seq[recipient] = at;
            this.attempts = Math.max(this.attempts, attempts);
            if (result == OutcomeJournal.DEFERRED)
            {
                legacyDueMs = Math.max(legacyDueMs, dueMs);
            }
        }
    }

    /** What a start continues from. */
    public static final class Result
    {
        /** The active set: each message's state and where its records are. */
        public final List<QueueEntry> active = new ArrayList<>();
        /** Messages the journal names since the checkpoint, for the spool tailer's re-read; null when none. */
        public final Map<Long, Tail> filter = new HashMap<>();
        /**
         * Per spool lane, where the tailer starts (-1, or a lane past the end: the lane's start) and the first index
         * it has not handed over.
         */
        public long[] spoolResumeIndexes = {-1};
        public long[] spoolReadIndexes = {-1};
        /** Spool bytes read per cycle, as the checkpoint had them. */
        public final TreeMap<Integer, Long> spoolBytesByCycle = new TreeMap<>();
        /** Whether a checkpoint was found (else everything is read again, as before it existed). */
        public boolean fromCheckpoint;
        /** Journal records read. */
        public long journalRecords;
    }

    private QueueRecovery()
    {
    }

    /**
     * Reads the checkpoint in {@code index}'s directory, the journal after it and the index entries written after it;
     * sets the index's buckets and counts, and marks what is to be killed.
     */
    public static Result recover(final DeferredIndex index, final OutcomeJournal journal)
    {
        return recover(index, journal, Integer.MAX_VALUE);
    }

    /**
     * As {@link #recover(DeferredIndex, OutcomeJournal)}, after a repair of the spool moved the records of
     * {@code repairedFromCycle} and later ones to new indexes ({@link Spool#repairedFromCycle()}): whatever pointed
     * there is dropped and the spool is read from its start, its messages' states taken from the whole journal.
     */
    public static Result recover(final DeferredIndex index, final OutcomeJournal journal, final int repairedFromCycle)
    {
        final Path dir = index.dir();
        final DeferredBuckets buckets = index.buckets();
        final QueueCheckpoint checkpoint = QueueCheckpoint.read(dir);
        final Result result = new Result();
        final Map<Long, Long> checkpointEnds = new HashMap<>();
        final boolean spoolRepaired = repairedFromCycle != Integer.MAX_VALUE;
        if (spoolRepaired)
        {
            LOG.warn("queue recovery: the spool was repaired from cycle {}: the whole journal and spool are read",
                repairedFromCycle);
        }
        if (checkpoint != null)
        {
            result.fromCheckpoint = true;
            if (!spoolRepaired)
            {
                result.spoolResumeIndexes = checkpoint.spoolResumeIndexes;
                result.spoolReadIndexes = checkpoint.spoolReadIndexes;
            }
            for (final QueueCheckpoint.BucketState bucket : checkpoint.buckets)
            {
                buckets.restore(bucket.slot(), bucket.readPosition(), bucket.writePosition(), bucket.live(),
                    bucket.liveBytes(), bucket.minReceivedAtMs());
                checkpointEnds.put(bucket.slot(), bucket.writePosition());
            }
            for (final Map.Entry<Integer, long[]> cycle : checkpoint.cycles.entrySet())
            {
                buckets.restoreCycle(cycle.getKey(), cycle.getValue()[0], cycle.getValue()[1]);
                if (cycle.getValue()[2] > 0)
                {
                    result.spoolBytesByCycle.put(cycle.getKey(), cycle.getValue()[2]);
                }
            }
        }

        // the journal after the checkpoint
        final Map<Long, Tail> tails = result.filter;
        final List<long[]> activations = new ArrayList<>();
        final long[] seq = {0};
        final OutcomeJournal.Visitor visitor = new OutcomeJournal.Visitor()
        {
            @Override
            public void onResult(final long queueId, final int recipient, final byte status, final int attempts,
                final long nextAttemptMs, final String text)
            {
                tail(queueId).result(recipient, status, text, attempts, nextAttemptMs, ++seq[0]);
            }

            @Override
            public void onDone(final long queueId)
            {
                tail(queueId).done = true;
            }

            @Override
            public void onHeld(final long queueId, final boolean held)
            {
                tail(queueId).held = held ? (byte)1 : (byte)2;
            }

            @Override
            public void onScheduled(final long queueId, final int attempts, final long dueMs, final long slot,
                final long position)
            {
                final Tail tail = tail(queueId);
                tail.scheduledSeq = ++seq[0];
                tail.scheduledSlot = slot;
                tail.scheduledPosition = position;
                tail.attempts = Math.max(tail.attempts, attempts);
                tail.legacyDueMs = Math.max(tail.legacyDueMs, dueMs);
            }

            @Override
            public void onActivated(final long queueId, final long slot, final long position)
            {
                final Tail tail = tail(queueId);
                tail.activatedSeq = ++seq[0];
                tail.activatedSlot = slot;
                tail.activatedPosition = position;
                activations.add(new long[] {slot, position});
            }

            private Tail tail(final long queueId)
            {
                return tails.computeIfAbsent(queueId, ignored -> new Tail());
            }
        };
        boolean precise = checkpoint != null && !spoolRepaired && !journal.repaired();
        long read = journal.replayAfter(precise ? checkpoint.journalIndex : -1, visitor);
        if (read < 0)
        {
            // the record the checkpoint named is gone (a repaired journal): read it all, and count the index afresh
            LOG.warn("queue recovery: journal record {} named by the checkpoint is not there; reading the whole"
                + " journal and counting the deferred index afresh", Long.toHexString(checkpoint.journalIndex));
            tails.clear();
            activations.clear();
            read = journal.replay(visitor);
            precise = false;
        }
        result.journalRecords = read;

        // the index: entries written after the checkpoint need the journal's word; taken ones are killed later
        final Set<DeferredIndex.Kill> killedAtCheckpoint = new HashSet<>();
        final Set<DeferredIndex.Kill> activated = new HashSet<>();
        for (final long[] at : activations)
        {
            activated.add(new DeferredIndex.Kill(at[0], at[1]));
        }
        if (checkpoint != null)
        {
            for (final DeferredIndex.Kill kill : checkpoint.kills)
            {
                index.restoreKill(kill.slot(), kill.position());
                killedAtCheckpoint.add(kill);
            }
        }
        for (final DeferredBucket bucket : new ArrayList<>(buckets.all()))
        {
            if (index.fileLength(bucket.slot()) < bucket.writePosition())
            {
                if (bucket.liveCount() > 0)
                {
                    LOG.error("queue recovery: {} is shorter than the checkpoint says; {} deferred messages in it are"
                        + " lost", index.file(bucket.slot()), bucket.liveCount());
                }
                buckets.forget(bucket.slot());
            }
        }
        if (!precise)
        {
            buckets.resetCounts();
        }
        final Map<Long, QueueEntry> confirmed = new HashMap<>();
        for (final long slot : index.slotsOnDisk())
        {
            final Long end = checkpointEnds.get(slot);
            final long from = precise && end != null ? end : 0;
            index.recoverWritten(slot, from, entry ->
            {
                if (!entry.live)
                {
                    return;
                }
                if (entry.cycle >= repairedFromCycle)
                {
                    // its records moved: the spool tailer meets the message again and takes its state from the journal
                    index.take(entry, false);
                    return;
                }
                final Tail tail = tails.get(entry.queueId);
                final boolean isLast = tail != null && !tail.done && tail.scheduledSeq > tail.activatedSeq &&
                    tail.scheduledSlot == entry.slot && tail.scheduledPosition == entry.position;
                final boolean beforeCheckpoint = end != null && entry.position < end;
                if (beforeCheckpoint)
                {
                    // only when counting afresh: live unless taken at or after the checkpoint
                    final DeferredIndex.Kill at = new DeferredIndex.Kill(entry.slot, entry.position);
                    if (!killedAtCheckpoint.contains(at) && !activated.contains(at))
                    {
                        buckets.countLive(entry);
                        if (tail != null && !tail.done)
                        {
                            final QueueEntry copy = new QueueEntry();
                            copy.copyFrom(entry);
                            confirmed.put(entry.queueId, copy);
                        }
                    }
                    return;
                }
                if (isLast)
                {
                    buckets.countLive(entry);
                    final QueueEntry copy = new QueueEntry();
                    copy.copyFrom(entry);
                    confirmed.put(entry.queueId, copy);
                }
                else
                {
                    index.take(entry, false);
                }
            });
        }
        // entries taken since the checkpoint that were written before it: out of the counts, killed later
        final QueueEntry scratch = new QueueEntry();
        for (final long[] at : activations)
        {
            final Long end = checkpointEnds.get(at[0]);
            if (end != null && at[1] < end && index.read(at[0], at[1], scratch) && scratch.live)
            {
                index.take(scratch, precise);
            }
        }

        // the active set
        final Set<Long> inCheckpoint = new HashSet<>();
        if (checkpoint != null)
        {
            for (final QueueEntry entry : checkpoint.active)
            {
                inCheckpoint.add(entry.queueId);
                if (entry.cycle >= repairedFromCycle)
                {
                    continue;
                }
                final QueueEntry recovered = recoverActive(entry.queueId, entry, tails.get(entry.queueId), confirmed,
                    index);
                if (recovered != null)
                {
                    result.active.add(recovered);
                    // the spool tailer may read it again (after a repair, from the start): it is taken already
                    tails.computeIfAbsent(entry.queueId, ignored -> new Tail()).skip = true;
                }
            }
        }
        for (final Map.Entry<Long, Tail> named : tails.entrySet())
        {
            if (inCheckpoint.contains(named.getKey()))
            {
                continue;
            }
            final QueueEntry recovered = recoverActive(named.getKey(), null, named.getValue(), confirmed, index);
            if (recovered != null && recovered.cycle >= repairedFromCycle)
            {
                named.getValue().skip = false;
                continue;
            }
            if (recovered != null)
            {
                result.active.add(recovered);
            }
        }
        return result;
    }

    /**
     * The state of a message that was active at the checkpoint ({@code entry}) or that the journal names since
     * ({@code tail}); null when it is finished, waits on disk, or is left to the spool tailer.
     */
    private static QueueEntry recoverActive(final long queueId, final QueueEntry entry, final Tail tail,
        final Map<Long, QueueEntry> confirmed, final DeferredIndex index)
    {
        if (tail == null)
        {
            return entry;
        }
        if (tail.done)
        {
            tail.skip = true;
            return null;
        }
        final boolean scheduledLast = tail.scheduledSeq > tail.activatedSeq;
        if (scheduledLast && confirmed.containsKey(queueId))
        {
            tail.skip = true;
            return null;
        }
        QueueEntry base = null;
        long afterSeq = -1;
        if (tail.activatedSeq >= 0)
        {
            final QueueEntry fromIndex = new QueueEntry();
            if (index.read(tail.activatedSlot, tail.activatedPosition, fromIndex))
            {
                base = fromIndex;
                afterSeq = tail.activatedSeq;
            }
            else if (entry == null)
            {
                LOG.error("queue recovery: the index entry {} at {} of a message taken back is gone; its state is"
                    + " lost", tail.activatedPosition, index.file(tail.activatedSlot));
            }
        }
        if (base == null && entry != null)
        {
            base = entry;
            afterSeq = -1;
        }
        if (base == null)
        {
            // read by the tailer after the checkpoint: it meets the message again
            return null;
        }
        tail.skip = true;
        if (entry != null)
        {
            base.attempts = Math.max(base.attempts, entry.attempts);
            base.flags |= entry.flags;
        }
        tail.applyTo(base, afterSeq);
        base.live = false;
        return base;
    }
}
