package dev.relay.bench.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * LoadGenerator speaking STARTTLS into an in-process BenchSink that offers it (a self-signed RSA certificate made by
 * the {@code openssl} CLI, as {@code ops/bench --tls} makes it): every message arrives intact over TLS, and both
 * ends count the same handshakes, full and resumed.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TlsLoadTest
{
    @TempDir
    static Path dir;
    private static Path cert;
    private static Path key;

    @BeforeAll
    static void certificate() throws IOException, InterruptedException
    {
        cert = dir.resolve("cert.pem");
        key = dir.resolve("key.pem");
        final Process openssl = new ProcessBuilder(List.of("openssl", "req", "-x509", "-newkey", "rsa:2048",
            "-nodes", "-keyout", key.toString(), "-out", cert.toString(), "-days", "2", "-subj", "/CN=bench.test"))
            .redirectErrorStream(true).redirectOutput(dir.resolve("openssl.log").toFile()).start();
        try
        {
            assertTrue(openssl.waitFor(30, TimeUnit.SECONDS), "openssl req finishes");
            assertEquals(0, openssl.exitValue(), "openssl req (see openssl.log)");
        }
        finally
        {
            openssl.destroyForcibly();
        }
    }

    @ParameterizedTest(name = "bdat={0} sizes={1}")
    @CsvSource({
        "false, 1024",
        "true,  1024",
        "false, '100:60,2048:30,65536:9,1048576:1'",
        "true,  '100:60,2048:30,65536:9,1048576:1'",
    })
    void deliversEveryMessageIntactOverTls(final boolean bdat, final String sizes) throws Exception
    {
        try (BenchSink sink = tlsSink())
        {
            final LoadGenerator.Result result = LoadGenerator.run(quiet(sink.port(), 200).set(o ->
            {
                o.tls = true;
                o.bdat = bdat;
                o.sizes = sizes;
            }));

            assertEquals(200, result.messages, () -> "errors: " + result.errorReasons);
            assertEquals(0, result.errors(), () -> "errors: " + result.errorReasons);
            assertEquals(4, result.tlsHandshakes, "one handshake per kept connection");
            assertEquals(4, result.tlsFullHandshakes, "no session offered without --tls-resume");
            awaitAtLeast(200, sink::messages);
            assertEquals(200, sink.messages());
            assertEquals(0, sink.mismatches());
            assertEquals(4, sink.tlsHandshakes());
        }
    }

    @Test
    void everyHandshakeIsFullWithoutResumption() throws Exception
    {
        try (BenchSink sink = tlsSink())
        {
            final LoadGenerator.Result result = LoadGenerator.run(quiet(sink.port(), 60).set(o ->
            {
                o.tls = true;
                o.perConnection = 1;
            }));

            assertEquals(60, result.messages, () -> "errors: " + result.errorReasons);
            assertHandshakePerMessage(result);
            assertEquals(result.tlsHandshakes, result.tlsFullHandshakes);
            awaitAtLeast(60, sink::messages);
            awaitAtLeast(result.tlsHandshakes, sink::tlsHandshakes);
            assertEquals(result.tlsHandshakes, sink.tlsHandshakes());
            assertEquals(result.tlsHandshakes, sink.tlsFullHandshakes(), "the sink sent its certificate every time");
        }
    }

    @Test
    void resumesSessionsWhenAsked() throws Exception
    {
        try (BenchSink sink = tlsSink())
        {
            final LoadGenerator.Result result = LoadGenerator.run(quiet(sink.port(), 60).set(o ->
            {
                o.tlsResume = true;
                o.perConnection = 1;
            }));

            assertEquals(60, result.messages, () -> "errors: " + result.errorReasons);
            assertHandshakePerMessage(result);
            assertEquals(4, result.tlsFullHandshakes, () -> "each slot's first connection only: " + result.resultLine());
            awaitAtLeast(60, sink::messages);
            awaitAtLeast(result.tlsHandshakes, sink::tlsHandshakes);
            assertEquals(result.tlsHandshakes, sink.tlsHandshakes());
            assertEquals(result.tlsFullHandshakes, sink.tlsFullHandshakes(), "both ends see the same full handshakes");
            assertTrue(result.resultLine().contains(" tls_resumed=" + result.tlsResumedHandshakes()), result::resultLine);
        }
    }

    /**
     * One message per connection: a handshake each, and up to one more per connection slot (a slot that reconnects
     * while the last messages are still in flight finds none left after its handshake and quits).
     */
    private static void assertHandshakePerMessage(final LoadGenerator.Result result)
    {
        assertTrue(result.tlsHandshakes >= 60 && result.tlsHandshakes <= 60 + 4, result::resultLine);
    }

    private static BenchSink tlsSink() throws IOException
    {
        return BenchSink.start("127.0.0.1", 0, true, 0, 0, BenchTls.server(cert, key));
    }

    private static LoadGenerator.Options quiet(final int port, final long messages)
    {
        final LoadGenerator.Options o = new LoadGenerator.Options();
        o.port = port;
        o.connections = 4;
        o.messages = messages;
        o.maxSeconds = 40;
        o.timeoutMs = 10_000;
        o.progress = false;
        o.log = new PrintStream(new ByteArrayOutputStream());
        return o;
    }

    private static void awaitAtLeast(final long expected, final LongSupplier actual) throws InterruptedException
    {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (actual.getAsLong() < expected && System.nanoTime() - deadline < 0)
        {
            Thread.sleep(1);
        }
    }
}
