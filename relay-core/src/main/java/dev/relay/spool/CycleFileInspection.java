package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.bytes.MappedBytes;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.TailerDirection;
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
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Finds the first damaged cycle file of a queue for {@link QueueRepair}: reads the cycle files, oldest first, record
 * by record with the caller's {@link QueueRepair.RecordCheck}, and checks that nothing but Chronicle metadata and
 * zeros follows the last record and that the file header agrees about where that record is; a record a killed
 * writer left unfinished at the very end is cleared in place. Static; called on the opening thread, before any
 * appender or tailer of the queue exists.
 */
final class CycleFileInspection
{
    // logs under the repair it serves, as it did when this lived there
    private static final Logger LOG = LoggerFactory.getLogger(QueueRepair.class);
    private static final int SCAN_BYTES = 1 << 20;
    /** What Chronicle writes after an end-of-file header: the field name "EOF" in binary wire (0xC0 + length 3). */
    private static final byte[] END_OF_FILE_BODY = {(byte)0xC3, 'E', 'O', 'F'};

    private CycleFileInspection()
    {
    }

    /** The first damaged file, why, and the files to carry over from it on. */
    record Damage(File file, String reason, java.util.List<File> filesToCarry, long bytesToCopy)
    {
    }

    static Damage inspect(final SingleChronicleQueue queue, final QueueRepair.RecordCheck check, final long syncedIndex)
        throws IOException
    {
        final int fromCycle = syncedIndex < 0 ? Integer.MIN_VALUE : queue.rollCycle().toCycle(syncedIndex);
        final int last = queue.lastCycle();
        if (last == Integer.MIN_VALUE)
        {
            return null;
        }
        int cycle = queue.firstCycle();
        while (cycle < fromCycle && cycle < last)
        {
            final int next = nextCycle(queue, cycle);
            if (next == -1 || next == Integer.MIN_VALUE)
            {
                break;
            }
            cycle = next;
        }
        while (true)
        {
            final String reason = inspectCycle(queue, cycle, check, cycle == fromCycle ? syncedIndex : -1);
            if (reason != null)
            {
                final java.util.List<File> files = new java.util.ArrayList<>();
                long bytes = 0;
                for (int c = cycle; c != -1 && c != Integer.MIN_VALUE && c <= last; c = nextCycle(queue, c))
                {
                    final File file = fileOf(queue, c);
                    if (file != null)
                    {
                        files.add(file);
                        bytes += file.length();
                    }
                }
                return new Damage(files.get(0), reason, files, bytes);
            }
            if (cycle >= last)
            {
                return null;
            }
            cycle = nextCycle(queue, cycle);
            if (cycle == -1 || cycle == Integer.MIN_VALUE)
            {
                return null;
            }
        }
    }

    static int nextCycle(final SingleChronicleQueue queue, final int cycle)
    {
        try
        {
            return queue.nextCycle(cycle, TailerDirection.FORWARD);
        }
        catch (final java.text.ParseException ex)
        {
            throw new IllegalStateException("cannot list the cycle files of " + queue.fileAbsolutePath(), ex);
        }
    }

    private static File fileOf(final SingleChronicleQueue queue, final int cycle)
    {
        final SingleChronicleQueueStore store = queue.storeForCycle(cycle, queue.epoch(), false, null);
        if (store == null)
        {
            return null;
        }
        try
        {
            return store.file();
        }
        finally
        {
            queue.closeStore(store);
        }
    }

    /** Why the file of {@code cycle} is damaged; null when it is intact. */
    private static String inspectCycle(
        final SingleChronicleQueue queue, final int cycle, final QueueRepair.RecordCheck check,
        final long syncedIndex) throws IOException
    {
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
                // from the last record known synced: what came after it is what a power cut can have damaged
                final long sequence = syncedIndex < 0 ? 0 : queue.rollCycle().toSequenceNumber(syncedIndex);
                if ((sequence == 0 || !tailer.moveToIndex(syncedIndex - 1)) &&
                    !tailer.moveToIndex(queue.rollCycle().toIndex(cycle, 0)))
                {
                    return null; // no record in this cycle
                }
                while (true)
                {
                    try (DocumentContext dc = tailer.readingDocument())
                    {
                        if (!dc.isPresent() || tailer.cycle() != cycle)
                        {
                            break;
                        }
                        final Bytes<?> bytes = dc.wire().bytes();
                        final long start = bytes.readPosition();
                        if (!check.intact(bytes, start, bytes.readLimit()))
                        {
                            return "record #" + records + " at offset " + start + " is damaged";
                        }
                        lastHeader = start - Wires.SPB_HEADER_SIZE;
                        lastEnd = bytes.readLimit();
                        records++;
                    }
                }
            }
            catch (final RuntimeException ex)
            {
                return "unreadable after record #" + records + ": " + ex;
            }
            if (writePosition > lastHeader)
            {
                return "the file header puts its last record at offset " + writePosition
                    + ", past the last readable one (offset " + lastHeader + ")";
            }
            final MappedBytes bytes = store.bytes();
            try
            {
                final long garbage = garbageAfter(bytes, file, lastEnd);
                return garbage < 0 ? null : "unreadable bytes at offset " + garbage + " after the last record";
            }
            finally
            {
                bytes.releaseLast();
            }
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
                position = afterEndOfFileMark(bytes, file, position + Wires.SPB_HEADER_SIZE);
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

    /**
     * Just past the body of an end-of-file mark whose header ends at {@code position}. Chronicle marks a cycle file
     * finished (at a roll, or when an appender finds an older file without one) with the header
     * {@link Wires#END_OF_DATA}, whose length field is 0, followed by the binary-wire field name "EOF"
     * ({@code c3 45 4f 46}) that its length does not count ({@code AbstractWire.endOfWire}). A process killed
     * between the two leaves a prefix of that name, then zeros; both are the normal end of the file.
     */
    private static long afterEndOfFileMark(final MappedBytes bytes, final File file, final long position)
    {
        final long length = file.length();
        int matched = 0;
        while (matched < END_OF_FILE_BODY.length && position + matched < length
            && bytes.readByte(position + matched) == END_OF_FILE_BODY[matched])
        {
            matched++;
        }
        return position + matched;
    }

    static long firstNonZero(final Path file, final long from) throws IOException
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
