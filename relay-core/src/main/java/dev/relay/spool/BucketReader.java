package dev.relay.spool;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Walks one {@link DeferredBucket}'s file entry by entry, for the {@link DeferredIndex}: the next live entry from a
 * position (dead entries, and live ones taken ahead of the bucket's reader, passed over), bytes that hold no entry
 * skipped to the next whole one, and at recovery every entry written after a position, the file cut after the last
 * whole one.
 * <p>
 * Owned by the index's thread. Allocates one probe entry per damaged run found.
 */
final class BucketReader
{
    private static final Logger LOG = LoggerFactory.getLogger(DeferredIndex.class);

    private final DeferredFiles files;
    private final TakenEntries taken;

    /** What {@link #recover} hands over. */
    @FunctionalInterface
    interface EntryVisitor
    {
        void onEntry(QueueEntry entry);
    }

    BucketReader(final DeferredFiles files, final TakenEntries taken)
    {
        this.files = files;
        this.taken = taken;
    }

    /**
     * The next live entry at or after {@code from}, read into {@code into}.
     *
     * @return the position after it; -1 when the bucket has none more.
     */
    long nextLive(final DeferredBucket bucket, final long from, final QueueEntry into)
    {
        return nextLive(bucket, from, bucket.writePosition, into);
    }

    /** As {@link #nextLive(DeferredBucket, long, QueueEntry)}, for entries that start before {@code end}. */
    long nextLive(final DeferredBucket bucket, final long from, final long end, final QueueEntry into)
    {
        long at = from;
        while (at < end)
        {
            final int length = files.read(bucket.slot, at, bucket.writePosition, into);
            if (length <= 0)
            {
                at = skipDamaged(bucket, at);
                continue;
            }
            if (into.live && !taken.isTakenAhead(bucket.slot, at))
            {
                return at + length;
            }
            at += length;
        }
        return -1;
    }

    /**
     * Recovery: reads the entries from {@code from} to the end of the file, handing each whole one to
     * {@code visitor}; the bucket's write position becomes the end of the last whole entry. Bytes after it that hold
     * no whole entry are what a crash left of a write cut short: cut off (unless {@code readOnly}). Bytes in the
     * middle that hold none (a disk fault) are skipped to the next whole entry and reported.
     */
    void recover(final DeferredBucket bucket, final long from, final boolean readOnly, final EntryVisitor visitor)
    {
        final long end = files.length(bucket.slot);
        final QueueEntry entry = new QueueEntry();
        long at = Math.max(0, from);
        bucket.writePosition = at;
        while (at < end)
        {
            final int length = files.read(bucket.slot, at, end, entry);
            if (length > 0)
            {
                at += length;
                bucket.writePosition = at;
                visitor.onEntry(entry);
                continue;
            }
            final long next = nextWhole(bucket.slot, at, end);
            if (next < 0)
            {
                LOG.warn("deferred index: {} ends in {} bytes that are no whole entry (a write a crash cut short);"
                    + " cut off", files.file(bucket.slot), end - at);
                if (!readOnly)
                {
                    files.truncate(bucket.slot, at);
                }
                return;
            }
            LOG.error("deferred index: {} bytes of {} at {} are damaged and skipped", next - at,
                files.file(bucket.slot), at);
            at = next;
        }
    }

    /** After bytes at {@code from} that are no entry: the next position with a whole entry, or the write position. */
    private long skipDamaged(final DeferredBucket bucket, final long from)
    {
        final long next = nextWhole(bucket.slot, from, bucket.writePosition);
        if (next < 0)
        {
            LOG.error("deferred index: the last {} bytes of {} at {} are damaged and skipped",
                bucket.writePosition - from, files.file(bucket.slot), from);
            return bucket.writePosition;
        }
        LOG.error("deferred index: {} bytes of {} at {} are damaged and skipped", next - from,
            files.file(bucket.slot), from);
        return next;
    }

    /**
     * The first position after {@code from} (before {@code end}) holding a whole, intact entry; -1 when none. What
     * the skipped bytes held is lost, as a damaged spool record is (entries are synced before a checkpoint names
     * them, so only a disk fault damages one it named).
     */
    private long nextWhole(final long slot, final long from, final long end)
    {
        final QueueEntry probe = new QueueEntry();
        for (long at = from + 1; at + QueueEntry.HEADER_LENGTH <= end; at++)
        {
            if (files.read(slot, at, end, probe) > 0)
            {
                return at;
            }
        }
        return -1;
    }
}
