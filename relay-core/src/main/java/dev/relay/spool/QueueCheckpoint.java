package dev.relay.spool;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32C;

/**
 * The queue manager's state at one moment, so that a start reads a bounded amount, whatever the backlog: every
 * active message as a {@link QueueEntry} (at most the active limit), every {@link DeferredIndex} bucket's positions
 * and counts, the live deferred mail per spool cycle, the spool bytes per cycle, where the spool tailer was
 * ({@code P}, the lowest index to read again; {@code Q}, the next unread: every message that ended before it was
 * handed over), and the journal's last record then ({@code J}). A start loads it and replays only the journal after
 * {@code J} and the spool after {@code P} ({@link QueueRecovery}).
 * <pre>
 * magic i32 | version i32 | writtenAtMs i64 | P i64 | Q i64 | J i64 | spool synced i64 | journal synced i64 |
 * lanes i32, each after lane 0: P i64 | Q i64 | spool synced i64      (version 2 on) |
 * buckets i32, each: slot i64 | read i64 | write i64 | live i64 | liveBytes i64 | minReceivedAtMs i64 |
 * cycles i32, each: cycle i32 | live deferred i64 | their bytes i64 | spool bytes i64 |
 * active i32, each: a QueueEntry |
 * kills i32, each: slot i64 | position i64      (index entries taken, to be killed once this file is durable) |
 * CRC32C i32 of everything before it
 * </pre>
 * P, Q and the spool synced index are per spool lane ({@link SpoolLanes}): lane 0's in the header (where version 1,
 * written before lanes, kept the single queue's, which is lane 0's now), the others' after it; a lane the checkpoint
 * does not name is read from its start. The synced indexes: every spool (journal) record before it was synced
 * before this file was written, so a start checks only the records after them for damage ({@link QueueRepair}); -1
 * when unknown.
 * <p>
 * Written as {@code checkpoint.tmp}, synced, renamed over {@code checkpoint} and the directory synced: a crash leaves
 * the old one or the new one whole. The files it names (the index buckets) are synced before. Encoded on the queue
 * manager's thread, written on its checkpoint thread; read at start, and by {@code spool list}.
 */
public final class QueueCheckpoint
{
    public static final String FILE = "checkpoint";
    private static final int MAGIC = 0x51434b50;
    private static final int VERSION = 2;
    /** Written before spool lanes: one queue, lane 0's positions only. Read, never written. */
    private static final int VERSION_SINGLE_QUEUE = 1;
    private static final int HEADER_LENGTH = 56;
    private static final Logger LOG = LoggerFactory.getLogger(QueueCheckpoint.class);

    public long writtenAtMs;
    /** Per spool lane, the index the tailer must read again from (its resume index); -1 from the start. */
    public long[] spoolResumeIndexes = {-1};
    /** Per spool lane, the tailer's next index: a message whose END is before it was handed over. */
    public long[] spoolReadIndexes = {-1};
    /** The journal's last record when written; -1 when it had none. */
    public long journalIndex = -1;
    /** Per spool lane, every record before this index was synced when the checkpoint was written; -1 when unknown. */
    public long[] spoolSyncedIndexes = {-1};
    /** Every journal record before this index was synced; -1 when unknown. */
    public long journalSyncedIndex = -1;
    public final List<BucketState> buckets = new ArrayList<>();
    /** Per spool cycle: {live deferred entries, their body bytes, spool bytes read}. */
    public final TreeMap<Integer, long[]> cycles = new TreeMap<>();
    public final List<QueueEntry> active = new ArrayList<>();
    /** Index entries taken back into the active set and not yet killed on disk ({@link DeferredIndex#take}). */
    public final List<DeferredIndex.Kill> kills = new ArrayList<>();

    /** One bucket of the {@link DeferredIndex}. */
    public record BucketState(long slot, long readPosition, long writePosition, long live, long liveBytes,
                              long minReceivedAtMs)
    {
    }

    /** The checkpoint in {@code dir}; null when there is none or it cannot be read (then a start reads it all). */
    public static QueueCheckpoint read(final Path dir)
    {
        final byte[] bytes;
        try
        {
            bytes = Files.readAllBytes(dir.resolve(FILE));
        }
        catch (final NoSuchFileException ex)
        {
            return null;
        }
        catch (final IOException ex)
        {
            LOG.error("queue checkpoint {}: cannot read it ({}): the journal and spool are read in full",
                dir.resolve(FILE), ex.toString());
            return null;
        }
        try
        {
            return decode(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN));
        }
        catch (final RuntimeException ex)
        {
            LOG.error("queue checkpoint {}: damaged ({}): the journal and spool are read in full", dir.resolve(FILE),
                ex.getMessage());
            return null;
        }
    }

    /**
     * Only the spool's synced indexes of the checkpoint in {@code dir}, per lane; {-1} when unknown (then every
     * record of every lane is checked).
     */
    public static long[] spoolSyncedIndexes(final Path dir)
    {
        if (!Files.exists(dir.resolve(FILE)))
        {
            return new long[] {-1};
        }
        final QueueCheckpoint checkpoint = read(dir);
        return checkpoint == null ? new long[] {-1} : checkpoint.spoolSyncedIndexes;
    }

    /**
     * Only the synced indexes of the checkpoint in {@code dir}: {spool lane 0, journal}, each -1 when unknown (then
     * every record is checked).
     */
    public static long[] syncedIndexes(final Path dir)
    {
        final long[] none = {-1, -1};
        try (FileChannel channel = FileChannel.open(dir.resolve(FILE), StandardOpenOption.READ))
        {
            final ByteBuffer header = ByteBuffer.allocate(HEADER_LENGTH).order(ByteOrder.LITTLE_ENDIAN);
            while (header.hasRemaining() && channel.read(header) >= 0)
            {
                // fill
            }
            if (header.hasRemaining() || header.getInt(0) != MAGIC ||
                (header.getInt(4) != VERSION && header.getInt(4) != VERSION_SINGLE_QUEUE))
            {
                return none;
            }
            return new long[] {header.getLong(40), header.getLong(48)};
        }
        catch (final IOException ex)
        {
            return none;
        }
    }

    /** The encoded checkpoint. */
    public byte[] encode()
    {
        final int lanes = Math.max(1, Math.max(spoolResumeIndexes.length,
            Math.max(spoolReadIndexes.length, spoolSyncedIndexes.length)));
        int length = HEADER_LENGTH + 4 + (lanes - 1) * 24 + 4 + buckets.size() * 48 + 4 + cycles.size() * 28 + 4 + 4 +
            kills.size() * 16 + 4;
        for (final QueueEntry entry : active)
        {
            length += entry.encodedLength();
        }
        final ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putInt(MAGIC);
        buffer.putInt(VERSION);
        buffer.putLong(writtenAtMs);
        buffer.putLong(lane(spoolResumeIndexes, 0));
        buffer.putLong(lane(spoolReadIndexes, 0));
        buffer.putLong(journalIndex);
        buffer.putLong(lane(spoolSyncedIndexes, 0));
        buffer.putLong(journalSyncedIndex);
        buffer.putInt(lanes);
        for (int lane = 1; lane < lanes; lane++)
        {
            buffer.putLong(lane(spoolResumeIndexes, lane));
            buffer.putLong(lane(spoolReadIndexes, lane));
            buffer.putLong(lane(spoolSyncedIndexes, lane));
        }
        buffer.putInt(buckets.size());
        for (final BucketState bucket : buckets)
        {
            buffer.putLong(bucket.slot());
            buffer.putLong(bucket.readPosition());
            buffer.putLong(bucket.writePosition());
            buffer.putLong(bucket.live());
            buffer.putLong(bucket.liveBytes());
            buffer.putLong(bucket.minReceivedAtMs());
        }
        buffer.putInt(cycles.size());
        for (final Map.Entry<Integer, long[]> cycle : cycles.entrySet())
        {
            buffer.putInt(cycle.getKey());
            buffer.putLong(cycle.getValue()[0]);
            buffer.putLong(cycle.getValue()[1]);
            buffer.putLong(cycle.getValue()[2]);
        }
        buffer.putInt(active.size());
        for (final QueueEntry entry : active)
        {
            entry.encode(buffer);
        }
        buffer.putInt(kills.size());
        for (final DeferredIndex.Kill kill : kills)
        {
            buffer.putLong(kill.slot());
            buffer.putLong(kill.position());
        }
        final CRC32C crc = new CRC32C();
        crc.update(buffer.array(), 0, buffer.position());
        buffer.putInt((int)crc.getValue());
        return buffer.array();
    }

    private static long lane(final long[] indexes, final int lane)
    {
        return lane < indexes.length ? indexes[lane] : -1;
    }

    private static QueueCheckpoint decode(final ByteBuffer buffer)
    {
        final int length = buffer.limit();
        final int version = length < 8 ? 0 : buffer.getInt(4);
        if (length < HEADER_LENGTH + 16 || buffer.getInt(0) != MAGIC ||
            (version != VERSION && version != VERSION_SINGLE_QUEUE))
        {
            throw new IllegalStateException("not a checkpoint of this version");
        }
        final CRC32C crc = new CRC32C();
        crc.update(buffer.array(), 0, length - 4);
        if ((int)crc.getValue() != buffer.getInt(length - 4))
        {
            throw new IllegalStateException("checksum mismatch");
        }
        final QueueCheckpoint checkpoint = new QueueCheckpoint();
        buffer.position(8);
        checkpoint.writtenAtMs = buffer.getLong();
        final long resume0 = buffer.getLong();
        final long read0 = buffer.getLong();
        checkpoint.journalIndex = buffer.getLong();
        final long synced0 = buffer.getLong();
        checkpoint.journalSyncedIndex = buffer.getLong();
        final int lanes = version == VERSION_SINGLE_QUEUE ? 1 : buffer.getInt();
        if (lanes < 1 || lanes > SpoolLanes.MAX_LANES)
        {
            throw new IllegalStateException("lane count " + lanes);
        }
        checkpoint.spoolResumeIndexes = new long[lanes];
        checkpoint.spoolReadIndexes = new long[lanes];
        checkpoint.spoolSyncedIndexes = new long[lanes];
        checkpoint.spoolResumeIndexes[0] = resume0;
        checkpoint.spoolReadIndexes[0] = read0;
        checkpoint.spoolSyncedIndexes[0] = synced0;
        for (int lane = 1; lane < lanes; lane++)
        {
            checkpoint.spoolResumeIndexes[lane] = buffer.getLong();
            checkpoint.spoolReadIndexes[lane] = buffer.getLong();
            checkpoint.spoolSyncedIndexes[lane] = buffer.getLong();
        }
        final int bucketCount = buffer.getInt();
        for (int i = 0; i < bucketCount; i++)
        {
            checkpoint.buckets.add(new BucketState(buffer.getLong(), buffer.getLong(), buffer.getLong(),
                buffer.getLong(), buffer.getLong(), buffer.getLong()));
        }
        final int cycleCount = buffer.getInt();
        for (int i = 0; i < cycleCount; i++)
        {
            checkpoint.cycles.put(buffer.getInt(), new long[] {buffer.getLong(), buffer.getLong(), buffer.getLong()});
        }
        final int activeCount = buffer.getInt();
        for (int i = 0; i < activeCount; i++)
        {
            final QueueEntry entry = new QueueEntry();
            final int entryLength = entry.decode(buffer, buffer.position(), length - 4 - buffer.position());
            if (entryLength <= 0)
            {
                throw new IllegalStateException("active entry " + i + " is damaged");
            }
            buffer.position(buffer.position() + entryLength);
            checkpoint.active.add(entry);
        }
        final int killCount = buffer.getInt();
        for (int i = 0; i < killCount; i++)
        {
            checkpoint.kills.add(new DeferredIndex.Kill(buffer.getLong(), buffer.getLong()));
        }
        if (buffer.position() != length - 4)
        {
            throw new IllegalStateException("length mismatch");
        }
        return checkpoint;
    }

    /**
     * Removes {@code dir}'s checkpoint (durably, before the caller writes to the journal): the next start reads the
     * whole journal and counts the deferred index afresh, as after a damaged checkpoint. For a tool that finishes
     * messages on a stopped relay ({@code spool transfer}): a message deferred on disk before the checkpoint is
     * known to a start only through the checkpoint's counts, so a DONE the journal gained after it would not reach
     * its entry, and the next start would deliver it again.
     *
     * @return whether there was one.
     */
    public static boolean discard(final Path dir) throws IOException
    {
        final boolean existed = Files.deleteIfExists(dir.resolve(FILE));
        if (existed)
        {
            try (FileChannel directory = FileChannel.open(dir, StandardOpenOption.READ))
            {
                directory.force(true);
            }
            catch (final IOException ignored)
            {
                // some file systems cannot sync a directory; the deletion is then as durable as they make it
            }
        }
        return existed;
    }

    /**
     * Syncs {@code syncFirst} (files the checkpoint relies on), then writes {@code encoded} as {@code dir}'s
     * checkpoint, replacing the old one only once the new one is synced. Any thread (the checkpoint thread).
     */
    public static void write(final Path dir, final byte[] encoded, final List<Path> syncFirst) throws IOException
    {
        for (final Path file : syncFirst)
        {
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE))
            {
                channel.force(true);
            }
            catch (final NoSuchFileException ignored)
            {
                // deleted since (a finished bucket or cycle): nothing in it is needed
            }
        }
        final Path tmp = dir.resolve(FILE + ".tmp");
        try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING))
        {
            final ByteBuffer buffer = ByteBuffer.wrap(encoded);
            while (buffer.hasRemaining())
            {
                channel.write(buffer);
            }
            channel.force(true);
        }
        Files.move(tmp, dir.resolve(FILE), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        try (FileChannel directory = FileChannel.open(dir, StandardOpenOption.READ))
        {
            directory.force(true);
        }
        catch (final IOException ignored)
        {
            // some file systems cannot sync a directory; the rename is then as durable as they make it
        }
    }
}
