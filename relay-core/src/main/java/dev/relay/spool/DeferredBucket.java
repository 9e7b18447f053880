package dev.relay.spool;

/**
 * One file of the {@link DeferredIndex}: the entries due in one slot of {@link DeferredIndex#SLOT_MS}, where the file
 * is read up to and written up to, and how many of its entries are live (with their body bytes and the earliest
 * receive time of any entry written to it). The index holds one per file, whatever the backlog; the checkpoint
 * records each ({@link QueueCheckpoint.BucketState}).
 * <p>
 * Owned by the index's thread.
 */
public final class DeferredBucket
{
    final long slot;
    long readPosition;
    long writePosition;
    long liveCount;
    long liveBytes;
    long minReceivedAtMs = Long.MAX_VALUE;
    /** Written since the last checkpoint took the dirty files (it syncs them). */
    boolean dirty;

    DeferredBucket(final long slot)
    {
        this.slot = slot;
    }

    /** The start of its slot (ms since the epoch): also its file's name. */
    public long slot()
    {
        return slot;
    }

    /** Entries before this were read (taken or dead). */
    public long readPosition()
    {
        return readPosition;
    }

    /** The end of its last whole entry. */
    public long writePosition()
    {
        return writePosition;
    }

    public long liveCount()
    {
        return liveCount;
    }

    public long liveBytes()
    {
        return liveBytes;
    }

    public long minReceivedAtMs()
    {
        return minReceivedAtMs;
    }

    /** Counts {@code entry} in ({@code sign} 1) or out (-1). */
    void count(final QueueEntry entry, final int sign)
    {
        liveCount += sign;
        liveBytes += sign * entry.bodyBytes;
        if (sign > 0)
        {
            minReceivedAtMs = Math.min(minReceivedAtMs, entry.receivedAtMs);
        }
    }

    /** Forgets its counts (recovery counts afresh). */
    void resetCounts()
    {
        liveCount = 0;
        liveBytes = 0;
        minReceivedAtMs = Long.MAX_VALUE;
    }
}
