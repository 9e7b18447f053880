package dev.relay.bench.e2e;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

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

import dev.relay.Relay;
import dev.relay.config.RelayConfig;

/**
 * One real SMTP transaction over loopback into an in-process relay (real spool in a temp directory, delivery routed
 * to an in-process {@link BenchSink}): an op is MAIL, RCPT and DATA pipelined on a kept connection, the 354, then a
 * body of {@code bodyBytes} and the end of data, until the final 250 arrives (accept latency, the spool's promise
 * included). SampleTime gives the percentiles. The baseline is a NOOP round trip on the same connection: what the
 * socket and selector hop cost without any SMTP transaction work.
 */
@BenchmarkMode(Mode.SampleTime)
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
    "-Dchronicle.analytics.disable=true",
    "-Dchronicle.announcer.disable=true"})
@State(Scope.Thread)
public class LoopbackTransactionBenchmark
{
    @Param({"batch", "none"})
    public String sync;

    @Param({"1024"})
    public int bodyBytes;

    private Path dir;
    private BenchSink sink;
    private Relay relay;
    private Socket socket;
    private InputStream in;
    private OutputStream out;
    private byte[] envelope;
    private byte[] body;
    private final byte[] noop = "NOOP\r\n".getBytes(StandardCharsets.US_ASCII);

    @Setup(Level.Trial)
    public void setUp() throws Exception
    {
        dir = Files.createTempDirectory("loopback-bench");
        sink = BenchSink.start("127.0.0.1", 0, false, 0, 0);
        final Map<String, String> config = new LinkedHashMap<>();
        config.put("smtp.listen", "127.0.0.1:0");
        config.put("smtp.hostname", "relay.bench");
        config.put("queue.dir", dir.resolve("spool").toString());
        config.put("queue.sync", sync);
        config.put("queue.min_free_bytes", "0");
        config.put("metrics.listen", "off");
        config.put("delivery.routes", "*=127.0.0.1:" + sink.port());
        relay = Relay.start(RelayConfig.fromMap(config));
        final InetSocketAddress address = relay.smtpAddresses().get(0);
        socket = new Socket();
        socket.setTcpNoDelay(true);
        socket.connect(new InetSocketAddress("127.0.0.1", address.getPort()), 5_000);
        socket.setSoTimeout(30_000);
        in = new BufferedInputStream(socket.getInputStream(), 8192);
        out = socket.getOutputStream();
        expect('2');                                          // greeting
        out.write("EHLO bench.client\r\n".getBytes(StandardCharsets.US_ASCII));
        expect('2');
        envelope = "MAIL FROM:<a@bench.test>\r\nRCPT TO:<b@bench.test>\r\nDATA\r\n"
            .getBytes(StandardCharsets.US_ASCII);
        final StringBuilder text = new StringBuilder("From: a@bench.test\r\nTo: b@bench.test\r\nSubject: loopback\r\n\r\n");
        final String line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
        while (text.length() < bodyBytes)
        {
            text.append(line);
        }
        text.append(".\r\n");
        body = text.toString().getBytes(StandardCharsets.US_ASCII);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception
    {
        try
        {
            out.write("QUIT\r\n".getBytes(StandardCharsets.US_ASCII));
            socket.close();
        }
        finally
        {
            relay.close();
            sink.close();
            try (Stream<Path> files = Files.walk(dir))
            {
                files.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
            }
        }
    }

    /** One message on the kept connection: pipelined envelope, 354, body, final 250. */
    @Benchmark
    public int transaction() throws IOException
    {
        out.write(envelope);
        int codes = expect('2') + expect('2') + expect('3');
        out.write(body);
        return codes + expect('2');
    }

    /** Baseline: one NOOP round trip. */
    @Benchmark
    public int baselineNoop() throws IOException
    {
        out.write(noop);
        return expect('2');
    }

    /** Reads one (possibly multi-line) reply and checks its first digit; returns the code. */
    private int expect(final char first) throws IOException
    {
        int code = 0;
        while (true)
        {
            final int c0 = in.read();
            final int c1 = in.read();
            final int c2 = in.read();
            final int sep = in.read();
            if (c0 < 0 || c1 < 0 || c2 < 0 || sep < 0)
            {
                throw new IOException("connection closed by the relay");
            }
            code = (c0 - '0') * 100 + (c1 - '0') * 10 + (c2 - '0');
            int c;
            while ((c = in.read()) != '\n')
            {
                if (c < 0)
                {
                    throw new IOException("connection closed by the relay");
                }
            }
            if (sep == ' ')
            {
                break;
            }
        }
        if (code / 100 != first - '0')
        {
            throw new IOException("expected " + first + "xx, got " + code);
        }
        return code;
    }
}
