package dev.relay.bench.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpoolWriter;
import dev.relay.spool.SpooledMessage;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
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
 * The delivery side's one copy of a body: a spooled message read back through {@link SpoolBodyCursor} into a
 * 64 KiB direct buffer, as the client session fills the connection's write buffer, against a plain
 * direct-to-direct {@code ByteBuffer.put} of the same bytes (the physical cost of one memcpy). One op is one whole
 * message; divide by its size for the cost per byte.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
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
public class SpoolBodyReadBenchmark
{
    private static final int WRITE_BUFFER_BYTES = 64 * 1024;

    @Param({"1048576"})
    public int messageBytes;

    private Path dir;
    private Spool spool;
    private SpoolBodyCursor cursor;
    private SpooledMessage message;
    private ByteBuffer source;
    private final ByteBuffer output = ByteBuffer.allocateDirect(WRITE_BUFFER_BYTES);

    @Setup(Level.Trial)
    public void setUp() throws IOException
    {
        dir = Files.createTempDirectory("spool-read-bench");
        spool = Spool.open(dir, SyncMode.NONE, "hourly", 0);
        final SpoolWriter writer = spool.newWriter(() -> { });
        source = ByteBuffer.allocateDirect(messageBytes);
        while (source.hasRemaining())
        {
            source.put((byte)('a' + source.position() % 26));
        }
        final InboundMessage inbound = new InboundMessage();
        inbound.queueId(1);
        inbound.receivedAtMs(System.currentTimeMillis());
        inbound.clientAddress("192.0.2.1".getBytes(StandardCharsets.US_ASCII));
        inbound.heloName("client.example".getBytes(StandardCharsets.US_ASCII));
        inbound.reversePath("sender@example.org".getBytes(StandardCharsets.US_ASCII));
        inbound.recipients().add("rcpt@example.net".getBytes(StandardCharsets.US_ASCII));
        inbound.receivedHeader("Received: by relay.example\r\n".getBytes(StandardCharsets.US_ASCII));
        writer.begin(inbound);
        for (int from = 0; from < messageBytes; from += 16 * 1024)
        {
            writer.append(inbound, source, from, Math.min(messageBytes, from + 16 * 1024));
            inbound.addBodyBytes(Math.min(messageBytes, from + 16 * 1024) - from);
        }
        writer.complete(inbound, (m, durable) -> { });
        try (SpoolReader reader = spool.newReader(null))
        {
            final SpooledMessage[] found = new SpooledMessage[1];
            while (found[0] == null)
            {
                reader.poll(m -> found[0] = m, 1);
            }
            message = found[0];
        }
        cursor = spool.newBodyCursor();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException
    {
        cursor.close();
        spool.close();
        try (Stream<Path> files = Files.walk(dir))
        {
            files.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        }
    }

    /** The whole body through the cursor, a write buffer at a time (emptied as a flush would). */
    @Benchmark
    public long cursorIntoDirectBuffer()
    {
        cursor.open(message);
        long total = 0;
        int read;
        while (true)
        {
            output.clear();
            read = cursor.read(output);
            if (read < 0)
            {
                return total;
            }
            total += read;
        }
    }

    /** Baseline: the same bytes direct to direct with ByteBuffer.put, a write buffer at a time. */
    @Benchmark
    public long memcpyBaseline()
    {
        long total = 0;
        for (int from = 0; from < messageBytes; from += WRITE_BUFFER_BYTES)
        {
            output.clear();
            final int length = Math.min(WRITE_BUFFER_BYTES, messageBytes - from);
            output.put(0, source, from, length);
            total += length;
        }
        return total;
    }
}
