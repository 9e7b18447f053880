package dev.relay.bench.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** LoadGenerator into an in-process BenchSink on 127.0.0.1: every message arrives intact and is measured once. */
class LoadGeneratorTest
{
    private static final int MESSAGES = 500;

    @ParameterizedTest(name = "pipelining={0} bdat={1} rate={2} perConnection={3} sizes={4}")
    @CsvSource({
        "true,  false, 0,    0, 1024",
        "false, false, 0,    0, 1024",
        "true,  false, 2000, 0, 1024",
        "false, false, 2000, 0, 1024",
        "true,  true,  0,    0, 1024",
        "false, true,  2000, 7, 1024",
        "true,  false, 0,    1, 1024",
        "true,  false, 0,    0, '100:60,2048:30,65536:10'",
        "true,  true,  0,    0, realistic",
    })
    @Timeout(value = 20, unit = TimeUnit.SECONDS)
    void deliversEveryMessageIntact(final boolean pipelining, final boolean bdat, final double rate,
        final int perConnection, final String sizes) throws Exception
    {
        try (BenchSink sink = BenchSink.start(0))
        {
            final LoadGenerator.Options options = quiet(sink.port()).set(o ->
            {
                o.pipelining = pipelining;
                o.bdat = bdat;
                o.rate = rate;
                o.perConnection = perConnection;
                o.sizes = sizes;
                o.to = new String[] {"b@bench.test", "c@bench.test"};
            });

            final LoadGenerator.Result result = LoadGenerator.run(options);

            assertEquals(MESSAGES, result.messages, () -> "errors: " + result.errorReasons);
            final SizeMix mix = SizeMix.parse(sizes);
            long bodyBytes = 0;
            for (long seq = 0; seq < MESSAGES; seq++)
            {
                bodyBytes += mix.size(mix.sizeIndexOf(seq));
            }
            assertEquals(bodyBytes, result.bodyBytes, "body bytes of the accepted messages");
            assertEquals(0, result.errors(), () -> "errors: " + result.errorReasons);
            assertEquals(0, result.unfinished);
            assertEquals(MESSAGES, result.accept.getTotalCount());
            assertEquals(MESSAGES, result.txn.getTotalCount());
            awaitAtLeast(MESSAGES, sink::messages);
            assertEquals(MESSAGES, sink.messages());
            assertEquals(0, sink.mismatches());
            assertEquals(MESSAGES, sink.e2e().getTotalCount());
            if (rate > 0)
            {
                assertTrue(result.seconds >= (MESSAGES - 1) / rate * 0.95, "open loop keeps to its schedule: "
                    + result.seconds + " s");
            }
        }
    }

    @Test
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void sinkCountsACorruptBodyAsAMismatchAndUnstuffsDots() throws Exception
    {
        try (BenchSink sink = BenchSink.start(0); Socket socket = new Socket())
        {
            socket.connect(new InetSocketAddress("127.0.0.1", sink.port()), 2_000);
            socket.setSoTimeout(5_000);
            final byte[] body = ".leading dot\r\nplain line\r\n".getBytes(StandardCharsets.US_ASCII);
            final String sum = Integer.toHexString(BenchMessages.checksum(body, 0, body.length));
            final String good = "Subject: t\r\nX-Bench-Sum: " + sum + "/" + body.length + "\r\n\r\n"
                + "..leading dot\r\nplain line\r\n.\r\n";
            final String bad = good.replace("plain", "PLAIN");
            final OutputStream out = socket.getOutputStream();
            final InputStream in = socket.getInputStream();
            out.write(("EHLO t\r\nMAIL FROM:<a@t>\r\nRCPT TO:<b@t>\r\nDATA\r\n").getBytes(StandardCharsets.US_ASCII));
            readReplies(in, 8); // 6 EHLO lines, MAIL, RCPT... then 354
            out.write(good.getBytes(StandardCharsets.US_ASCII));
            out.write(("MAIL FROM:<a@t>\r\nRCPT TO:<b@t>\r\nDATA\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            readReplies(in, 5);
            out.write(bad.getBytes(StandardCharsets.US_ASCII));
            out.write("QUIT\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            readReplies(in, 2);

            assertEquals(2, sink.messages());
            assertEquals(1, sink.mismatches());
        }
    }

    @Test
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void stopsOnADeadServer() throws Exception
    {
        final int deadPort;
        try (ServerSocket s = new ServerSocket(0))
        {
            deadPort = s.getLocalPort();
        }
        final LoadGenerator.Options options = quiet(deadPort).set(o -> o.maxConnErrors = 8);

        final LoadGenerator.Result result = LoadGenerator.run(options);

        assertEquals(0, result.messages);
        assertTrue(result.connErrors >= 8, "connection errors: " + result.connErrors);
        assertEquals(MESSAGES, result.unfinished);
    }

    @ParameterizedTest(name = "pipelining={0} bdat={1}")
    @CsvSource({"true, false", "false, false", "true, true"})
    @Timeout(value = 10, unit = TimeUnit.SECONDS)
    void withDomainsEachMessageGoesToTheNextDomainInTurn(final boolean pipelining, final boolean bdat)
        throws Exception
    {
        final int messages = 20;
        final int domains = 7;
        final List<String> rcpts = new CopyOnWriteArrayList<>();
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress()))
        {
            final Thread peer = new Thread(() -> recordRecipients(server, rcpts), "recording-peer");
            peer.setDaemon(true);
            peer.start();
            final LoadGenerator.Options options = quiet(server.getLocalPort()).set(o ->
            {
                o.connections = 1;
                o.messages = messages;
                o.domains = domains;
                o.pipelining = pipelining;
                o.bdat = bdat;
            });

            final LoadGenerator.Result result = LoadGenerator.run(options);

            assertEquals(messages, result.messages, () -> "errors: " + result.errorReasons);
            final List<String> expected = new ArrayList<>();
            for (int seq = 0; seq < messages; seq++)
            {
                expected.add("b@" + LoadGenerator.domainName(seq % domains));
            }
            assertEquals(expected, rcpts);
            assertEquals("d6.bench.test", LoadGenerator.domainName(6));
        }
    }

    /** A minimal SMTP peer on one connection: 250 to everything, 354 to DATA; records each RCPT TO path. */
    private static void recordRecipients(final ServerSocket server, final List<String> rcpts)
    {
        try (Socket socket = server.accept())
        {
            final BufferedReader in = new BufferedReader(
                new InputStreamReader(socket.getInputStream(), StandardCharsets.US_ASCII));
            final OutputStream out = socket.getOutputStream();
            out.write("220 peer\r\n".getBytes(StandardCharsets.US_ASCII));
            boolean inData = false;
            long chunkLeft = 0;
            String line;
            while ((line = in.readLine()) != null)
            {
                if (chunkLeft > 0)
                {
                    chunkLeft -= line.length() + 2;
                    if (chunkLeft <= 0)
                    {
                        out.write("250 ok\r\n".getBytes(StandardCharsets.US_ASCII));
                    }
                    continue;
                }
                String reply = null;
                if (inData)
                {
                    if (line.equals("."))
                    {
                        inData = false;
                        reply = "250 ok";
                    }
                }
                else if (line.startsWith("EHLO"))
                {
                    reply = "250-peer\r\n250-PIPELINING\r\n250 CHUNKING";
                }
                else if (line.startsWith("RCPT TO:<"))
                {
                    rcpts.add(line.substring("RCPT TO:<".length(), line.indexOf('>')));
                    reply = "250 ok";
                }
                else if (line.equals("DATA"))
                {
                    inData = true;
                    reply = "354 go";
                }
                else if (line.startsWith("BDAT "))
                {
                    // BDAT n LAST: n octets follow, in CRLF lines here (headers and a text body)
                    chunkLeft = Long.parseLong(line.split(" ")[1]);
                }
                else if (line.equals("QUIT"))
                {
                    out.write("221 bye\r\n".getBytes(StandardCharsets.US_ASCII));
                    return;
                }
                else
                {
                    reply = "250 ok";
                }
                if (reply != null)
                {
                    out.write((reply + "\r\n").getBytes(StandardCharsets.US_ASCII));
                }
            }
        }
        catch (final Exception ex)
        {
            // the generator hung up
        }
    }

    private static LoadGenerator.Options quiet(final int port)
    {
        final LoadGenerator.Options o = new LoadGenerator.Options();
        o.port = port;
        o.connections = 4;
        o.messages = MESSAGES;
        o.maxSeconds = 15;
        o.timeoutMs = 5_000;
        o.progress = false;
        o.log = new PrintStream(new ByteArrayOutputStream());
        return o;
    }

    /** Reads until {@code lines} reply lines have arrived (whole lines only). */
    private static void readReplies(final InputStream in, final int lines) throws Exception
    {
        int seen = 0;
        while (seen < lines)
        {
            final int c = in.read();
            if (c < 0)
            {
                throw new AssertionError("connection closed after " + seen + " reply lines");
            }
            if (c == '\n')
            {
                seen++;
            }
        }
    }

    private static void awaitAtLeast(final long expected, final LongSupplier actual) throws InterruptedException
    {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (actual.getAsLong() < expected && System.nanoTime() - deadline < 0)
        {
            Thread.sleep(1);
        }
    }
}
