package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.MessageSink;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Child JVM for {@link SpoolCrashTest}: appends messages forever in BATCH mode, {@value #PER_PASS} per loop pass,
 * from one or more loop threads (each with its own writer, so its own lane), and prints each queue id once its
 * commit callback said durable. The parent kills it with SIGKILL.
 */
public final class SpoolCrashChild
{
    static final int PER_PASS = 8;

    private SpoolCrashChild()
    {
    }

    static int bodyLength(final long id)
    {
        return 500 + (int)((id * 7919) % 120_000);
    }

    /**
     * {@code args}: the spool directory, then optionally the number of loops (writer threads, each appending to its
     * own lane; default 1). Loop {@code l} writes ids {@code n * loops + l}.
     */
    public static void main(final String[] args) throws Exception
    {
        final PrintStream out = new PrintStream(System.out, false);
        final int loops = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        final Spool spool = Spool.open(Path.of(args[0]), SyncMode.BATCH, "secondly", 0);
        final Thread[] threads = new Thread[loops];
        for (int l = 0; l < loops; l++)
        {
            final int loopIndex = l;
            threads[l] = new Thread(() -> appendForever(spool, out, loops, loopIndex), "loop-" + l);
        }
        // the writers are made in loop order on this thread, as the relay makes them: writer l writes lane l
        final SpoolWriter[] writers = new SpoolWriter[loops];
        for (int l = 0; l < loops; l++)
        {
            final Thread thread = threads[l];
            writers[l] = spool.newWriter(() -> LockSupport.unpark(thread));
        }
        WRITERS = writers;
        for (final Thread thread : threads)
        {
            thread.start();
        }
        for (final Thread thread : threads)
        {
            thread.join();
        }
    }

    private static volatile SpoolWriter[] WRITERS;

    private static void appendForever(final Spool spool, final PrintStream out, final int loops, final int loopIndex)
    {
        while (WRITERS == null)
        {
            Thread.onSpinWait();
        }
        final SpoolWriter writer = WRITERS[loopIndex];
        final int[] inFlight = new int[1];
        final MessageSink.CommitListener onCommitted = (message, durable) ->
        {
            if (durable)
            {
                synchronized (out)
                {
                    out.println("ACK " + message.queueId());
                }
            }
            inFlight[0]--;
        };
        long next = 1;
        while (true)
        {
            for (int i = 0; i < PER_PASS; i++)
            {
                final long id = next++ * loops + loopIndex;
                final InboundMessage message = SpoolTestSupport.message(id, "crash@x", "r@y");
                final byte[] body = SpoolTestSupport.body(id, bodyLength(id));
                writer.begin(message);
                SpoolTestSupport.appendAll(writer, message, body, 16 * 1024);
                writer.complete(message, onCommitted);
                inFlight[0]++;
            }
            writer.endOfPass();
            while (inFlight[0] > 0)
            {
                if (writer.drainCompletions() == 0)
                {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
                }
            }
            synchronized (out)
            {
                out.flush();
            }
        }
    }
}
