package dev.relay.spool;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;

/**
 * Deferred mail on disk, found by next-attempt time (Postfix's deferred queue, with the due time as the index): one
 * append-only file per {@link #SLOT_MS} of due time ({@code queue.dir/deferred/<slot start ms>.due}), each a run of
 * {@link QueueEntry}s. A deferred message costs its entry on disk (~150 bytes with one recipient and its last
 * reply) and nothing on the heap; the heap holds one small {@link DeferredBucket} per file (a few thousand at most:
 * the longest retry wait divided by the slot) and the live count and bytes per spool cycle, in
 * {@link DeferredBuckets} ({@link #buckets}: what a checkpoint records and recovery restores). This class is the disk
 * side: it writes, reads, takes, kills and deletes entries and files (through {@link DeferredFiles},
 * {@link BucketReader} and {@link TakenEntries}) and keeps those counts in step as it goes.
 * <p>
 * An entry is written once ({@link #append}) and later killed in place ({@link #kill}: one byte) when its message
 * becomes active again; a bucket is read in order from its read position ({@link #next}) once its slot has begun
 * (or at once, after a flush), and deleted by its owner when every entry in it is dead and its slot is over. So
 * nothing is ever rewritten: a standing backlog costs one entry per message per retry, not a copy of the backlog.
 * <p>
 * Held mail (an operator's {@code spool hold}, Postfix's hold queue) waits in one more bucket, {@link #HOLD_SLOT},
 * whose slot never begins: nothing takes it by time, and a flush leaves it alone; {@code spool release} writes its
 * entry again into the bucket of now. The hold bucket is deleted like any other once no entry in it is live.
 * <p>
 * What the index cannot know by itself after a crash (which entries written since the last checkpoint count, which
 * were taken) is settled by {@link QueueRecovery} from the journal; see there.
 * <p>
 * Owned by one thread (the queue manager's), or opened read-only by a tool ({@code spool list}). Allocates per
 * bucket, and per entry read.
 */
public final class DeferredIndex implements AutoCloseable
{
    /** The due time one file covers. */
    public static final long SLOT_MS = 10_000;
    static final String SUFFIX = DeferredFiles.SUFFIX;
    /**
     * The bucket of held mail: due at the start of the year 10000, so never due (its entries carry
     * {@link QueueEntry#FLAG_HELD} too).
     */
    public static final long HOLD_SLOT = 253_402_300_800_000L;
    private static final Logger LOG = LoggerFactory.getLogger(DeferredIndex.class);

    private final DeferredFiles files;
    private final boolean readOnly;
    private final DeferredBuckets buckets = new DeferredBuckets();
    private final TakenEntries taken = new TakenEntries();
    private final TakenEntries.Killer killOnDisk = this::killOnDisk;
    private final BucketReader reader;
    private long writeFailures;

    /** Where a scan of every live entry ({@link #scanNext}) is. */
    public static final class ScanCursor
    {
        long slot = Long.MIN_VALUE;
        long position;
    }

    private DeferredIndex(final Path dir, final boolean readOnly)
    {
        this.files = new DeferredFiles(dir, readOnly);
        this.readOnly = readOnly;
        this.reader = new BucketReader(files, taken);
    }

    /** Opens (creating the directory) the index in {@code dir} to write. */
    public static DeferredIndex open(final Path dir)
    {
        try
        {
            Files.createDirectories(dir);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot create " + dir + ": " + ex, ex);
        }
        return new DeferredIndex(dir, false);
    }

    /** Opens the index in {@code dir} to read only (it may not exist). */
    public static DeferredIndex openReadOnly(final Path dir)
    {
        return new DeferredIndex(dir, true);
    }

    /** The slot (its start, ms) an entry due at {@code dueMs} goes to. */
    public static long slotOf(final long dueMs)
    {
        return Math.floorDiv(dueMs, SLOT_MS) * SLOT_MS;
    }

    public Path dir()
    {
        return files.dir();
    }

    /** Whether the slot is over at {@code nowMs}, so its bucket may go once empty (the hold bucket counts as over). */
    public static boolean slotOver(final long slot, final long nowMs)
    {
        return slot == HOLD_SLOT || slot + SLOT_MS <= nowMs;
    }

    /** The slots that have a file, ascending. */
    public List<Long> slotsOnDisk()
    {
        return files.slotsOnDisk();
    }

    /** The buckets by slot and the live counts over them: what a checkpoint records and recovery restores. */
    public DeferredBuckets buckets()
    {
        return buckets;
    }

    /**
     * Writes {@code entry} (live) into the bucket of its due time; sets its slot and position.
     *
     * @return false when the write failed (the file system is full, or a fault): nothing counts, the caller keeps
     * the message.
     */
    public boolean append(final QueueEntry entry)
    {
        final long slot = slotOf(entry.dueMs);
        final DeferredBucket bucket = buckets.bucket(slot);
        final long position = bucket.writePosition;
        final int length;
        try
        {
            length = files.write(slot, position, entry);
        }
        catch (final IOException | UncheckedIOException ex)
        {
            if (writeFailures++ == 0 || writeFailures % 10_000 == 0)
            {
                LOG.warn("deferred index: cannot write to {} ({} failures so far): {}", file(slot), writeFailures,
                    ex.toString());
            }
            return false;
        }
        bucket.writePosition = position + length;
        bucket.dirty = true;
        entry.slot = slot;
        entry.position = position;
        entry.live = true;
        buckets.count(bucket, entry, 1);
        return true;
    }

    /** Writes that failed since start (metrics, logs). */
    public long writeFailures()
    {
        return writeFailures;
    }

    /**
     * Takes the entry {@code entry} was read from (its slot and position) out of the live counts at once; on disk it
     * is killed only once a checkpoint written after this names it ({@link #pendingKills}, {@link #applyKills}): a
     * power cut can then never leave an entry dead whose message the journal and the checkpoint do not know to be
     * active. Until then {@link #next} and {@link #scanNext} skip it.
     */
    public void take(final QueueEntry entry)
    {
        take(entry, entry.live);
    }

    /**
     * As {@link #take(QueueEntry)}; {@code counted} says whether the entry is in the live counts (recovery: one
     * written after the checkpoint and not confirmed never was).
     */
    public void take(final QueueEntry entry, final boolean counted)
    {
        final DeferredBucket bucket = buckets.existing(entry.slot);
        if (bucket == null)
        {
            return;
        }
        if (counted)
        {
            buckets.count(bucket, entry, -1);
        }
        entry.live = false;
        taken.add(entry.slot, entry.position, entry.position >= bucket.readPosition);
    }

    /** The entries taken and not yet killed on disk, oldest first (a checkpoint lists them). */
    public Collection<Kill> pendingKills()
    {
        return taken.pending();
    }

    /**
     * Kills on disk the first {@code count} entries of {@link #pendingKills}: a checkpoint naming them is durable.
     * Read-only: nothing.
     */
    public void applyKills(final int count)
    {
        taken.kill(count, killOnDisk);
    }

    private void killOnDisk(final long slot, final long position)
    {
        if (!readOnly && buckets.existing(slot) != null)
        {
            writeDead(slot, position);
        }
    }

    /**
     * Recovery: an entry a checkpoint listed as taken (not in its counts) is taken again, to be killed on disk after
     * the next checkpoint.
     */
    public void restoreKill(final long slot, final long position)
    {
        final DeferredBucket bucket = buckets.existing(slot);
        if (bucket == null)
        {
            return;
        }
        taken.add(slot, position, position >= bucket.readPosition);
    }

    /** An entry taken, to be killed on disk after the next checkpoint. */
    public record Kill(long slot, long position)
    {
    }

    /**
     * Kills the entry {@code entry} was read from, on disk at once (recovery: an entry the journal does not confirm,
     * or one a checkpoint listed as taken); when {@code counted}, it also leaves the live counts.
     */
    public void kill(final QueueEntry entry, final boolean counted)
    {
        final DeferredBucket bucket = buckets.existing(entry.slot);
        if (bucket == null)
        {
            return;
        }
        if (!readOnly)
        {
            writeDead(entry.slot, entry.position);
        }
        if (counted && entry.live)
        {
            buckets.count(bucket, entry, -1);
        }
        entry.live = false;
    }

    private void writeDead(final long slot, final long position)
    {
        files.markDead(slot, position);
        final DeferredBucket bucket = buckets.existing(slot);
        if (bucket != null)
        {
            bucket.dirty = true;
        }
    }

    /**
     * The next live entry of the earliest bucket whose slot has begun by {@code horizonMs}, read into {@code into};
     * the bucket's read position moves past it (and past the dead entries before it). The caller takes it (and
     * {@link #kill}s it).
     *
     * @return false when no bucket that is due has a live entry left.
     */
    public boolean next(final long horizonMs, final QueueEntry into)
    {
        for (final DeferredBucket bucket : buckets.all())
        {
            if (bucket.slot > horizonMs)
            {
                return false;
            }
            if (bucket.liveCount <= 0)
            {
                bucket.readPosition = bucket.writePosition;
                continue;
            }
            final long after = reader.nextLive(bucket, bucket.readPosition, into);
            bucket.readPosition = after < 0 ? bucket.writePosition : after;
            if (after >= 0)
            {
                return true;
            }
        }
        return false;
    }

    /**
     * The next live entry after {@code cursor} in any bucket, due or not, read into {@code into}; the cursor moves
     * past it. Read positions do not move: what is taken this way is killed in the middle of its bucket.
     *
     * @return false at the end of the index (the cursor then starts over).
     */
    public boolean scanNext(final ScanCursor cursor, final QueueEntry into)
    {
        final Iterator<DeferredBucket> it = buckets.from(cursor.slot).iterator();
        while (it.hasNext())
        {
            final DeferredBucket bucket = it.next();
            if (bucket.slot != cursor.slot)
            {
                cursor.slot = bucket.slot;
                cursor.position = bucket.readPosition;
            }
            cursor.position = Math.max(cursor.position, bucket.readPosition);
            final long after = bucket.liveCount > 0 ? reader.nextLive(bucket, cursor.position, into) : -1;
            if (after >= 0)
            {
                cursor.position = after;
                return true;
            }
            cursor.position = Long.MAX_VALUE;
        }
        cursor.slot = Long.MIN_VALUE;
        cursor.position = 0;
        return false;
    }

    /**
     * The next live entry of {@code slot}'s bucket at or after {@code from} and before {@code end}, read into
     * {@code into}. Read positions do not move.
     *
     * @return the position after it; -1 when there is none.
     */
    public long nextLive(final long slot, final long from, final long end, final QueueEntry into)
    {
        final DeferredBucket bucket = buckets.existing(slot);
        if (bucket == null || bucket.liveCount == 0)
        {
            return -1;
        }
        return reader.nextLive(bucket, Math.max(from, bucket.readPosition), Math.min(end, bucket.writePosition), into);
    }

    /**
     * Reads the entry at {@code position} of {@code slot}'s file into {@code into}, live or dead.
     *
     * @return false when there is none (no such file, or no whole entry there).
     */
    public boolean read(final long slot, final long position, final QueueEntry into)
    {
        final DeferredBucket bucket = buckets.existing(slot);
        if (bucket == null || position < 0 || position >= Math.max(bucket.writePosition, fileLength(slot)))
        {
            return false;
        }
        return files.read(slot, position, bucket.writePosition, into) > 0;
    }

    /**
     * Recovery: reads the entries of {@code slot}'s file from {@code from} to its end, handing each whole one to
     * {@code visitor}; the bucket's write position becomes the end of the last whole entry, and (unless read-only)
     * the file is cut there, so whatever a crash left half written is gone.
     */
    public void recoverWritten(final long slot, final long from, final EntryVisitor visitor)
    {
        reader.recover(buckets.bucket(slot), from, readOnly, visitor::onEntry);
    }

    /** What {@link #recoverWritten} hands over. */
    @FunctionalInterface
    public interface EntryVisitor
    {
        void onEntry(QueueEntry entry);
    }

    /** The files written since the last call (the checkpoint syncs them), as paths. */
    public List<Path> takeDirtyFiles()
    {
        final List<Path> dirty = new ArrayList<>();
        for (final DeferredBucket bucket : buckets.all())
        {
            if (bucket.dirty)
            {
                bucket.dirty = false;
                dirty.add(file(bucket.slot));
            }
        }
        return dirty;
    }

    /**
     * Deletes the file of {@code slot} (its entries all dead) and forgets the bucket, unless a kill of one of its
     * entries is pending ({@link #applyKills} goes a slice at a time): that kill would hit whatever a later file of
     * the same slot holds at its position (an overdue message moved forward is parked again in its old slot). The
     * caller asks again after the next checkpoint.
     *
     * @return whether the file was deleted.
     */
    public boolean delete(final long slot)
    {
        if (taken.anyPendingIn(slot))
        {
            return false;
        }
        taken.forgetSlot(slot);
        final DeferredBucket bucket = buckets.remove(slot);
        if (bucket != null && bucket.liveCount > 0)
        {
            LOG.error("deferred index: deleting {} with {} live entries", file(slot), bucket.liveCount);
        }
        files.delete(slot);
        return true;
    }

    public Path file(final long slot)
    {
        return files.file(slot);
    }

    public long fileLength(final long slot)
    {
        return files.length(slot);
    }

    @Override
    public void close()
    {
        files.close();
    }
}
