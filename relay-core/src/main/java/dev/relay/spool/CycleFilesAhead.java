package dev.relay.spool;

import net.openhft.chronicle.queue.ExcerptTailer;
import net.openhft.chronicle.queue.TailerDirection;
import net.openhft.chronicle.queue.impl.single.PrecreatedFiles;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.wire.DocumentContext;
import org.agrona.collections.IntArrayList;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * The cycle files of one {@link CycleFileAllocator}'s queue that no record is in yet: keeps one file allocated
 * ({@link CycleFileAllocator#PRECREATE_BYTES}) for the current cycle and the next
 * {@link CycleFileAllocator#CYCLES_AHEAD}, pre-created as {@code <cycle>.precreated} (Chronicle renames it into place
 * when it rolls: {@link PrecreatedFiles}) unless the file exists, and says which cycles are ready
 * ({@link #cycleReady}); at open it deletes what an earlier run pre-created and allocates what it left
 * ({@code metadata.cq4t}, the newest cycle file up to its end of data plus {@link CycleFileAllocator#AHEAD_BYTES}).
 * <p>
 * Threads: {@link #cycleReady} from any thread (a volatile read); {@link #openExisting} and {@link #close} on the
 * control thread; {@link #prepare} on one thread (the spool's syncer; the journal's writer). Allocates a little per
 * cycle.
 */
final class CycleFilesAhead
{
    private static final String PARTIAL_SUFFIX = ".partial";
    private static final int NO_CYCLE = Integer.MIN_VALUE;

    private final File dir;
    private final SingleChronicleQueue queue;
    private final Fallocate fallocate;
    private final WrittenFileBlocks written;
    private final DateTimeFormatter fileNames;
    private final long cycleMs;
    private final long epochMs;
    /** Cycles whose file Chronicle may create or continue: first in the high 32 bits, last in the low. */
    private volatile long readyCycles = readyRange(1, 0);

    // the thread that calls prepare (and the control thread at open)
    private final int latestAtOpen;
    private boolean latestAllocated;
    private int preparedFor = NO_CYCLE;
    private final IntArrayList precreatedCycles = new IntArrayList();

    CycleFilesAhead(
        final File dir, final SingleChronicleQueue queue, final Fallocate fallocate, final WrittenFileBlocks written)
    {
        this.dir = dir;
        this.queue = queue;
        this.fallocate = fallocate;
        this.written = written;
        this.fileNames = DateTimeFormatter.ofPattern(queue.rollCycle().format()).withZone(ZoneOffset.UTC);
        this.cycleMs = queue.rollCycle().lengthInMillis();
        this.epochMs = queue.epoch();
        this.latestAtOpen = queue.lastCycle();
    }

    /**
     * Deletes pre-created files a previous run left and allocates {@code metadata.cq4t} and the newest cycle file.
     * Control thread, before any appender writes.
     */
    void openExisting()
    {
        deleteLeftovers();
        final File metadata = new File(dir, SingleChronicleQueue.QUEUE_METADATA_FILE);
        if (metadata.isFile())
        {
            final int errno = fallocate.allocate(metadata, 0, metadata.length());
            if (errno != 0 && !fallocate.unsupported(errno, metadata))
            {
                fallocate.onFailure(errno, "allocate", metadata);
            }
        }
        if (fallocate.enabled())
        {
            latestAllocated = allocateLatest();
        }
    }

    /** See {@link CycleFileAllocator#cycleReady}. */
    boolean cycleReady()
    {
        if (!fallocate.enabled())
        {
            return true;
        }
        final long ready = readyCycles;
        final int cycle = queue.cycle();
        return cycle >= (int)(ready >>> 32) && cycle < (int)ready;
    }

    /** See {@link CycleFileAllocator#prepare}. */
    void prepare()
    {
        if (!fallocate.enabled())
        {
            return;
        }
        final int current = queue.cycle();
        if (current == preparedFor)
        {
            return;
        }
        if (!latestAllocated)
        {
            latestAllocated = allocateLatest();
            if (!latestAllocated)
            {
                return;
            }
        }
        written.releaseBefore(current);
        // before creating new ones: on a full file system the space of unused ones is what is left
        deletePrecreatedBefore(current - 1);
        int last = current - 1;
        while (last < current + CycleFileAllocator.CYCLES_AHEAD && fallocate.enabled() && fileReady(last + 1))
        {
            last++;
        }
        readyCycles = readyRange(current, last);
        if (last == current + CycleFileAllocator.CYCLES_AHEAD)
        {
            preparedFor = current;
        }
    }

    /** Deletes the pre-created files not used. Control thread, after the queue. */
    void close()
    {
        for (int i = 0; i < precreatedCycles.size(); i++)
        {
            precreatedFile(precreatedCycles.getInt(i)).delete();
        }
        precreatedCycles.clear();
    }

    /** {@code <dir>/<cycle as the roll cycle formats it>.cq4}, as Chronicle names it (UTC, the queue's epoch). */
    File cycleFile(final int cycle)
    {
        return new File(dir, fileNames.format(Instant.ofEpochMilli(cycle * cycleMs + epochMs)) + ".cq4");
    }

    File precreatedFile(final int cycle)
    {
        return PrecreatedFiles.preCreatedFile(cycleFile(cycle));
    }

    /** The newest cycle file of an earlier run: {@code [0, end of data + AHEAD_BYTES)}. @return true when done. */
    private boolean allocateLatest()
    {
        if (latestAtOpen < 0)
        {
            return true;
        }
        final File file = cycleFile(latestAtOpen);
        if (!file.isFile())
        {
            return true;
        }
        final int errno = fallocate.allocate(file, 0,
            Math.max(endOfData(latestAtOpen), CycleFileAllocator.PRECREATE_BYTES) + CycleFileAllocator.AHEAD_BYTES);
        if (errno == 0 || fallocate.unsupported(errno, file))
        {
            return true;
        }
        fallocate.onFailure(errno, "allocate", file);
        return false;
    }

    /** The file offset just past the last excerpt of {@code cycle}, 0 if it has none. */
    private long endOfData(final int cycle)
    {
        try (ExcerptTailer tailer = queue.createTailer())
        {
            tailer.direction(TailerDirection.BACKWARD).toEnd();
            try (DocumentContext dc = tailer.readingDocument())
            {
                if (dc.isPresent() && queue.rollCycle().toCycle(dc.index()) == cycle)
                {
                    return dc.wire().bytes().readLimit();
                }
            }
        }
        return 0;
    }

    private boolean fileReady(final int cycle)
    {
        final File file = cycleFile(cycle);
        if (file.exists())
        {
            // created in this run (from a pre-created file), or the newest of the last run (allocated at open)
            return cycle >= latestAtOpen;
        }
        final File precreated = PrecreatedFiles.preCreatedFile(file);
        return precreated.exists() || precreate(cycle, precreated);
    }

    /** Creates {@code precreated} empty with {@link CycleFileAllocator#PRECREATE_BYTES} allocated, atomically. */
    private boolean precreate(final int cycle, final File precreated)
    {
        final File partial = new File(dir, precreated.getName() + PARTIAL_SUFFIX);
        try
        {
            Files.deleteIfExists(partial.toPath());
            Files.createFile(partial.toPath());
            final int errno = fallocate.allocate(partial, 0, CycleFileAllocator.PRECREATE_BYTES);
            if (errno != 0)
            {
                Files.deleteIfExists(partial.toPath());
                if (!fallocate.unsupported(errno, partial))
                {
                    fallocate.onFailure(errno, "pre-create", precreated);
                }
                return false;
            }
            Files.move(partial.toPath(), precreated.toPath(), StandardCopyOption.ATOMIC_MOVE);
            precreatedCycles.addInt(cycle);
            return true;
        }
        catch (final IOException ex)
        {
            partial.delete();
            fallocate.onFailure(0, "pre-create", precreated + " (" + ex + ")");
            return false;
        }
    }

    private void deletePrecreatedBefore(final int cycle)
    {
        for (int i = precreatedCycles.size() - 1; i >= 0; i--)
        {
            final int precreated = precreatedCycles.getInt(i);
            if (precreated < cycle || cycleFile(precreated).exists())
            {
                precreatedFile(precreated).delete();
                precreatedCycles.fastUnorderedRemove(i);
            }
        }
    }

    /** Pre-created files of an earlier run: not known to be allocated (a crash may have cut one short). */
    private void deleteLeftovers()
    {
        final File[] leftovers = dir.listFiles((ignored, name) -> name.endsWith(".precreated")
            || name.endsWith(".precreated" + PARTIAL_SUFFIX));
        if (leftovers != null)
        {
            for (final File leftover : leftovers)
            {
                leftover.delete();
            }
        }
    }

    private static long readyRange(final int first, final int last)
    {
        return (long)first << 32 | last & 0xFFFF_FFFFL;
    }
}
