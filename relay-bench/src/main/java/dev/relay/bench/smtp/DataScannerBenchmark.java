package dev.relay.bench.smtp;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import dev.relay.smtp.DataScanner;

/**
 * Scans a DATA body of realistic text (headers, then 72-column lines, some dot-stuffed) in chunks of
 * {@code chunkBytes} from a direct buffer. Reported per byte (an op is one byte), in ops/ns: the score is bytes per ns, i.e. GB/s.
 * The baseline reads every byte once looking for LF. Expect 0 B/op under {@code -prof gc}.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
@State(Scope.Thread)
public class DataScannerBenchmark
{
    private static final int BODY_BYTES = 1 << 20;

    @Param({"4096", "65536"})
    public int chunkBytes;

    /** Body line length with its CRLF: 74, as text and base64 mail; 20, as smtp-source's generated bodies. */
    @Param({"74", "20"})
    public int lineBytes;

    private final DataScanner scanner = new DataScanner();
    private ByteBuffer buffer;

    @Setup
    public void setup()
    {
        final StringBuilder text = new StringBuilder();
        text.append("Received: from client.example.org (client.example.org [192.0.2.1])\r\n")
            .append("\tby relay.example.net with ESMTP id 4AbCdEf; Tue, 1 Jul 2025 10:00:00 +0000\r\n")
            .append("From: Sender <sender@example.org>\r\nTo: rcpt@example.net\r\nSubject: benchmark\r\n\r\n");
        final String line = "The quick brown fox jumps over the lazy dog while the relay scans it ok.".substring(0,
            lineBytes - 2) + "\r\n";
        int n = 0;
        while (text.length() < BODY_BYTES - 200)
        {
            text.append(++n % 50 == 0 ? ".." + line : line);
        }
        final byte[] bytes = text.toString().getBytes(StandardCharsets.US_ASCII);
        buffer = ByteBuffer.allocateDirect(BODY_BYTES);
        buffer.put(0, bytes, 0, Math.min(bytes.length, BODY_BYTES));
    }

    @Benchmark
    @OperationsPerInvocation(BODY_BYTES)
    public int scan()
    {
        scanner.reset();
        int from = 0;
        int stored = 0;
        while (from < BODY_BYTES)
        {
            final int to = Math.min(BODY_BYTES, from + chunkBytes);
            scanner.scan(buffer, from, to);
            stored += scanner.bodyEnd() - from;
            from = scanner.resumeAt() == from ? to : scanner.resumeAt();
        }
        return stored + scanner.receivedHeaders();
    }

    @Benchmark
    @OperationsPerInvocation(BODY_BYTES)
    public int baselineFindLineFeeds()
    {
        int lines = 0;
        for (int i = 0; i < BODY_BYTES; i++)
        {
            if (buffer.get(i) == '\n')
            {
                lines++;
            }
        }
        return lines;
    }
}
