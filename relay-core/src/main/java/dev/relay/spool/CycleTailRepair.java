package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.bytes.MappedBytes;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueStore;
import net.openhft.chronicle.wire.DocumentContext;
import net.openhft.chronicle.wire.Wires;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.Function;

/**
 * Makes a queue appendable again after its newest cycle file lost or garbled its tail (a power cut with
 * {@code queue.sync=none}, a disk fault), before anything appends to it.
 * <p>
 * Why: Chronicle appends after the record its file header calls the last ({@code writePosition}) and readers stop at
 * the first position holding no header. When the tail is damaged those disagree: noise after the last record sends
 * the appender to a garbage position (every append then fails, or lands where no reader looks); a lost record
 * header or a truncated file leaves the appender writing beyond a hole that readers never cross. Either way mail
 * acknowledged after the restart would never be delivered. The write position can only grow, so the file is not
 * patched in place.
 * <p>
 * What it does, once at open: reads the newest cycle file record by record with a tailer, checking each with the
 * caller's {@link RecordCheck}, and then checks that nothing but Chronicle metadata and zeros follows the last
 * record and that the file header agrees about where that record is. If not, the file is moved into a
 * {@code damaged-*} directory beside the queue (kept for the operator), and its intact records, in order, are
 * appended afresh to the queue; damaged records and everything the readers could not reach are skipped. What was
 * done is logged and returned.
 * <p>
 * Thread: the opening thread, before any appender or tailer of the queue exists.
 */
final class CycleTailRepair
{
    private static final Logger LOG = LoggerFactory.getLogger(CycleTailRepair.class);
    private static final int SCAN_BYTES = 1 << 20;

    /** Whether the record in {@code bytes[start, end)} is whole. */
    interface RecordCheck
    {
        boolean intact(Bytes<?> bytes, long start, long end);
    }

    /** What a repair did. */
    record Outcome(File damagedFile, Path keptAt, String reason, long carriedOver, long skipped)
    {
    }

    private CycleTailRepair()
    {
    }

    /**
     * Checks the newest cycle file of the queue {@code builder} opens, and repairs it if its tail is damaged.
     *
     * @param open opens the queue in a directory with the queue's settings (called up to three times: to check, for
     *             a queue over the damaged file, and to carry its intact records over).
     * @return what was repaired; null when the tail was intact (or there is no cycle file).
     */
    static Outcome repair(final Path dir, final Function<Path, SingleChronicleQueue> open, final RecordCheck check)
        throws IOException
    {
        final Damage damage;
        try (SingleChronicleQueue queue = open.apply(dir))
        {
            damage = inspect(queue, check);
        }
        if (damage == null)
        {
            return null;
        }
        final Path keptAt = dir.resolve("damaged-" + System.currentTimeMillis());
        Files.createDirectories(keptAt);
        Files.move(damage.file.toPath(), keptAt.resolve(damage.file.getName()));
        long carried = 0;
        long skipped = 0;
        try (SingleChronicleQueue damaged = open.apply(keptAt);
             SingleChronicleQueue queue = open.apply(dir);
             ExcerptTailer tailer = damaged.createTailer();
             ExcerptAppender appender = queue.createAppender())
        {
            queue.refreshDirectoryListing();
            while (true)
            {
                try (DocumentContext dc = tailer.readingDocument())
                {
                    if (!dc.isPresent())
                    {
                        break;
                    }
                    final Bytes<?> bytes = dc.wire().bytes();
                    final long start = bytes.readPosition();
                    final long end = bytes.readLimit();
                    if (!check.intact(bytes, start, end))
                    {
                        skipped++;
                        continue;
                    }
                    try (DocumentContext out = appender.writingDocument())
                    {
                        out.wire().bytes().write(bytes, start, end - start);
                    }
                    carried++;
                }
                catch (final RuntimeException ex)
                {
                    // a garbage header past the damage: nothing after it can be trusted
                    skipped++;
                    break;
                }
            }
        }
        final Outcome outcome = new Outcome(damage.file, keptAt, damage.reason, carried, skipped);
        LOG.error("queue {}: newest cycle file {} is damaged ({}); its {} intact records were carried over into the"
                + " queue, {} damaged records and everything after the damage skipped; the damaged file is kept in {}",
            dir, damage.file.getName(), damage.reason, carried, skipped, keptAt);
        return outcome;
    }

    private record Damage(File file, String reason)
    {
    }

    private static Damage inspect(final SingleChronicleQueue queue, final RecordCheck check) throws IOException
    {
        final int cycle = queue.lastCycle();
        if (cycle == Integer.MIN_VALUE)
        {
            return null;
        }
        final SingleChronicleQueueStore store = queue.storeForCycle(cycle, queue.epoch(), false, null);
        if (store == null)
        {
            return null;
        }
        try
        {
            final File file = store.file();
            final long writePosition = store.writePosition();
            long lastHeader = -1;
            long lastEnd = -1;
            long records = 0;
            try (ExcerptTailer tailer = queue.createTailer())
            {
                if (!tailer.moveToIndex(queue.rollCycle().toIndex(cycle, 0)))
                {
                    return null; // no record in the newest cycle yet
                }
                while (true)
                {
                    try (DocumentContext dc = tailer.readingDocument())
                    {
                        if (!dc.isPresent())
                        {
                            break;
                        }
                        if (tailer.cycle() != cycle)
                        {
                            return new Damage(file, "a record of cycle " + tailer.cycle() + " follows it");
                        }
                        final Bytes<?> bytes = dc.wire().bytes();
                        final long start = bytes.readPosition();
                        if (!check.intact(bytes, start, bytes.readLimit()))
                        {
                            return new Damage(file, "record #" + records + " at offset " + start + " is damaged");
                        }
                        lastHeader = start - Wires.SPB_HEADER_SIZE;
                        lastEnd = bytes.readLimit();
                        records++;
                    }
                }
            }
            catch (final RuntimeException ex)
            {
                return new Damage(file, "unreadable after record #" + records + ": " + ex);
            }
            if (writePosition > lastHeader)
            {
                return new Damage(file, "the file header puts its last record at offset " + writePosition
                    + ", past the last readable one (offset " + lastHeader + ")");
            }
            final MappedBytes bytes = store.bytes();
            final long garbage;
            try
            {
                garbage = garbageAfter(bytes, file, lastEnd);
            }
            finally
            {
                bytes.releaseLast();
            }
            return garbage < 0 ? null
                : new Damage(file, "unreadable bytes at offset " + garbage + " after the last record");
        }
        finally
        {
            queue.closeStore(store);
        }
    }

    /**
     * The offset of the first byte after {@code end} that is neither Chronicle metadata (an index written ahead, an
     * end-of-file mark) nor zero; -1 when there is none. A record a killed writer left unfinished there (its header
     * still says "being written", so no reader ever saw it and it was never acknowledged) is zeroed, as if the write
     * had not begun, so that the next append can take its place.
     */
    private static long garbageAfter(final MappedBytes bytes, final File file, final long end) throws IOException
    {
        long position = align(end);
        while (true)
        {
            final int header = bytes.readVolatileInt(position);
            if (header == 0)
            {
                break;
            }
            if (Wires.isEndOfFile(header))
            {
                position += Wires.SPB_HEADER_SIZE;
                break;
            }
            final long next = align(position + Wires.SPB_HEADER_SIZE + Wires.lengthOf(header));
            if (next > file.length())
            {
                return position;
            }
            if (Wires.isNotComplete(header))
            {
                LOG.warn("{}: clearing a record left unfinished at offset {} ({} bytes) by a writer that died",
                    file, position, next - position);
                bytes.zeroOut(position, next);
                position = next;
                break;
            }
            if (!Wires.isReadyMetaData(header))
            {
                return position;
            }
            position = next;
        }
        return firstNonZero(file.toPath(), position);
    }

    private static long firstNonZero(final Path file, final long from) throws IOException
    {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ))
        {
            final ByteBuffer buffer = ByteBuffer.allocate(SCAN_BYTES);
            long position = from;
            while (true)
            {
                buffer.clear();
                final int n = channel.read(buffer, position);
                if (n <= 0)
                {
                    return -1;
                }
                int i = 0;
                while (i + Long.BYTES <= n && buffer.getLong(i) == 0)
                {
                    i += Long.BYTES;
                }
                for (; i < n; i++)
                {
                    if (buffer.get(i) != 0)
                    {
                        return position + i;
                    }
                }
                position += n;
            }
        }
    }

    private static long align(final long position)
    {
        return (position + 3) & ~3L;
    }
}
