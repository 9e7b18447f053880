package dev.relay.bench.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.MessageSink;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolWriter;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * One loop appending whole messages (begin, body in 16 KiB reads, complete) and, for ALWAYS and BATCH, waiting
 * for the commit callback as a loop would before writing the 250: ops/s = messages/s for one loop thread.
 * Each op is one message; an invocation is a pass of {@link #MESSAGES_PER_PASS}. A fresh spool directory per trial.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "-Dchronicle.analytics.disable=true"})
@State(Scope.Thread)
public class SpoolAppendBenchmark
{
    private static final int READ_BYTES = 16 * 1024;

    @Param({"NONE", "BATCH", "ALWAYS"})
    public SyncMode syncMode;

    @Param({"1024", "65536"})
    public int messageBytes;

    /** Messages per op: one loop pass's worth of completed messages. */
    static final int MESSAGES_PER_PASS = 16;

    private Path dir;
    private Spool spool;
    private SpoolWriter writer;
    private ByteBuffer body;
    private InboundMessage[] messages;
    private long nextId = 1;
    private int committed;
    private final MessageSink.CommitListener onCommitted = (message, durable) -> committed++;

    @Setup(Level.Trial)
    public void setUp() throws IOException
    {
        dir = Files.createTempDirectory("spool-bench");
        spool = Spool.open(dir, syncMode, "hourly", 0);
        writer = spool.newWriter(() -> { });
        body = ByteBuffer.allocateDirect(messageBytes);
        while (body.hasRemaining())
        {
            body.put((byte)('a' + body.position() % 26));
        }
        messages = new InboundMessage[MESSAGES_PER_PASS];
        for (int i = 0; i < MESSAGES_PER_PASS; i++)
        {
            final InboundMessage message = new InboundMessage();
            message.clientAddress("192.0.2.1".getBytes(StandardCharsets.US_ASCII));
            message.heloName("client.example".getBytes(StandardCharsets.US_ASCII));
            message.reversePath("sender@example.org".getBytes(StandardCharsets.US_ASCII));
            message.recipients().add("rcpt@example.net".getBytes(StandardCharsets.US_ASCII));
            message.receivedHeader(("Received: from client.example ([192.0.2.1])\r\n\tby relay.example with ESMTP " +
                "id 0123456789ABC; Mon, 1 Jan 2026 00:00:00 +0000\r\n").getBytes(StandardCharsets.US_ASCII));
            messages[i] = message;
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException
    {
        spool.close();
        try (Stream<Path> files = Files.walk(dir))
        {
            files.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        }
    }

    /** One pass: {@link #MESSAGES_PER_PASS} messages (BATCH: one sync; ALWAYS: one each), then their callbacks. */
    @Benchmark
    @OperationsPerInvocation(MESSAGES_PER_PASS)
    public int appendMessage()
    {
        final int count = MESSAGES_PER_PASS;
        committed = 0;
        for (int i = 0; i < count; i++)
        {
            final InboundMessage message = messages[i];
            message.queueId(nextId++);
            message.receivedAtMs(nextId);
            writer.begin(message);
            for (int from = 0; from < messageBytes; from += READ_BYTES)
            {
                writer.append(message, body, from, Math.min(messageBytes, from + READ_BYTES));
            }
            writer.complete(message, onCommitted);
        }
        writer.endOfPass();
        while (committed < count)
        {
            if (writer.drainCompletions() == 0)
            {
                Thread.onSpinWait();
            }
        }
        return committed;
    }
}
