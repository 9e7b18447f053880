package dev.relay.spool;

import dev.relay.config.SyncMode;

import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import org.jctools.queues.MessagePassingQueue;
import org.jctools.queues.MpscArrayQueue;

import java.io.File;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The spool's one sync thread ({@value #ROLE_NAME}): takes {@link SyncRequest}s from the writers, makes the queue
 * files they wrote durable (in every lane: one pass over the requests of all loops syncs each file they name once,
 * whichever lane it is in — group commit across the per-loop queues), posts each request back to its writer's
 * completion queue and wakes that writer's loop. Also, every {@value #SPACE_REFRESH_MS} ms, refreshes the spool's
 * cached usable disk space and keeps the next cycle files of every lane pre-created and allocated
 * ({@link CycleFileAllocator#prepare}), so writers make neither syscall.
 * <p>
 * <b>How a sync is done.</b> Appenders are thread-confined, so {@code ExcerptAppender.sync()} (an {@code msync}
 * of the appender's mapping) could only run on the loop thread, where a blocking syscall must not run. Instead
 * the syncer keeps a read-only {@link FileChannel} per recently written cycle file and calls
 * {@code force(false)} ({@code fdatasync}). On Linux the page cache is per inode: the pages a loop dirtied
 * through its shared mapping are the file's page cache pages, and {@code fdatasync} writes back every dirty page
 * of the file however it was dirtied ({@code msync(MS_SYNC)} itself is implemented as {@code vfs_fsync_range}).
 * {@code fdatasync} also writes the metadata needed to read the data back (the file size, which grows as
 * Chronicle maps new blocks); only timestamps are skipped. It syncs the whole file, so it covers every START,
 * BODY and END record written before the call, by any loop.
 * <p>
 * <b>Measured</b> (ext4 on virtio, 1 KiB appends, 1000 syncs): {@code force(false)} ~130 us, {@code force(true)}
 * ~125-170 us, {@code ExcerptAppender.sync()} 2.5-22 us. The last is fast because it syncs nothing: it calls
 * {@code MappedBytesStore.syncUpTo}, which returns at once unless the queue was built with a Chronicle
 * {@code syncMode} other than NONE (the builder default); with one set it would {@code msync} on the loop
 * thread. So {@code force} is the one that is both correct and off the loop.
 * <p>
 * <b>Power loss.</b> A {@code kill -9} cannot tell a missing sync from a good one (the page cache survives a
 * process); a power cut can. For that: (1) a message's records may span cycle files, so a request lists every
 * file its writer touched since its previous request and all of them are synced; (2) a new cycle file's directory
 * entry lives in its lane's directory, so the first time a file is seen that directory and the lane's Chronicle
 * {@code metadata.cq4t} (cycle listing) are fsynced too, and the spool directory (which holds the lane's entry);
 * otherwise a synced file could vanish on reboot;
 * (3) the completion (and so the 250) is posted only after {@code force} returned; if it throws, the completion
 * says not durable and the session answers 451/452 instead of 250.
 * <p>
 * {@link SyncMode#BATCH}: everything drained in one go (the groups of several loops' passes) is synced with one
 * {@code force} per distinct file. {@link SyncMode#ALWAYS}: every request (one message) gets its own
 * {@code force}, never coalesced. {@link SyncMode#NONE}: no requests arrive; the thread only refreshes space.
 * <p>
 * Thread: {@link #offer} from writer loops; everything else on the syncer thread. No allocation per request
 * once the channels of the current cycle are open.
 */
final class SpoolSyncer implements Runnable
{
    static final String ROLE_NAME = "spool-syncer";
    static final long SPACE_REFRESH_MS = 100;
    private static final int DRAIN_LIMIT = 4096;
    private static final int MAX_OPEN_FILES = 8;

    private final Spool spool;
    private final SyncMode mode;
    private final Path dir;
    private final MpscArrayQueue<SyncRequest> requests = new MpscArrayQueue<>(16 * 1024);
    private final MessagePassingQueue.Consumer<SyncRequest> collect = this::collect;
    private final SyncRequest[] batch = new SyncRequest[DRAIN_LIMIT];
    private final SpoolWriter[] toWake = new SpoolWriter[DRAIN_LIMIT];
    private final File[] openFiles = new File[MAX_OPEN_FILES];
    private final FileChannel[] openChannels = new FileChannel[MAX_OPEN_FILES];
    private final long[] lastUsedRound = new long[MAX_OPEN_FILES];
    private final long[] syncedRound = new long[MAX_OPEN_FILES];
    private final boolean[] syncOk = new boolean[MAX_OPEN_FILES];
    private int batchCount;
    private long round;
    private long nextSpaceRefreshNs;
    private long syncCount;

    private volatile boolean running = true;
    private volatile boolean parked;
    private volatile Thread thread;

    SpoolSyncer(final Spool spool, final SyncMode mode, final Path dir)
    {
        this.spool = spool;
        this.mode = mode;
        this.dir = dir;
    }

    String roleName()
    {
        return ROLE_NAME;
    }

    /** Called by a writer's loop thread. @return false when the queue is full (the writer retries later). */
    boolean offer(final SyncRequest request)
    {
        if (!requests.offer(request))
        {
            return false;
        }
        if (parked)
        {
            LockSupport.unpark(thread);
        }
        return true;
    }

    /** fsyncs done so far (for tests and metrics); any thread, racy read. */
    long syncCount()
    {
        return syncCount;
    }

    @Override
    public void run()
    {
        thread = Thread.currentThread();
        try
        {
            while (running || !requests.isEmpty())
            {
                if (doWork() == 0)
                {
                    idle();
                }
            }
        }
        finally
        {
            closeChannels();
        }
    }

    void stop(final Thread syncerThread) throws InterruptedException
    {
        running = false;
        LockSupport.unpark(syncerThread);
        syncerThread.join(TimeUnit.SECONDS.toMillis(10));
    }

    int doWork()
    {
        final long nowNs = System.nanoTime();
        if (nowNs - nextSpaceRefreshNs >= 0)
        {
            nextSpaceRefreshNs = nowNs + TimeUnit.MILLISECONDS.toNanos(SPACE_REFRESH_MS);
            spool.refreshUsableSpace();
        }
        batchCount = 0;
        requests.drain(collect, DRAIN_LIMIT);
        final int count = batchCount;
        if (count == 0)
        {
            return 0;
        }
        if (mode == SyncMode.ALWAYS)
        {
            for (int i = 0; i < count; i++)
            {
                round++;
                final SyncRequest request = batch[i];
                request.durable = syncFiles(request);
            }
        }
        else
        {
            round++;
            for (int i = 0; i < count; i++)
            {
                final SyncRequest request = batch[i];
                request.durable = syncFiles(request);
            }
        }
        round++;
        int wakeCount = 0;
        for (int i = 0; i < count; i++)
        {
            final SyncRequest request = batch[i];
            batch[i] = null;
            final SpoolWriter writer = request.writer;
            writer.postCompletion(request);
            if (writer.wakeRound != round)
            {
                writer.wakeRound = round;
                toWake[wakeCount++] = writer;
            }
        }
        for (int i = 0; i < wakeCount; i++)
        {
            toWake[i].wakeLoop();
            toWake[i] = null;
        }
        return count;
    }

    private void collect(final SyncRequest request)
    {
        batch[batchCount++] = request;
    }

    private void idle()
    {
        parked = true;
        if (requests.isEmpty() && running)
        {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(SPACE_REFRESH_MS));
        }
        parked = false;
    }

    /** Syncs every file of the request that was not yet synced in this round. */
    private boolean syncFiles(final SyncRequest request)
    {
        boolean ok = true;
        for (int i = 0; i < request.fileCount; i++)
        {
            ok &= syncFile(request.files[i]);
        }
        return ok;
    }

    private boolean syncFile(final File file)
    {
        int slot = find(file);
        if (slot < 0)
        {
            slot = open(file);
            if (slot < 0)
            {
                return false;
            }
        }
        lastUsedRound[slot] = round;
        if (syncedRound[slot] == round)
        {
            return syncOk[slot];
        }
        syncedRound[slot] = round;
        try
        {
            openChannels[slot].force(false);
            syncCount++;
            syncOk[slot] = true;
        }
        catch (final IOException ex)
        {
            spool.onSyncError(file, ex);
            syncOk[slot] = false;
            closeSlot(slot);
            return false;
        }
        return true;
    }

    private int find(final File file)
    {
        for (int i = 0; i < MAX_OPEN_FILES; i++)
        {
            if (openFiles[i] == file)
            {
                return i;
            }
        }
        for (int i = 0; i < MAX_OPEN_FILES; i++)
        {
            if (openFiles[i] != null && openFiles[i].equals(file))
            {
                return i;
            }
        }
        return -1;
    }

    private int open(final File file)
    {
        int slot = -1;
        long oldest = Long.MAX_VALUE;
        for (int i = 0; i < MAX_OPEN_FILES; i++)
        {
            if (openFiles[i] == null)
            {
                slot = i;
                break;
            }
            if (lastUsedRound[i] < oldest)
            {
                oldest = lastUsedRound[i];
                slot = i;
            }
        }
        closeSlot(slot);
        try
        {
            openChannels[slot] = FileChannel.open(file.toPath(), StandardOpenOption.READ);
            openFiles[slot] = file;
            syncedRound[slot] = -1;
            // A file seen for the first time may be a new cycle: make its directory entry and the cycle listing
            // durable, or a power cut could lose the whole (synced) file.
            final Path laneDir = file.toPath().toAbsolutePath().getParent();
            forceDirectory(laneDir);
            forceIfExists(laneDir.resolve(SingleChronicleQueue.QUEUE_METADATA_FILE));
            if (!laneDir.equals(dir))
            {
                // a lane's directory entry is in the spool directory: durable once, with its first cycle file
                forceDirectory(dir);
            }
            return slot;
        }
        catch (final IOException ex)
        {
            spool.onSyncError(file, ex);
            closeSlot(slot);
            return -1;
        }
    }

    private static void forceDirectory(final Path directory) throws IOException
    {
        try (FileChannel channel = FileChannel.open(directory, StandardOpenOption.READ))
        {
            channel.force(true);
        }
    }

    private static void forceIfExists(final Path path) throws IOException
    {
        if (path.toFile().exists())
        {
            try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ))
            {
                channel.force(true);
            }
        }
    }

    private void closeSlot(final int slot)
    {
        final FileChannel channel = openChannels[slot];
        openChannels[slot] = null;
        openFiles[slot] = null;
        if (channel != null)
        {
            try
            {
                channel.close();
            }
            catch (final IOException ignore)
            {
                // read-only channel: nothing to lose
            }
        }
    }

    private void closeChannels()
    {
        for (int i = 0; i < MAX_OPEN_FILES; i++)
        {
            closeSlot(i);
        }
    }
}
