package dev.relay;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.UnsynchronizedAppenderBase;
import ch.qos.logback.core.encoder.Encoder;
import org.jctools.queues.MpscArrayQueue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The relay's log appender (ops/logback.xml): a logging thread (a selector loop, the queue manager) only puts the
 * event on a queue; one writer thread ({@value #THREAD_NAME}) formats what has queued and writes it to standard
 * output in one {@code write} per batch.
 * <p>
 * Why not Logback's {@code AsyncAppender}: it wakes its worker for every line (a futex wake and a context switch on
 * the logging thread) and its console appender writes and flushes every line (a {@code write} each). At one message
 * per connection the relay logs four lines per message, so that was four wake-ups and four writes per message.
 * Here, under load, the writer sleeps {@code maxDelayMs} between batches and nobody signals it: a line reaches
 * stdout at most {@code maxDelayMs} after it was logged. Only a writer that went idle (its last pass found
 * nothing) is woken, by the first line after the quiet spell, and a WARN or ERROR line always wakes it at once,
 * so those leave within microseconds, however busy the relay.
 * <p>
 * Never blocks a logging thread: when the queue is full the line is dropped and counted, and the writer logs how
 * many were dropped once there is room again (as {@code AsyncAppender} with {@code neverBlock} drops, silently).
 * What a crash loses: a {@code kill -9} or power cut loses the lines of the last {@code maxDelayMs} at most (WARN
 * and ERROR lines are out already); a normal exit (SIGTERM, {@code System.exit}) loses none, since a shutdown hook
 * drains the queue.
 * <p>
 * Threads: {@link #append} from any thread (the queue is multi-producer); formatting and writing on the writer
 * thread only; after {@link #stop}, the few late lines are written at once by the logging thread. Writes to the
 * output hold a lock, so a late line never lands inside a batch.
 */
public final class AsyncConsoleAppender extends UnsynchronizedAppenderBase<ILoggingEvent>
{
    static final String THREAD_NAME = "log-writer";
    private static final int DRAIN_LIMIT = 1024;
    /** A batch larger than this is written at once, so one burst cannot grow the buffer without bound. */
    private static final int WRITE_THRESHOLD_BYTES = 64 * 1024;
    private static final long IDLE_PARK_NS = TimeUnit.SECONDS.toNanos(1);

    private Encoder<ILoggingEvent> encoder;
    private int queueSize = 8192;
    private long maxDelayMs = 10;
    private OutputStream output;

    private MpscArrayQueue<ILoggingEvent> queue;
    private final AtomicLong dropped = new AtomicLong();
    private long droppedReported;
    private byte[] batch = new byte[16 * 1024];
    private int batchLength;
    private volatile Thread writer;
    private volatile boolean running;
    /** The writer's last pass found nothing: it parks until a line wakes it (not just until maxDelayMs). */
    private volatile boolean idle;
    private Thread exitHook;
    private final Object lateLines = new Object();

    public void setEncoder(final Encoder<ILoggingEvent> encoder)
    {
        this.encoder = encoder;
    }

    /** Lines that may wait for the writer; beyond that, lines are dropped (and counted), never waited for. */
    public void setQueueSize(final int queueSize)
    {
        this.queueSize = queueSize;
    }

    /** How long an INFO line may wait for the next batch (WARN and ERROR never wait). */
    public void setMaxDelayMs(final long maxDelayMs)
    {
        this.maxDelayMs = maxDelayMs;
    }

    /** Where the lines go: standard output unless a test says otherwise. Before {@link #start}. */
    void output(final OutputStream output)
    {
        this.output = output;
    }

    /** Lines dropped because the queue was full. */
    long droppedCount()
    {
        return dropped.get();
    }

    @Override
    public void start()
    {
        if (encoder == null)
        {
            addError("no encoder for appender " + name);
            return;
        }
        if (queueSize < 2 || maxDelayMs < 1)
        {
            addError("queueSize must be at least 2 and maxDelayMs at least 1");
            return;
        }
        if (output == null)
        {
            output = System.out;
        }
        queue = new MpscArrayQueue<>(queueSize);
        running = true;
        final Thread thread = new Thread(this::writeLoop, THREAD_NAME);
        thread.setDaemon(true);
        writer = thread;
        exitHook = new Thread(this::stopWriter, THREAD_NAME + "-exit");
        try
        {
            Runtime.getRuntime().addShutdownHook(exitHook);
        }
        catch (final IllegalStateException ex)
        {
            exitHook = null;
        }
        super.start();
        thread.start();
    }

    @Override
    public void stop()
    {
        if (!isStarted())
        {
            return;
        }
        stopWriter();
        if (exitHook != null && Thread.currentThread() != exitHook)
        {
            try
            {
                Runtime.getRuntime().removeShutdownHook(exitHook);
            }
            catch (final IllegalStateException ex)
            {
                // the JVM is exiting: the hook runs (or ran) and finds the writer stopped
            }
        }
        super.stop();
    }

    @Override
    protected void append(final ILoggingEvent event)
    {
        // the message, thread name and MDC are taken now, on the logging thread, as AsyncAppender does
        event.prepareForDeferredProcessing();
        if (!running)
        {
            writeLate(event);
            return;
        }
        final boolean queued = queue.offer(event);
        if (!queued)
        {
            dropped.incrementAndGet();
        }
        // a dropped WARN still wakes the writer, so the drop is reported at once
        if (queued && idle || event.getLevel().isGreaterOrEqual(Level.WARN))
        {
            idle = false;
            LockSupport.unpark(writer);
        }
    }

    private void writeLoop()
    {
        final long batchDelayNs = TimeUnit.MILLISECONDS.toNanos(maxDelayMs);
        while (running)
        {
            if (writeQueued() > 0)
            {
                LockSupport.parkNanos(batchDelayNs);
                continue;
            }
            idle = true;
            // a line queued between the drain and idle=true did not wake us: look once more before parking
            if (queue.isEmpty() && running)
            {
                LockSupport.parkNanos(IDLE_PARK_NS);
            }
            idle = false;
        }
        writeQueued();
    }

    /** Formats and writes everything queued; returns how many lines. Writer thread (or the exit, once it ended). */
    private int writeQueued()
    {
        int lines = 0;
        int drained;
        while ((drained = queue.drain(this::encode, DRAIN_LIMIT)) > 0)
        {
            lines += drained;
            if (batchLength >= WRITE_THRESHOLD_BYTES)
            {
                writeBatch();
            }
        }
        final long droppedNow = dropped.get();
        if (droppedNow != droppedReported)
        {
            final String line = "log: " + (droppedNow - droppedReported) +
                " lines dropped, the log writer could not keep up\n";
            droppedReported = droppedNow;
            append(line.getBytes(StandardCharsets.US_ASCII));
        }
        writeBatch();
        return lines;
    }

    private void encode(final ILoggingEvent event)
    {
        try
        {
            append(encoder.encode(event));
        }
        catch (final RuntimeException ex)
        {
            addError("encoding a log event failed", ex);
        }
    }

    private void append(final byte[] bytes)
    {
        if (batchLength + bytes.length > batch.length)
        {
            batch = Arrays.copyOf(batch, Math.max(batch.length * 2, batchLength + bytes.length));
        }
        System.arraycopy(bytes, 0, batch, batchLength, bytes.length);
        batchLength += bytes.length;
    }

    private void writeBatch()
    {
        if (batchLength == 0)
        {
            return;
        }
        synchronized (lateLines)
        {
            try
            {
                output.write(batch, 0, batchLength);
                output.flush();
            }
            catch (final IOException ex)
            {
                addError("writing the log failed", ex);
            }
        }
        batchLength = 0;
    }

    /** Ends the writer after it wrote what is queued (shutdown hook and {@link #stop}). */
    private synchronized void stopWriter()
    {
        final Thread thread = writer;
        if (thread == null || !running)
        {
            return;
        }
        running = false;
        LockSupport.unpark(thread);
        try
        {
            thread.join(TimeUnit.SECONDS.toMillis(5));
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
        if (!thread.isAlive())
        {
            // a line queued while the writer made its last pass: the writer is gone, so this thread may drain
            writeQueued();
        }
    }

    /** A line logged after the writer ended (late in shutdown): written at once. */
    private void writeLate(final ILoggingEvent event)
    {
        final byte[] bytes = encoder.encode(event);
        synchronized (lateLines)
        {
            try
            {
                output.write(bytes);
                output.flush();
            }
            catch (final IOException ex)
            {
                addError("writing the log failed", ex);
            }
        }
    }

    @Override
    public String toString()
    {
        return "AsyncConsoleAppender " + name;
    }
}
