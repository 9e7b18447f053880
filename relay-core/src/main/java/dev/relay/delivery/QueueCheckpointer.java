package dev.relay.delivery;

import dev.relay.spool.DeferredBucket;
import dev.relay.spool.DeferredBuckets;
import dev.relay.spool.DeferredIndex;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.QueueCheckpoint;
import dev.relay.spool.QueueEntry;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolReader;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * Takes the queue manager's {@link QueueCheckpoint}s (every {@link #INTERVAL_MS} when something changed, and at
 * stop) and does what may only follow a durable one: index entries taken since the one before are killed on disk,
 * buckets with nothing live left and their slot over are deleted, and spool and journal cycles the checkpoint no
 * longer needs may go ({@link #spoolKeepFrom}, {@link #journalKeepFrom}). The kills (one write each) go a slice a
 * pass ({@link #applyKills}): a drain takes back thousands of entries between two checkpoints, and killing them all
 * at once held the queue manager, and fresh mail, for tens of milliseconds. No checkpoint is taken until they are
 * done (each checkpoint names the kills still pending, so a crash in between loses none), and the buckets it lets
 * go are deleted after them.
 * <p>
 * Owned by the queue manager's thread; the writing itself is the {@link CheckpointWriter}'s.
 */
final class QueueCheckpointer
{
    /** How often a checkpoint is taken while the queue changes: also the journal a start reads at most. */
    static final long INTERVAL_MS = 2_000;
    /** Index entries killed on disk per queue manager pass. */
    static final int KILLS_PER_PASS = 256;

    private final DeferredIndex index;
    private final DeferredBuckets buckets;
    private final OutcomeJournal journal;
    private final Spool spool;
    private final SpoolReader reader;
    private final CheckpointWriter writer;
    private final QueueEntry scratch = new QueueEntry();
    /** What the last checkpoint written says was synced (records before these indexes; the spool's per lane). */
    private long[] spoolSynced;
    private long journalSynced;
    private long lastJournalIndex = Long.MIN_VALUE;
    private long[] lastReadIndexes = new long[0];
    private long nextMs;
    // what the checkpoint being written allows once durable
    private boolean pending;
    private int pendingKills;
    /** Kills the last durable checkpoint allows that are not done yet. */
    private int killsLeft;
    private final List<Long> pendingBucketDeletes = new ArrayList<>();
    private int pendingSpoolKeep;
    private int pendingJournalKeep;
    private long[] pendingSpoolSynced;
    private long pendingJournalSynced;
    // what the last durable one allows
    private int spoolKeepFrom = Integer.MIN_VALUE;
    private int journalKeepFrom = Integer.MIN_VALUE;

    QueueCheckpointer(final DeferredIndex index, final OutcomeJournal journal, final Spool spool,
        final SpoolReader reader, final CheckpointWriter writer)
    {
        this.index = index;
        this.buckets = index.buckets();
        this.journal = journal;
        this.spool = spool;
        this.reader = reader;
        this.writer = writer;
        final long[] synced = QueueCheckpoint.syncedIndexes(index.dir());
        this.spoolSynced = QueueCheckpoint.spoolSyncedIndexes(index.dir());
        this.journalSynced = synced[1];
    }

    /**
     * Takes a checkpoint when one is due ({@link #INTERVAL_MS} since the last, and the journal or the tailer moved)
     * and the last one is written; first finishes what the last durable one allows.
     *
     * @return whether anything was done.
     */
    boolean maybeTake(final long nowMs, final Collection<QueuedMessage> active, final Map<Integer, Long> spooled,
        final SpoolCycles cycles)
    {
        boolean work = afterDurable(cycles);
        if (nowMs < nextMs || !writer.idle() || killsLeft > 0)
        {
            return work;
        }
        final long journalIndex = journal.lastIndex();
        final long[] readIndexes = reader.readIndexes();
        if (journalIndex == lastJournalIndex && java.util.Arrays.equals(readIndexes, lastReadIndexes) &&
            index.pendingKills().isEmpty() && !anyBucketToDelete(nowMs))
        {
            return work;
        }
        nextMs = nowMs + INTERVAL_MS;
        take(nowMs, active, spooled, cycles, false);
        return true;
    }

    /** The last checkpoint, at stop: written before this returns. */
    void takeNow(final long nowMs, final Collection<QueuedMessage> active, final Map<Integer, Long> spooled,
        final SpoolCycles cycles)
    {
        take(nowMs, active, spooled, cycles, true);
        afterDurable(cycles);
        index.applyKills(killsLeft);
        killsLeft = 0;
        deleteFinishedBuckets();
    }

    /** Kills the last durable checkpoint allows that are not done yet. */
    int killsLeft()
    {
        return killsLeft;
    }

    /**
     * Kills on disk the next {@link #KILLS_PER_PASS} entries the last durable checkpoint allows; every pass.
     *
     * @return how many.
     */
    int applyKills()
    {
        final int count = Math.min(killsLeft, KILLS_PER_PASS);
        if (count > 0)
        {
            index.applyKills(count);
            killsLeft -= count;
            if (killsLeft == 0)
            {
                deleteFinishedBuckets();
            }
        }
        return count;
    }

    /** Spool cycles before this are needed by no durable checkpoint. */
    int spoolKeepFrom()
    {
        return spoolKeepFrom;
    }

    /** Journal cycles before this are needed by no durable checkpoint (it reads after its record). */
    int journalKeepFrom()
    {
        return journalKeepFrom;
    }

    private void take(final long nowMs, final Collection<QueuedMessage> active, final Map<Integer, Long> spooled,
        final SpoolCycles cycles, final boolean wait)
    {
        final QueueCheckpoint checkpoint = new QueueCheckpoint();
        checkpoint.writtenAtMs = nowMs;
        checkpoint.spoolResumeIndexes = reader.resumeIndexes();
        checkpoint.spoolReadIndexes = reader.readIndexes();
        checkpoint.journalIndex = journal.lastIndex();
        int spoolKeep = reader.resumeCycle();
        spoolKeep = Math.min(spoolKeep, buckets.liveByCycle().minCycle());
        pendingBucketDeletes.clear();
        for (final DeferredBucket bucket : buckets.all())
        {
            if (bucket.liveCount() <= 0 && DeferredIndex.slotOver(bucket.slot(), nowMs))
            {
                pendingBucketDeletes.add(bucket.slot());
                continue;
            }
            checkpoint.buckets.add(new QueueCheckpoint.BucketState(bucket.slot(), bucket.readPosition(),
                bucket.writePosition(), bucket.liveCount(), bucket.liveBytes(), bucket.minReceivedAtMs()));
        }
        for (final Map.Entry<Integer, long[]> cycle : buckets.liveByCycle().byCycle().entrySet())
        {
            checkpoint.cycles.put(cycle.getKey(), new long[] {cycle.getValue()[0], cycle.getValue()[1], 0});
        }
        for (final Map.Entry<Integer, Long> cycle : spooled.entrySet())
        {
            checkpoint.cycles.computeIfAbsent(cycle.getKey(), ignored -> new long[3])[2] = cycle.getValue();
        }
        for (final QueuedMessage queued : active)
        {
            final QueueEntry entry = new QueueEntry();
            final int cycle = cycles.cycleOf(queued);
            queued.toEntry(entry, queued.heapIndex >= 0 ? queued.nextAttemptMs : 0, cycle);
            checkpoint.active.add(entry);
            spoolKeep = Math.min(spoolKeep, cycle);
        }
        checkpoint.kills.addAll(index.pendingKills());
        // the spool and journal records written so far are synced with it: a start checks only the later ones
        final List<Path> sync = new ArrayList<>(index.takeDirtyFiles());
        checkpoint.spoolSyncedIndexes = new long[spool.laneCount()];
        for (int lane = 0; lane < checkpoint.spoolSyncedIndexes.length; lane++)
        {
            final long spoolLast = spool.lastIndex(lane);
            final long laneSynced = lane < spoolSynced.length ? spoolSynced[lane] : -1;
            checkpoint.spoolSyncedIndexes[lane] = filesToSync(spool.cycleFiles(lane), spoolLast, laneSynced,
                spoolLast < 0 ? 0 : spool.cycleOf(spoolLast), laneSynced < 0 ? 0 : spool.cycleOf(laneSynced), sync);
        }
        checkpoint.journalSyncedIndex = filesToSync(journal.cycleFiles(), checkpoint.journalIndex, journalSynced,
            checkpoint.journalIndex < 0 ? 0 : journal.cycleOf(checkpoint.journalIndex),
            journalSynced < 0 ? 0 : journal.cycleOf(journalSynced), sync);
        pendingSpoolSynced = checkpoint.spoolSyncedIndexes;
        pendingJournalSynced = checkpoint.journalSyncedIndex;
        pendingKills = checkpoint.kills.size();
        pendingSpoolKeep = spoolKeep;
        pendingJournalKeep = checkpoint.journalIndex >= 0 ? journal.cycleOf(checkpoint.journalIndex) :
            Integer.MAX_VALUE;
        lastJournalIndex = checkpoint.journalIndex;
        lastReadIndexes = checkpoint.spoolReadIndexes;
        pending = true;
        final byte[] bytes = checkpoint.encode();
        if (wait)
        {
            writer.submitAndWait(index.dir(), bytes, sync);
        }
        else
        {
            writer.submit(index.dir(), bytes, sync);
        }
    }

    private boolean anyBucketToDelete(final long nowMs)
    {
        for (final DeferredBucket bucket : buckets.all())
        {
            if (bucket.liveCount() <= 0 && DeferredIndex.slotOver(bucket.slot(), nowMs))
            {
                return true;
            }
        }
        return false;
    }

    /**
     * Adds to {@code sync} the cycle files holding records after {@code synced} up to {@code last} (from the cycle of
     * the one, to the other's); returns the index every record before which will then be synced.
     */
    private static long filesToSync(final java.util.TreeMap<Integer, Path> files, final long last, final long synced,
        final int lastCycle, final int syncedCycle, final List<Path> sync)
    {
        if (last < 0)
        {
            return synced;
        }
        if (last + 1 == synced)
        {
            return synced;
        }
        sync.addAll((synced < 0 ? files.headMap(lastCycle, true) : files.subMap(syncedCycle, true, lastCycle, true))
            .values());
        return last + 1;
    }

    /**
     * The buckets the last durable checkpoint left out (nothing live, slot over) go, once the kills it allows are
     * done: a file is deleted only when no kill for it is pending ({@link DeferredIndex#delete}); one that still has
     * some (taken since) is listed again by the next checkpoint.
     */
    private void deleteFinishedBuckets()
    {
        for (final long slot : pendingBucketDeletes)
        {
            final DeferredBucket bucket = buckets.existing(slot);
            if (bucket != null && bucket.liveCount() <= 0)
            {
                index.delete(slot);
            }
        }
        pendingBucketDeletes.clear();
    }

    /** After the checkpoint being written is durable: kills (a slice a pass), then bucket deletions; cycle bounds. */
    private boolean afterDurable(final SpoolCycles cycles)
    {
        if (!pending || !writer.idle())
        {
            return false;
        }
        pending = false;
        if (!writer.durable())
        {
            // failed: nothing it would allow is done; the next one tries again
            lastJournalIndex = Long.MIN_VALUE;
            return false;
        }
        killsLeft = pendingKills;
        if (killsLeft == 0)
        {
            deleteFinishedBuckets();
        }
        spoolKeepFrom = pendingSpoolKeep;
        journalKeepFrom = pendingJournalKeep;
        spoolSynced = pendingSpoolSynced;
        journalSynced = pendingJournalSynced;
        return true;
    }
}
