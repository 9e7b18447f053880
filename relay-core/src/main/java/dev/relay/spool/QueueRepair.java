package dev.relay.spool;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
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
 * Makes a queue whole again after a power cut ({@code queue.sync=none}) or a disk fault damaged one of its cycle
 * files, before anything appends to it or reads it.
 * <p>
 * Why: a Chronicle reader stops at the first position holding no header and never goes past it, not even into the
 * next cycle file; and an appender appends after the record its file header calls the last ({@code writePosition}),
 * a position that can only grow. So a hole or noise in a cycle file (a record the page cache lost, a file cut short
 * of what its header says, garbage after the last record) hides every later record from delivery — also the mail
 * acknowledged after the restart — or sends appends to a garbage position where they fail or no reader looks.
 * Patching the file in place cannot move the write position back.
 * <p>
 * What it does, once at open: removes a cycle file a kill left half-created at a roll (see
 * {@link #clearUnfinishedCycleFiles}); reads every cycle file ({@link CycleFileInspection}), oldest first, record by
 * record, checking each with the caller's {@link RecordCheck}, and checks that nothing but Chronicle metadata (an index
 * written ahead, the end-of-file mark a roll writes) and zeros follows the last record and that the file header agrees
 * about where that record is. At the first damaged file, that file and every later one are moved into a
 * {@code damaged-<ms>} directory beside the cycle files, and their intact records are appended afresh to the queue, in
 * their order (so a message's records keep theirs); damaged records and whatever the reader could not reach after them
 * are skipped. The damaged file is kept for the operator; the intact ones that were carried over are deleted. A record
 * a killed writer left unfinished at the very end is cleared in place instead (it never finished, so no reader saw it
 * and nobody was told 250). What was done is logged and returned.
 * <p>
 * Cost: one sequential read of the records written since the queue manager's last checkpoint: the ones before were
 * synced when it was written ({@link QueueCheckpoint#spoolSyncedIndex}), so a power cut cannot have touched them (a
 * disk fault in them is still caught, record by record, by the checksums readers verify). Without a checkpoint,
 * every record is read.
 * <p>
 * Thread: the opening thread, before any appender or tailer of the queue exists.
 */
final class QueueRepair
{
    private static final Logger LOG = LoggerFactory.getLogger(QueueRepair.class);
    /** Space a repair leaves free beyond what it copies. */
    private static final long REPAIR_SLACK_BYTES = 16L << 20;

    /** Whether the record in {@code bytes[start, end)} is whole. */
    interface RecordCheck
    {
        boolean intact(Bytes<?> bytes, long start, long end);
    }

    /** What a repair did. */
    record Outcome(File damagedFile, Path keptAt, String reason, long carriedOver, long skipped)
    {
    }

    private QueueRepair()
    {
    }

    /**
     * Checks every cycle file of the queue {@code open} opens in {@code dir}, and repairs it if one is damaged.
     *
     * @param open opens a queue in a directory with the queue's settings (called up to three times: to check, for
     *             a queue over the set-aside files, and to carry their intact records over).
     * @return what was repaired; null when every file was intact (or there is none).
     * @throws IOException when a repair is needed and cannot be done (too little free space to copy).
     */
    static Outcome repair(final Path dir, final Function<Path, SingleChronicleQueue> open, final RecordCheck check)
        throws IOException
    {
        return repair(dir, open, check, -1);
    }

    /**
     * As {@link #repair(Path, Function, RecordCheck)}, checking only the records from {@code syncedIndex} on (the
     * one before it too, to know where the last intact record ends); every record when it is negative.
     */
    static Outcome repair(final Path dir, final Function<Path, SingleChronicleQueue> open, final RecordCheck check,
        final long syncedIndex) throws IOException
    {
        final CycleFileInspection.Damage damage;
        try (SingleChronicleQueue queue = open.apply(dir))
        {
            if (clearUnfinishedCycleFiles(dir, queue))
            {
                queue.refreshDirectoryListing();
            }
            damage = CycleFileInspection.inspect(queue, check, syncedIndex);
        }
        if (damage == null)
        {
            return null;
        }
        final long usable = dir.toFile().getUsableSpace();
        if (usable < damage.bytesToCopy() + REPAIR_SLACK_BYTES)
        {
            throw new IOException("cycle file " + damage.file() + " is damaged (" + damage.reason() + "); repairing it"
                + " copies up to " + damage.bytesToCopy() + " bytes, but only " + usable + " are free");
        }
        final Path keptAt = dir.resolve("damaged-" + System.currentTimeMillis());
        Files.createDirectories(keptAt);
        for (final File file : damage.filesToCarry())
        {
            Files.move(file.toPath(), keptAt.resolve(file.getName()));
        }
        long carried = 0;
        long skipped = 0;
        try (SingleChronicleQueue moved = open.apply(keptAt);
             SingleChronicleQueue queue = open.apply(dir);
             ExcerptTailer tailer = moved.createTailer();
             ExcerptAppender appender = queue.createAppender())
        {
            queue.refreshDirectoryListing();
            final int last = moved.lastCycle();
            for (int cycle = moved.firstCycle(); cycle >= 0 && cycle <= last;
                cycle = CycleFileInspection.nextCycle(moved, cycle))
            {
                if (!tailer.moveToCycle(cycle))
                {
                    continue;
                }
                while (true)
                {
                    try (DocumentContext dc = tailer.readingDocument())
                    {
                        // not present: a hole or the end of the file; another cycle: this one ended (and the next
                        // is read from its start by the loop)
                        if (!dc.isPresent() || tailer.cycle() != cycle)
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
                        // a garbage header in the damaged file: nothing after it there can be trusted
                        skipped++;
                        break;
                    }
                }
            }
        }
        for (final File file : damage.filesToCarry())
        {
            if (!file.equals(damage.file()))
            {
                Files.deleteIfExists(keptAt.resolve(file.getName()));
            }
        }
        final Outcome outcome = new Outcome(damage.file(), keptAt, damage.reason(), carried, skipped);
        LOG.error("queue {}: cycle file {} is damaged ({}); the intact records of it and of the {} later file(s), {}"
                + " in all, were carried over into the queue; {} damaged records and what followed them in the damaged"
                + " file were skipped; the damaged file is kept in {}", dir, damage.file().getName(), damage.reason(),
            damage.filesToCarry().size() - 1, carried, skipped, keptAt);
        return outcome;
    }

    /**
     * Removes the cycle files whose creation a killed process left unfinished, before Chronicle opens them: a roll
     * renames {@code <cycle>.precreated} into place, maps it and only then writes the file header, its index arrays
     * and, last, the header's length; a record is written only after that, under the queue's write lock. So a file
     * whose first header is still 0 or "not complete" never held a record, and Chronicle would wait its timeout
     * (10 s) at every look at it — at open, in a tailer, in the appender, which then renames it {@code *.discard}.
     * Such a file is deleted (WARN). One that holds bytes past what creating a file writes lost its header to real
     * damage: it is moved into a {@code damaged-<ms>} directory (ERROR); Chronicle could not read its records anyway,
     * and readers go on past the missing cycle.
     *
     * @return whether a file was removed.
     */
    private static boolean clearUnfinishedCycleFiles(final Path dir, final SingleChronicleQueue queue)
        throws IOException
    {
        final File[] files = dir.toFile().listFiles((ignored, name) -> name.endsWith(SingleChronicleQueue.SUFFIX));
        if (files == null)
        {
            return false;
        }
        // the file header, the index-to-index array and the first index array, each with its own header
        final long creationBytes = 2 * (queue.indexCount() * 8L + 128) + 4096;
        boolean removed = false;
        java.util.Arrays.sort(files);
        for (final File file : files)
        {
            final int header = firstHeader(file.toPath());
            if (header != 0 && !Wires.isNotComplete(header))
            {
                continue;
            }
            final long data = CycleFileInspection.firstNonZero(file.toPath(), creationBytes);
            if (data < 0)
            {
                LOG.warn("{}: a process killed while rolling to this cycle file left its creation unfinished (first"
                    + " header {}); no record was ever written to it: removed", file, Integer.toHexString(header));
                Files.delete(file.toPath());
            }
            else
            {
                final Path keptAt = dir.resolve("damaged-" + System.currentTimeMillis());
                Files.createDirectories(keptAt);
                Files.move(file.toPath(), keptAt.resolve(file.getName()));
                LOG.error("queue {}: cycle file {} is damaged (its first header is {}, yet it holds data at offset {});"
                    + " Chronicle cannot read its records, so none of them is delivered; the file is kept in {}",
                    dir, file.getName(), Integer.toHexString(header), data, keptAt);
            }
            removed = true;
        }
        return removed;
    }

    /** The first header of a cycle file, 0 when the file is shorter than one. */
    private static int firstHeader(final Path file) throws IOException
    {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ))
        {
            final ByteBuffer buffer = ByteBuffer.allocate(Wires.SPB_HEADER_SIZE).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            while (buffer.hasRemaining())
            {
                if (channel.read(buffer, buffer.position()) <= 0)
                {
                    return 0;
                }
            }
            return buffer.getInt(0);
        }
    }
}
