package dev.relay.spool;

import java.util.Collection;
import java.util.TreeMap;

/**
 * The in-memory side of the {@link DeferredIndex}: one {@link DeferredBucket} per slot (ascending), and the live
 * counts over them all (entries, body bytes, and per spool cycle in {@link LiveByCycle}). This is what a checkpoint
 * records ({@link #all}, {@link #liveByCycle}) and what recovery restores ({@link #restore}, {@link #restoreCycle}) or
 * counts afresh ({@link #resetCounts}, {@link #countLive}); the queue manager reads its gauges here. Nothing here
 * touches a file: writing, reading and killing entries is the index's job, which moves these counts as it goes.
 * <p>
 * Owned by the thread that owns its index (the queue manager's, or a read-only tool's). Allocates a bucket per new
 * slot, and the maps {@link #liveWriteEnds} returns.
 */
public final class DeferredBuckets
{
    /** The hold bucket's key, boxed once: {@link #heldCount} runs every queue manager pass. */
    private static final Long HOLD_KEY = DeferredIndex.HOLD_SLOT;

    private final TreeMap<Long, DeferredBucket> bySlot = new TreeMap<>();
    private final LiveByCycle liveByCycle = new LiveByCycle();
    private long liveCount;
    private long liveBytes;

    DeferredBuckets()
    {
    }

    /** The bucket of {@code slot}, made (empty, no file yet) when there is none. */
    public DeferredBucket bucket(final long slot)
    {
        DeferredBucket bucket = bySlot.get(slot);
        if (bucket == null)
        {
            bucket = new DeferredBucket(slot);
            bySlot.put(slot, bucket);
        }
        return bucket;
    }

    /** Live entries of held mail (the {@link DeferredIndex#HOLD_SLOT} bucket). */
    public long heldCount()
    {
        final DeferredBucket hold = bySlot.get(HOLD_KEY);
        return hold == null ? 0 : hold.liveCount();
    }

    /** The bucket of {@code slot}, or null when there is none. */
    public DeferredBucket existing(final long slot)
    {
        return bySlot.get(slot);
    }

    /** Every bucket, by slot. */
    public Collection<DeferredBucket> all()
    {
        return bySlot.values();
    }

    /** The buckets from {@code slot} on (inclusive), by slot. */
    Collection<DeferredBucket> from(final long slot)
    {
        return bySlot.tailMap(slot, true).values();
    }

    /** A bucket as a checkpoint recorded it (recovery, before anything else). */
    public DeferredBucket restore(
        final long slot, final long readPosition, final long writePosition, final long live, final long bytes,
        final long minReceivedAtMs)
    {
        final DeferredBucket bucket = bucket(slot);
        bucket.readPosition = readPosition;
        bucket.writePosition = writePosition;
        bucket.liveCount = live;
        bucket.liveBytes = bytes;
        bucket.minReceivedAtMs = minReceivedAtMs;
        liveCount += live;
        liveBytes += bytes;
        return bucket;
    }

    /** Live entries in a spool cycle as a checkpoint recorded them (recovery). */
    public void restoreCycle(final int cycle, final long count, final long bytes)
    {
        liveByCycle.restore(cycle, count, bytes);
    }

    /**
     * Counts {@code entry} (live, already on disk at its slot and position) in its bucket and cycle: recovery, for an
     * entry written after the checkpoint that the journal confirms.
     */
    public void countLive(final QueueEntry entry)
    {
        count(bucket(entry.slot), entry, 1);
    }

    /** Moves {@code entry} into ({@code sign} 1) or out of (-1) the counts of its bucket, its cycle and the total. */
    void count(final DeferredBucket bucket, final QueueEntry entry, final int sign)
    {
        bucket.count(entry, sign);
        liveCount += sign;
        liveBytes += sign * entry.bodyBytes;
        liveByCycle.count(entry.cycle, entry.bodyBytes, sign);
    }

    /** Forgets every count (recovery, before counting the live entries afresh). */
    public void resetCounts()
    {
        for (final DeferredBucket bucket : bySlot.values())
        {
            bucket.resetCounts();
        }
        liveByCycle.clear();
        liveCount = 0;
        liveBytes = 0;
    }

    /** Forgets a bucket whose file is gone, and its live entries with it (recovery). */
    public void forget(final long slot)
    {
        final DeferredBucket bucket = bySlot.remove(slot);
        if (bucket != null)
        {
            liveCount -= bucket.liveCount;
            liveBytes -= bucket.liveBytes;
        }
    }

    /** Drops the bucket of {@code slot} as it stands (its file is being deleted); the counts do not move. */
    DeferredBucket remove(final long slot)
    {
        return bySlot.remove(slot);
    }

    /** Live entries in all buckets. */
    public long liveCount()
    {
        return liveCount;
    }

    /** Body bytes of the live entries. */
    public long liveBytes()
    {
        return liveBytes;
    }

    /** The live entries per spool cycle. */
    public LiveByCycle liveByCycle()
    {
        return liveByCycle;
    }

    /** The earliest receive time of a bucket with live entries (a bucket's minimum is of every entry written). */
    public long oldestReceivedAtMs()
    {
        long oldest = Long.MAX_VALUE;
        for (final DeferredBucket bucket : bySlot.values())
        {
            if (bucket.liveCount > 0)
            {
                oldest = Math.min(oldest, bucket.minReceivedAtMs);
            }
        }
        return oldest;
    }

    /** Bytes of the index's files: every entry written to a file still there, live or dead. */
    public long fileBytes()
    {
        long bytes = 0;
        for (final DeferredBucket bucket : bySlot.values())
        {
            bytes += bucket.writePosition;
        }
        return bytes;
    }

    /**
     * Where each bucket with live entries ends now, by slot: an operator's command walks the index up to these ends
     * ({@link DeferredIndex#nextLive}), so what it writes on its way is not met again.
     */
    public TreeMap<Long, Long> liveWriteEnds()
    {
        final TreeMap<Long, Long> ends = new TreeMap<>();
        for (final DeferredBucket bucket : bySlot.values())
        {
            if (bucket.liveCount > 0)
            {
                ends.put(bucket.slot, bucket.writePosition);
            }
        }
        return ends;
    }
}
