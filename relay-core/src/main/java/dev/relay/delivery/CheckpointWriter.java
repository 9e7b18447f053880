package dev.relay.delivery;

import dev.relay.spool.QueueCheckpoint;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Writes the queue manager's checkpoints: syncs the files a checkpoint relies on, then the checkpoint itself
 * ({@link QueueCheckpoint#write}). Those syncs can take tens of milliseconds on a busy disk, so the relay does them
 * on a thread of its own ("queue-checkpoint") and the queue manager only asks whether the last one is durable
 * ({@link #durable()}); {@link #direct()} writes on the caller's thread (stepped tests, the last checkpoint at stop).
 * One checkpoint is written at a time.
 * <p>
 * Threads: {@link #submit} and {@link #durable} on the queue manager's thread; the writing on this one's.
 */
final class CheckpointWriter implements AutoCloseable
{
    private static final Logger LOG = LoggerFactory.getLogger(CheckpointWriter.class);

    private final BlockingQueue<Job> jobs;
    private final Thread thread;
    private volatile long finished;
    private volatile long written;
    private volatile boolean failing;
    private long submitted;

    private record Job(long seq, Path dir, byte[] bytes, List<Path> syncFirst)
    {
    }

    private CheckpointWriter(final boolean threaded)
    {
        if (threaded)
        {
            jobs = new ArrayBlockingQueue<>(1);
            thread = new Thread(this::run, "queue-checkpoint");
            thread.setDaemon(true);
            thread.start();
        }
        else
        {
            jobs = null;
            thread = null;
        }
    }

    /** Writes on a thread of its own. */
    static CheckpointWriter threaded()
    {
        return new CheckpointWriter(true);
    }

    /** Writes on the caller's thread, in {@link #submit}. */
    static CheckpointWriter direct()
    {
        return new CheckpointWriter(false);
    }

    /** Whether every checkpoint submitted was tried (written, or failed: then the next one tries again). */
    boolean idle()
    {
        return finished == submitted;
    }

    /** Whether the last checkpoint submitted is durable. */
    boolean durable()
    {
        return written == submitted;
    }

    /** Writes {@code bytes} as the checkpoint in {@code dir} after syncing {@code syncFirst}; when {@link #idle}. */
    void submit(final Path dir, final byte[] bytes, final List<Path> syncFirst)
    {
        final Job job = new Job(++submitted, dir, bytes, syncFirst);
        if (jobs == null || !jobs.offer(job))
        {
            write(job);
        }
    }

    /** Submits and waits until written (the last checkpoint, at stop). */
    void submitAndWait(final Path dir, final byte[] bytes, final List<Path> syncFirst)
    {
        while (!idle() && thread != null && thread.isAlive())
        {
            Thread.onSpinWait();
        }
        final Job job = new Job(++submitted, dir, bytes, syncFirst);
        write(job);
    }

    private void run()
    {
        while (true)
        {
            final Job job;
            try
            {
                job = jobs.poll(1, TimeUnit.SECONDS);
            }
            catch (final InterruptedException ex)
            {
                return;
            }
            if (job != null)
            {
                write(job);
            }
        }
    }

    private void write(final Job job)
    {
        try
        {
            QueueCheckpoint.write(job.dir(), job.bytes(), job.syncFirst());
            written = job.seq();
            if (failing)
            {
                failing = false;
                LOG.info("queue checkpoint written again");
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            if (!failing)
            {
                failing = true;
                LOG.warn("queue checkpoint: cannot write it ({}); a restart now reads more of the journal", ex.toString());
            }
        }
        finished = job.seq();
    }

    @Override
    public void close()
    {
        if (thread != null)
        {
            thread.interrupt();
            try
            {
                thread.join(5_000);
            }
            catch (final InterruptedException ex)
            {
                Thread.currentThread().interrupt();
            }
        }
    }
}
