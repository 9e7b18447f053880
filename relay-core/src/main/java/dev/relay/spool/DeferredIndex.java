package dev.relay.spool;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Deferred mail on disk, found by next-attempt time (Postfix's deferred queue, with the due time as the index): one
 * append-only file per {@link #SLOT_MS} of due time ({@code queue.dir/deferred/<slot start ms>.due}), each a run of
 * {@link QueueEntry}s. A deferred message costs its entry on disk (~100 bytes with one recipient) and nothing on the
 * heap; the heap holds one small {@link Bucket} per file (a few thousand at most: the longest retry wait divided by
 * the slot) and the live count and bytes per spool cycle.
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
    /**
     * The bucket of held mail: due at the start of the year 10000, so never due (its entries carry
     * {@link QueueEntry#FLAG_HELD} too).
     */
    public static final long HOLD_SLOT = 253_402_300_800_000L;
    static final String SUFFIX = ".due";
    private static final int MAX_OPEN_FILES = 32;
    private static final int READ_AHEAD_BYTES = 256 * 1024;
    private static final Logger LOG = LoggerFactory.getLogger(DeferredIndex.class);

    private final Path dir;
    private final boolean readOnly;
    private final TreeMap<Long, Bucket> buckets = new TreeMap<>();
    /** Live entries by the spool cycle their records are in: {count, body bytes}. */
    private final TreeMap<Integer, long[]> liveByCycle = new TreeMap<>();
    private final LinkedHashMap<Long, FileChannel> open = new LinkedHashMap<>(64, 0.75f, true);
    private final ByteBuffer deadByte = ByteBuffer.allocateDirect(1).put(0, QueueEntry.DEAD);
    private final java.util.ArrayDeque<Kill> pendingKills = new java.util.ArrayDeque<>();
    /** Taken entries by slot, when some were taken ahead of their bucket's read position (pulled, recovered). */
    private final Map<Long, java.util.Set<Long>> takenAhead = new java.util.HashMap<>();
    private ByteBuffer writeBuffer = ByteBuffer.allocateDirect(4096).order(ByteOrder.LITTLE_ENDIAN);
    private ByteBuffer readBuffer = ByteBuffer.allocateDirect(READ_AHEAD_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    private long readSlot = -1;
    private long readStart;
    private int readLength;
    private long liveCount;
    private long liveBytes;
    private long writeFailures;

    /** One file: the entries due in one slot. */
    public static final class Bucket
    {
        final long slot;
        long readPosition;
        long writePosition;
        long liveCount;
        long liveBytes;
        long minReceivedAtMs = Long.MAX_VALUE;
        boolean dirty;

        Bucket(final long slot)
        {
            this.slot = slot;
        }

        public long slot()
        {
            return slot;
        }

        public long readPosition()
        {
            return readPosition;
        }

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
    }

    /** Where a scan of every live entry ({@link #scanNext}) is. */
    public static final class ScanCursor
    {
        long slot = Long.MIN_VALUE;
        long position;
    }

    private DeferredIndex(final Path dir, final boolean readOnly)
    {
        this.dir = dir;
        this.readOnly = readOnly;
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
        return dir;
    }

    /** Whether the slot is over at {@code nowMs}, so its bucket may go once empty (the hold bucket counts as over). */
    public static boolean slotOver(final long slot, final long nowMs)
    {
        return slot == HOLD_SLOT || slot + SLOT_MS <= nowMs;
    }

    /** The slots that have a file, ascending. */
    public List<Long> slotsOnDisk()
    {
        final List<Long> slots = new ArrayList<>();
        if (!Files.isDirectory(dir))
        {
            return slots;
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*" + SUFFIX))
        {
            for (final Path file : files)
            {
                final String name = file.getFileName().toString();
                try
                {
                    slots.add(Long.parseLong(name.substring(0, name.length() - SUFFIX.length())));
                }
                catch (final NumberFormatException ignored)
                {
                    // not ours
                }
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot list " + dir + ": " + ex, ex);
        }
        slots.sort(null);
        return slots;
    }

    /** A bucket as a checkpoint recorded it (recovery, before anything else). */
    public Bucket restoreBucket(
        final long slot, final long readPosition, final long writePosition, final long live, final long bytes,
        final long minReceivedAtMs)
    {
        final Bucket bucket = bucket(slot);
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
        if (count != 0 || bytes != 0)
        {
            liveByCycle.put(cycle, new long[] {count, bytes});
        }
    }

    /** The bucket of {@code slot}, made (empty, no file yet) when there is none. */
    public Bucket bucket(final long slot)
    {
        Bucket bucket = buckets.get(slot);
        if (bucket == null)
        {
            bucket = new Bucket(slot);
            buckets.put(slot, bucket);
        }
        return bucket;
    }

    public Bucket existingBucket(final long slot)
    {
        return buckets.get(slot);
    }

    /** Every bucket, by slot. */
    public Collection<Bucket> buckets()
    {
        return buckets.values();
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
        final Bucket bucket = bucket(slot);
        final int length = entry.encodedLength();
        if (writeBuffer.capacity() < length)
        {
            writeBuffer = ByteBuffer.allocateDirect(Integer.highestOneBit(length) << 1).order(ByteOrder.LITTLE_ENDIAN);
        }
        writeBuffer.clear();
        entry.encode(writeBuffer);
        writeBuffer.flip();
        final long position = bucket.writePosition;
        try
        {
            final FileChannel channel = channel(slot);
            long at = position;
            while (writeBuffer.hasRemaining())
            {
                at += channel.write(writeBuffer, at);
            }
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
        count(bucket, entry, 1);
        return true;
    }

    /** Writes that failed since start (metrics, logs). */
    public long writeFailures()
    {
        return writeFailures;
    }

    /**
     * Counts {@code entry} (live, already on disk at its slot and position) in its bucket and cycle: recovery, for an
     * entry written after the checkpoint that the journal confirms.
     */
    public void countLive(final QueueEntry entry)
    {
        count(bucket(entry.slot), entry, 1);
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
        final Bucket bucket = buckets.get(entry.slot);
        if (bucket == null)
        {
            return;
        }
        if (counted)
        {
            count(bucket, entry, -1);
        }
        entry.live = false;
        pendingKills.addLast(new Kill(entry.slot, entry.position));
        if (entry.position >= bucket.readPosition)
        {
            takenAhead.computeIfAbsent(entry.slot, ignored -> new java.util.HashSet<>()).add(entry.position);
        }
    }

    private boolean takenAhead(final long slot, final long position)
    {
        if (takenAhead.isEmpty())
        {
            return false;
        }
        final java.util.Set<Long> taken = takenAhead.get(slot);
        return taken != null && taken.contains(position);
    }

    /** The entries taken and not yet killed on disk, oldest first (a checkpoint lists them). */
    public java.util.Collection<Kill> pendingKills()
    {
        return pendingKills;
    }

    /**
     * Kills on disk the first {@code count} entries of {@link #pendingKills}: a checkpoint naming them is durable.
     * Read-only: nothing.
     */
    public void applyKills(final int count)
    {
        for (int i = 0; i < count && !pendingKills.isEmpty(); i++)
        {
            final Kill kill = pendingKills.pollFirst();
            if (!readOnly && buckets.containsKey(kill.slot()))
            {
                writeDead(kill.slot(), kill.position());
            }
            final java.util.Set<Long> taken = takenAhead.get(kill.slot());
            if (taken != null && taken.remove(kill.position()) && taken.isEmpty())
            {
                takenAhead.remove(kill.slot());
            }
        }
    }

    /**
     * Recovery: an entry a checkpoint listed as taken (not in its counts) is taken again, to be killed on disk after
     * the next checkpoint.
     */
    public void restoreKill(final long slot, final long position)
    {
        final Bucket bucket = buckets.get(slot);
        if (bucket == null)
        {
            return;
        }
        pendingKills.addLast(new Kill(slot, position));
        if (position >= bucket.readPosition)
        {
            takenAhead.computeIfAbsent(slot, ignored -> new java.util.HashSet<>()).add(position);
        }
    }

    /** Whether the entry at {@code slot}, {@code position} was taken and is not yet killed on disk. */
    public boolean isPendingKill(final long slot, final long position)
    {
        return pendingKills.contains(new Kill(slot, position));
    }

    /** Forgets every count (recovery, before counting the live entries afresh). */
    public void resetCounts()
    {
        for (final Bucket bucket : buckets.values())
        {
            bucket.liveCount = 0;
            bucket.liveBytes = 0;
            bucket.minReceivedAtMs = Long.MAX_VALUE;
        }
        liveByCycle.clear();
        liveCount = 0;
        liveBytes = 0;
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
        final Bucket bucket = buckets.get(entry.slot);
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
            count(bucket, entry, -1);
        }
        entry.live = false;
    }

    private void writeDead(final long slot, final long position)
    {
        try
        {
            deadByte.clear();
            channel(slot).write(deadByte, position + QueueEntry.STATE_OFFSET);
            final Bucket bucket = buckets.get(slot);
            if (bucket != null)
            {
                bucket.dirty = true;
            }
        }
        catch (final IOException | UncheckedIOException ex)
        {
            LOG.warn("deferred index: cannot mark an entry of {} taken: {}", file(slot), ex.toString());
        }
        if (readSlot == slot && position >= readStart && position + QueueEntry.HEADER_LENGTH <= readStart + readLength)
        {
            readBuffer.put((int)(position - readStart) + QueueEntry.STATE_OFFSET, QueueEntry.DEAD);
        }
    }

    private void count(final Bucket bucket, final QueueEntry entry, final int sign)
    {
        bucket.liveCount += sign;
        bucket.liveBytes += sign * entry.bodyBytes;
        liveCount += sign;
        liveBytes += sign * entry.bodyBytes;
        if (sign > 0)
        {
            bucket.minReceivedAtMs = Math.min(bucket.minReceivedAtMs, entry.receivedAtMs);
        }
        final long[] usage = liveByCycle.computeIfAbsent(entry.cycle, ignored -> new long[2]);
        usage[0] += sign;
        usage[1] += sign * entry.bodyBytes;
        if (usage[0] <= 0)
        {
            liveByCycle.remove(entry.cycle);
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
        for (final Bucket bucket : buckets.values())
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
            while (bucket.readPosition < bucket.writePosition)
            {
                final long at = bucket.readPosition;
                final int length = readAt(bucket, at, into);
                if (length <= 0)
                {
                    bucket.readPosition = resync(bucket, at);
                    continue;
                }
                bucket.readPosition = at + length;
                if (into.live && !takenAhead(bucket.slot, at))
                {
                    return true;
                }
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
        final Iterator<Bucket> it = buckets.tailMap(cursor.slot, true).values().iterator();
        while (it.hasNext())
        {
            final Bucket bucket = it.next();
            if (bucket.slot != cursor.slot)
            {
                cursor.slot = bucket.slot;
                cursor.position = bucket.readPosition;
            }
            cursor.position = Math.max(cursor.position, bucket.readPosition);
            while (bucket.liveCount > 0 && cursor.position < bucket.writePosition)
            {
                final long at = cursor.position;
                final int length = readAt(bucket, at, into);
                if (length <= 0)
                {
                    cursor.position = resync(bucket, at);
                    continue;
                }
                cursor.position = at + length;
                if (into.live && !takenAhead(bucket.slot, at))
                {
                    return true;
                }
            }
            cursor.position = Long.MAX_VALUE;
        }
        cursor.slot = Long.MIN_VALUE;
        cursor.position = 0;
        return false;
    }

    /**
     * Where each bucket with live entries ends now, by slot: an operator's command walks the index up to these ends
     * ({@link #nextLive}), so what it writes on its way is not met again.
     */
    public TreeMap<Long, Long> liveWriteEnds()
    {
        final TreeMap<Long, Long> ends = new TreeMap<>();
        for (final Bucket bucket : buckets.values())
        {
            if (bucket.liveCount > 0)
            {
                ends.put(bucket.slot, bucket.writePosition);
            }
        }
        return ends;
    }

    /**
     * The next live entry of {@code slot}'s bucket at or after {@code from} and before {@code end}, read into
     * {@code into}. Read positions do not move.
     *
     * @return the position after it; -1 when there is none.
     */
    public long nextLive(final long slot, final long from, final long end, final QueueEntry into)
    {
        final Bucket bucket = buckets.get(slot);
        if (bucket == null)
        {
            return -1;
        }
        long at = Math.max(from, bucket.readPosition);
        final long limit = Math.min(end, bucket.writePosition);
        while (bucket.liveCount > 0 && at < limit)
        {
            final long entryAt = at;
            final int length = readAt(bucket, entryAt, into);
            if (length <= 0)
            {
                at = resync(bucket, entryAt);
                continue;
            }
            at = entryAt + length;
            if (into.live && !takenAhead(slot, entryAt))
            {
                return at;
            }
        }
        return -1;
    }

    /**
     * Reads the entry at {@code position} of {@code slot}'s file into {@code into}, live or dead.
     *
     * @return false when there is none (no such file, or no whole entry there).
     */
    public boolean read(final long slot, final long position, final QueueEntry into)
    {
        final Bucket bucket = buckets.get(slot);
        if (bucket == null || position < 0 || position >= Math.max(bucket.writePosition, fileLength(slot)))
        {
            return false;
        }
        return readAt(bucket, position, into) > 0;
    }

    /**
     * Recovery: reads the entries of {@code slot}'s file from {@code from} to its end, handing each whole one to
     * {@code visitor}; the bucket's write position becomes the end of the last whole entry, and (unless read-only)
     * the file is cut there, so whatever a crash left half written is gone.
     */
    public void recoverWritten(final long slot, final long from, final EntryVisitor visitor)
    {
        final Bucket bucket = bucket(slot);
        final long end = fileLength(slot);
        final QueueEntry entry = new QueueEntry();
        long at = Math.max(0, from);
        bucket.writePosition = at;
        while (at < end)
        {
            final int length = readAt(bucket, at, entry, end);
            if (length <= 0)
            {
                LOG.warn("deferred index: {} ends in {} bytes that are no whole entry (a write a crash cut short);"
                    + " cut off", file(slot), end - at);
                if (!readOnly)
                {
                    truncate(slot, at);
                }
                break;
            }
            at += length;
            bucket.writePosition = at;
            visitor.onEntry(entry);
        }
    }

    /** What {@link #recoverWritten} hands over. */
    @FunctionalInterface
    public interface EntryVisitor
    {
        void onEntry(QueueEntry entry);
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

    /** The earliest receive time of a bucket with live entries (a bucket's minimum is of every entry written). */
    public long oldestReceivedAtMs()
    {
        long oldest = Long.MAX_VALUE;
        for (final Bucket bucket : buckets.values())
        {
            if (bucket.liveCount > 0)
            {
                oldest = Math.min(oldest, bucket.minReceivedAtMs);
            }
        }
        return oldest;
    }

    /** The earliest spool cycle a live entry's records are in; {@link Integer#MAX_VALUE} when none. */
    public int minLiveCycle()
    {
        return liveByCycle.isEmpty() ? Integer.MAX_VALUE : liveByCycle.firstKey();
    }

    /** Live entries by spool cycle: {count, body bytes}, read only. */
    public Map<Integer, long[]> liveByCycle()
    {
        return liveByCycle;
    }

    /** Live entries whose records are in {@code cycle}. */
    public long liveCountIn(final int cycle)
    {
        final long[] usage = liveByCycle.get(cycle);
        return usage == null ? 0 : usage[0];
    }

    /** Body bytes of the live entries whose records are in {@code cycle}. */
    public long liveBytesIn(final int cycle)
    {
        final long[] usage = liveByCycle.get(cycle);
        return usage == null ? 0 : usage[1];
    }

    /** The files written since the last call (the checkpoint syncs them), as paths. */
    public List<Path> takeDirtyFiles()
    {
        final List<Path> dirty = new ArrayList<>();
        for (final Bucket bucket : buckets.values())
        {
            if (bucket.dirty)
            {
                bucket.dirty = false;
                dirty.add(file(bucket.slot));
            }
        }
        return dirty;
    }

    /** Deletes the file of {@code slot} (its entries all dead) and forgets the bucket. */
    public void delete(final long slot)
    {
        takenAhead.remove(slot);
        final Bucket bucket = buckets.remove(slot);
        if (bucket != null && bucket.liveCount > 0)
        {
            LOG.error("deferred index: deleting {} with {} live entries", file(slot), bucket.liveCount);
        }
        final FileChannel channel = open.remove(slot);
        closeQuietly(channel);
        if (readSlot == slot)
        {
            readSlot = -1;
        }
        try
        {
            Files.deleteIfExists(file(slot));
        }
        catch (final IOException ex)
        {
            LOG.warn("deferred index: cannot delete {}: {}", file(slot), ex.toString());
        }
    }

    /** Forgets a bucket whose file is gone (recovery). */
    public void forget(final long slot)
    {
        final Bucket bucket = buckets.remove(slot);
        if (bucket != null)
        {
            liveCount -= bucket.liveCount;
            liveBytes -= bucket.liveBytes;
        }
    }

    public Path file(final long slot)
    {
        return dir.resolve(slot + SUFFIX);
    }

    public long fileLength(final long slot)
    {
        try
        {
            return Files.size(file(slot));
        }
        catch (final NoSuchFileException ex)
        {
            return 0;
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    private int readAt(final Bucket bucket, final long position, final QueueEntry into)
    {
        return readAt(bucket, position, into, bucket.writePosition);
    }

    /** Reads the entry at {@code position} (at most up to {@code end}); its length, or 0/-1 when none is there. */
    private int readAt(final Bucket bucket, final long position, final QueueEntry into, final long end)
    {
        if (!fill(bucket.slot, position, QueueEntry.HEADER_LENGTH, end))
        {
            return -1;
        }
        final int length = QueueEntry.lengthAt(readBuffer, (int)(position - readStart), readLength -
            (int)(position - readStart));
        if (length <= 0 || position + length > end || !fill(bucket.slot, position, length, end))
        {
            return -1;
        }
        final int decoded = into.decode(readBuffer, (int)(position - readStart), readLength -
            (int)(position - readStart));
        if (decoded <= 0)
        {
            return -1;
        }
        into.slot = bucket.slot;
        into.position = position;
        return decoded;
    }

    /** Makes {@code [position, position + length)} of the slot's file readable in the read buffer. */
    private boolean fill(final long slot, final long position, final int length, final long end)
    {
        if (readSlot == slot && position >= readStart && position + length <= readStart + readLength)
        {
            return true;
        }
        if (position + length > end)
        {
            return false;
        }
        if (readBuffer.capacity() < length)
        {
            readBuffer = ByteBuffer.allocateDirect(Integer.highestOneBit(length) << 1).order(ByteOrder.LITTLE_ENDIAN);
        }
        readSlot = -1;
        try
        {
            final FileChannel channel = channel(slot);
            readBuffer.clear();
            readBuffer.limit((int)Math.min(readBuffer.capacity(), end - position));
            long at = position;
            while (readBuffer.hasRemaining())
            {
                final int read = channel.read(readBuffer, at);
                if (read < 0)
                {
                    break;
                }
                at += read;
            }
        }
        catch (final IOException | UncheckedIOException ex)
        {
            LOG.warn("deferred index: cannot read {}: {}", file(slot), ex.toString());
            return false;
        }
        readSlot = slot;
        readStart = position;
        readLength = readBuffer.position();
        return readLength >= length;
    }

    /**
     * After bytes at {@code from} that are no entry (a disk fault: entries are synced before a checkpoint names
     * them): the next position holding a whole entry, or the end. The skipped bytes are reported; what they held is
     * lost, as a damaged spool record is.
     */
    private long resync(final Bucket bucket, final long from)
    {
        final QueueEntry probe = new QueueEntry();
        for (long at = from + 1; at + QueueEntry.HEADER_LENGTH <= bucket.writePosition; at++)
        {
            if (readAt(bucket, at, probe) > 0)
            {
                LOG.error("deferred index: {} bytes of {} at {} are damaged and skipped", at - from,
                    file(bucket.slot), from);
                return at;
            }
        }
        LOG.error("deferred index: the last {} bytes of {} at {} are damaged and skipped", bucket.writePosition -
            from, file(bucket.slot), from);
        return bucket.writePosition;
    }

    private void truncate(final long slot, final long at)
    {
        try
        {
            channel(slot).truncate(at);
            if (readSlot == slot)
            {
                readSlot = -1;
            }
        }
        catch (final IOException ex)
        {
            LOG.warn("deferred index: cannot cut {} at {}: {}", file(slot), at, ex.toString());
        }
    }

    private FileChannel channel(final long slot)
    {
        FileChannel channel = open.get(slot);
        if (channel != null)
        {
            return channel;
        }
        try
        {
            channel = readOnly ? FileChannel.open(file(slot), StandardOpenOption.READ) :
                FileChannel.open(file(slot), StandardOpenOption.READ, StandardOpenOption.WRITE,
                    StandardOpenOption.CREATE);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
        open.put(slot, channel);
        if (open.size() > MAX_OPEN_FILES)
        {
            final Iterator<Map.Entry<Long, FileChannel>> eldest = open.entrySet().iterator();
            closeQuietly(eldest.next().getValue());
            eldest.remove();
        }
        return channel;
    }

    private static void closeQuietly(final FileChannel channel)
    {
        if (channel != null)
        {
            try
            {
                channel.close();
            }
            catch (final IOException ignored)
            {
                // closing a file we only read and wrote positionally
            }
        }
    }

    @Override
    public void close()
    {
        for (final FileChannel channel : open.values())
        {
            closeQuietly(channel);
        }
        open.clear();
    }
}
