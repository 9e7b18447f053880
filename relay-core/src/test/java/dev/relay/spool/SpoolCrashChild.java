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
 * and prints each queue id once its commit callback said durable. The parent kills it with SIGKILL.
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

    public static void main(final String[] args) throws Exception
    {
        final PrintStream out = new PrintStream(System.out, false);
        final Thread loop = Thread.currentThread();
        final Spool spool = Spool.open(Path.of(args[0]), SyncMode.BATCH, "secondly", 0);
        final SpoolWriter writer = spool.newWriter(() -> LockSupport.unpark(loop));
        final int[] inFlight = new int[1];
        final MessageSink.CommitListener onCommitted = (message, durable) ->
        {
            if (durable)
            {
                out.println("ACK " + message.queueId());
            }
            inFlight[0]--;
        };
        long nextId = 1;
        while (true)
        {
            for (int i = 0; i < PER_PASS; i++)
            {
                final long id = nextId++;
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
            out.flush();
        }
    }
}
