package dev.relay.it;

import com.sun.net.httpserver.HttpServer;
import dev.relay.Relay;
import dev.relay.config.RelayConfig;
import dev.relay.spool.SpoolCommand;
import dev.relay.spool.SpoolLock;
import dev.relay.testing.Await;
import dev.relay.testing.TestSmtpSink;
import dev.relay.transfer.TransferCommand;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code relay spool transfer --to HOST:PORT} between two relays: a source whose destination is down queues mail and
 * is stopped (a child JVM stopped with SIGTERM; in the other cases an in-process relay, closed); the transfer hands
 * the mail to a target relay (in-process) that delivers to a {@link TestSmtpSink}, or straight to a scripted sink.
 * Asserted: every message arrives exactly once, content byte for byte after the header fields the relays prepend,
 * envelope intact (sender, {@code <>}, recipients, RET/ENVID/NOTIFY/ORCPT), the trace header with the original queue
 * id; the source then lists nothing and delivers nothing when started again. A refused recipient stays queued (exit
 * 1) and goes on a later run; a target that goes away mid-way leaves nothing lost and at most the message in flight
 * twice; a running relay (spool lock, or {@code /health}) is refused; a recipient bounced before the transfer gets
 * its non-delivery report.
 */
@Timeout(180)
class SpoolTransferTest
{
    private static final Pattern TRACE = Pattern.compile("X-Relay-Transferred-From: source\\.test; queue-id=(\\w+); ");
    private static final Pattern LISTED = Pattern.compile("^(\\w+) +\\S+ +\\d+  <", Pattern.MULTILINE);

    @TempDir
    Path tmp;

    private final List<AutoCloseable> closeAtEnd = new ArrayList<>();

    /** One message as the test sent it: its source queue id and content (unstuffed, as a reader sees it). */
    private record Sent(String queueId, String marker, String from, List<String> recipients, byte[] content)
    {
    }

    /** One in-process transfer: exit code and both streams. */
    private record Run(int exit, String out, String err)
    {
        @Override
        public String toString()
        {
            return "exit " + exit + "\n--- out:\n" + out + "--- err:\n" + err;
        }
    }

    @AfterEach
    void cleanUp() throws Exception
    {
        for (int i = closeAtEnd.size() - 1; i >= 0; i--)
        {
            closeAtEnd.get(i).close();
        }
    }

    @Test
    void everyQueuedMessageMovesOnceAndTheSourceDeliversNothingAgain() throws Exception
    {
        final TestSmtpSink sink = keep(TestSmtpSink.start()).extensions(
            "PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "CHUNKING", "DSN", "ENHANCEDSTATUSCODES");
        final InProcessRelay target = keep(InProcessRelay.start(tmp.resolve("target"), "smtp.hostname", "target.test",
            "delivery.routes", "*=[127.0.0.1]:" + sink.port(), "delivery.retry.schedule", "1s"));
        final Map<String, String> sourceConfig = sourceConfig("*=[127.0.0.1]:1");
        final ChildRelay source = keep(ChildRelay.start(tmp, sourceConfig));

        final List<Sent> sent = new ArrayList<>();
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(source.port()))
        {
            sent.add(sendData(client, "dsn", "sender@src.test RET=HDRS ENVID=env+2B1",
                List.of("a@dest.test NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40dest.test", "b@dest.test"),
                content("dsn", 2_000, false)));
            sent.add(sendData(client, "null-sender", "", List.of("c@dest.test"), content("null-sender", 500, false)));
            sent.add(sendData(client, "eight-bit", "s@src.test BODY=8BITMIME", List.of("d@dest.test"),
                content("eight-bit", 3_000, true)));
            sent.add(sendBdat(client, "bdat", "s@src.test", List.of("e@dest.test", "f@dest.test"),
                content("bdat", 1 << 20, false)));
            sent.add(sendData(client, "big", "s@src.test", List.of("g@dest.test"), content("big", 3 << 20, false)));
            for (int i = 0; i < 20; i++)
            {
                sent.add(sendData(client, "small-" + i, "s@src.test", List.of("h" + i + "@dest.test"),
                    content("small-" + i, 300 + 37 * i, false)));
            }
        }

        // while it runs, the spool is the relay's: refused, nothing sent
        final Path sourceSpool = tmp.resolve("source");
        final Run whileRunning = transfer(sourceConfig, "--to", "127.0.0.1:" + target.port());
        assertEquals(1, whileRunning.exit(), whileRunning::toString);
        assertTrue(whileRunning.err().contains("in use by pid " + source.pid()), whileRunning::toString);
        assertEquals(0, sink.messageCount());

        source.sigterm();
        assertEquals(0, source.awaitExit(Duration.ofSeconds(60)), source::output);
        assertEquals(ids(sent), queuedIds(sourceSpool), "queued in the stopped source");

        final Run dryRun = transfer(sourceConfig, "--to", "127.0.0.1:" + target.port(), "--dry-run");
        assertEquals(0, dryRun.exit(), dryRun::toString);
        assertEquals(sent.size(), dryRun.out().lines().count(), dryRun::toString);
        assertEquals(0, sink.messageCount(), "a dry run sends nothing");

        // the real command line, as ops/relay runs it
        final ChildRelay transfer = keep(ChildRelay.launch(tmp, List.of("--config",
            ChildRelay.writeConfig(tmp, sourceConfig).toString(), "spool", "transfer", "--to",
            "127.0.0.1:" + target.port())));
        assertEquals(0, transfer.awaitExit(Duration.ofSeconds(120)), transfer::output);
        assertEquals(sent.size(), transfer.stdout().lines().filter(line -> line.contains(" -> 127.0.0.1:")).count(),
            transfer::output);
        assertTrue(transfer.stderr().contains("transfer: " + sent.size() + " messages (" + recipients(sent) +
            " recipients, "), transfer::output);

        final List<TestSmtpSink.Received> arrived = sink.awaitMessages(sent.size(), Duration.ofSeconds(60));
        assertEquals(List.of(), queuedIds(sourceSpool), "queued in the source after the transfer");

        // started again, the source delivers nothing it handed over: a probe sent after them arrives alone
        final TestSmtpSink afterRestart = keep(TestSmtpSink.start());
        final ChildRelay restarted = keep(ChildRelay.start(tmp, sourceConfig("*=[127.0.0.1]:" + afterRestart.port())));
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(restarted.port()))
        {
            client.sendMessage("s@src.test", List.of("probe@dest.test"), stuff(content("probe", 100, false)));
        }
        afterRestart.awaitMessages(1, Duration.ofSeconds(30));
        quietFor(Duration.ofSeconds(2));
        assertEquals(1, afterRestart.messageCount(), () -> "the restarted source delivered again: " +
            afterRestart.messages().stream().map(TestSmtpSink.Received::recipients).toList());
        assertEquals(sent.size(), sink.messageCount(), "duplicates at the target's destination");

        assertArrived(sent, arrived, true);
    }

    @Test
    void aRefusedRecipientStaysQueuedAndGoesOnALaterRun() throws Exception
    {
        final Path sourceSpool = tmp.resolve("source");
        final List<Sent> sent = new ArrayList<>();
        try (InProcessRelay source = InProcessRelay.start(sourceSpool, "smtp.hostname", "source.test");
             SmtpTestClient client = source.connectEhlo())
        {
            sent.add(sendData(client, "mixed", "s@src.test", List.of("ok1@dest.test", "refuse@dest.test"),
                content("mixed", 4_000, false)));
            sent.add(sendBdat(client, "raw", "s@src.test", List.of("ok2@dest.test"), content("raw", 70_000, false)));
            sent.add(sendData(client, "eight-bit", "s@src.test BODY=8BITMIME", List.of("ok3@dest.test"),
                content("eight-bit", 2_000, true)));
        }
        // the first target refuses one address, has no CHUNKING (the BDAT-received body goes dot-stuffed as DATA)
        // and no 8BITMIME (the 8-bit message waits for a target that takes it as it is)
        final TestSmtpSink refusing = keep(TestSmtpSink.start()).disableExtension("CHUNKING")
            .disableExtension("8BITMIME")
            .rcptReply(address -> address.startsWith("refuse@") ? "550 5.1.1 <" + address + ">: no such user" : null);
        final Run first = transfer(sourceConfig("*=[127.0.0.1]:1"), "--to", "127.0.0.1:" + refusing.port());
        assertEquals(1, first.exit(), first::toString);
        assertTrue(first.err().contains("<refuse@dest.test>: refused by 127.0.0.1:" + refusing.port() +
            " at RCPT: 550 5.1.1"), first::toString);
        assertTrue(first.err().contains(sent.get(2).queueId() + ": not sent: it has 8-bit content and 127.0.0.1:" +
            refusing.port() + " does not offer 8BITMIME; it stays queued"), first::toString);
        assertTrue(first.err().contains("2 messages (2 recipients) refused and left queued"), first::toString);
        final List<TestSmtpSink.Received> firstArrived = refusing.awaitMessages(2, Duration.ofSeconds(10));
        assertEquals(List.of("ok1@dest.test"), byMarker(firstArrived).get("mixed").recipients());
        assertTrue(!byMarker(firstArrived).get("raw").bdat(), "sent as DATA");
        assertArrived(List.of(sent.get(1)), List.of(byMarker(firstArrived).get("raw")), false);
        assertEquals(List.of(sent.get(0).queueId(), sent.get(2).queueId()), queuedIds(sourceSpool));

        final TestSmtpSink accepting = keep(TestSmtpSink.start());
        final Run second = transfer(sourceConfig("*=[127.0.0.1]:1"), "--to", "127.0.0.1:" + accepting.port());
        assertEquals(0, second.exit(), second::toString);
        final List<TestSmtpSink.Received> rest = accepting.awaitMessages(2, Duration.ofSeconds(10));
        assertEquals(List.of("refuse@dest.test"), byMarker(rest).get("mixed").recipients());
        assertArrived(List.of(sent.get(0), sent.get(2)), rest, false);
        assertEquals(2, accepting.messageCount());
        assertEquals(2, refusing.messageCount());
        assertEquals(List.of(), queuedIds(sourceSpool));
    }

    @Test
    void aTargetGoingAwayMidTransferLosesNothingAndRepeatsAtMostTheMessageInFlight() throws Exception
    {
        final Path sourceSpool = tmp.resolve("source");
        final List<Sent> sent = new ArrayList<>();
        try (InProcessRelay source = InProcessRelay.start(sourceSpool, "smtp.hostname", "source.test");
             SmtpTestClient client = source.connectEhlo())
        {
            for (int i = 0; i < 40; i++)
            {
                sent.add(sendData(client, "m" + i, "s@src.test", List.of("r" + i + "@dest.test"),
                    content("m" + i, 2_000, false)));
            }
        }
        final TestSmtpSink target = keep(TestSmtpSink.start()).replyDelay(Duration.ofMillis(15));
        final Run[] first = new Run[1];
        final Thread running = new Thread(() -> first[0] = transferQuietly(sourceConfig("*=[127.0.0.1]:1"), "--to",
            "127.0.0.1:" + target.port()), "transfer");
        running.start();
        try
        {
            Await.until(() -> target.messageCount() >= 5 || !running.isAlive(), Duration.ofSeconds(60),
                () -> "5 messages at the target");
            target.stop();
        }
        finally
        {
            running.join(60_000);
        }
        assertEquals(1, first[0].exit(), first[0]::toString);
        assertTrue(first[0].err().contains("transfer: stopped: "), first[0]::toString);

        final Map<String, Integer> arrivals = new TreeMap<>();
        for (final TestSmtpSink.Received received : target.takeMessages())
        {
            arrivals.merge(traceId(received), 1, Integer::sum);
        }
        final List<String> stillQueued = queuedIds(sourceSpool);
        final Set<String> both = new HashSet<>(stillQueued);
        both.retainAll(arrivals.keySet());
        assertTrue(both.size() <= 1, () -> "arrived and still queued (only the one in flight may be): " + both);
        final Set<String> accountedFor = new HashSet<>(stillQueued);
        accountedFor.addAll(arrivals.keySet());
        assertEquals(new HashSet<>(ids(sent)), accountedFor, "lost");
        assertTrue(!stillQueued.isEmpty() && arrivals.size() >= 5, () -> arrivals + " / " + stillQueued);

        target.replyDelay(Duration.ZERO);
        target.restart();
        final Run second = transfer(sourceConfig("*=[127.0.0.1]:1"), "--to", "127.0.0.1:" + target.port());
        assertEquals(0, second.exit(), second::toString);
        for (final TestSmtpSink.Received received : target.awaitMessages(stillQueued.size(), Duration.ofSeconds(30)))
        {
            arrivals.merge(traceId(received), 1, Integer::sum);
        }
        assertEquals(new HashSet<>(ids(sent)), arrivals.keySet(), "lost");
        final long duplicated = arrivals.values().stream().filter(n -> n > 1).count();
        assertTrue(duplicated <= 1 && arrivals.values().stream().allMatch(n -> n <= 2),
            () -> "duplicated beyond the message in flight: " + arrivals);
        assertEquals(List.of(), queuedIds(sourceSpool));
    }

    @Test
    void aRelayUsingTheSpoolIsRefusedAndCannotStartDuringATransfer() throws Exception
    {
        final Path sourceSpool = tmp.resolve("source");
        try (InProcessRelay source = InProcessRelay.start(sourceSpool, "smtp.hostname", "source.test");
             SmtpTestClient client = source.connectEhlo())
        {
            sendData(client, "one", "s@src.test", List.of("r@dest.test"), content("one", 1_000, false));
        }
        final TestSmtpSink target = keep(TestSmtpSink.start());

        // a relay whose lock this command cannot see (another host's mount) still answers /health
        final HttpServer health = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        health.createContext("/health", exchange ->
        {
            exchange.sendResponseHeaders(200, 3);
            exchange.getResponseBody().write("ok\n".getBytes(StandardCharsets.US_ASCII));
            exchange.close();
        });
        health.start();
        closeAtEnd.add(() -> health.stop(0));
        final Map<String, String> withMetrics = sourceConfig("*=[127.0.0.1]:1");
        withMetrics.put("metrics.listen", "127.0.0.1:" + health.getAddress().getPort());
        final Run refused = transfer(withMetrics, "--to", "127.0.0.1:" + target.port());
        assertEquals(1, refused.exit(), refused::toString);
        assertTrue(refused.err().contains("a relay is running: http://127.0.0.1:" + health.getAddress().getPort() +
            "/health answers HTTP 200"), refused::toString);
        assertEquals(0, target.messageCount());
        assertEquals(1, queuedIds(sourceSpool).size());

        // while the spool is locked (as the transfer holds it), the relay does not start
        try (SpoolLock lock = SpoolLock.tryAcquire(sourceSpool))
        {
            assertTrue(lock != null);
            final Relay.SpoolUnavailableException ex = assertThrows(Relay.SpoolUnavailableException.class,
                () -> InProcessRelay.start(sourceSpool, "smtp.hostname", "source.test"));
            assertTrue(ex.getMessage().contains("in use by pid " + ProcessHandle.current().pid()), ex::getMessage);
        }
        final Run usage = transfer(sourceConfig("*=[127.0.0.1]:1"), "--to", "nowhere");
        assertEquals(2, usage.exit(), usage::toString);
    }

    @Test
    void aRecipientBouncedBeforeTheTransferGetsItsNonDeliveryReport() throws Exception
    {
        final TestSmtpSink bouncing = keep(TestSmtpSink.start())
            .rcptReply(address -> address.startsWith("bad@") ? "550 5.1.1 <" + address + ">: no such user" : null);
        final Path sourceSpool = tmp.resolve("source");
        final Sent sent;
        try (InProcessRelay source = InProcessRelay.start(sourceSpool, "smtp.hostname", "source.test",
            "delivery.routes", "a.test=[127.0.0.1]:1,b.test=[127.0.0.1]:" + bouncing.port()))
        {
            try (SmtpTestClient client = source.connectEhlo())
            {
                sent = sendData(client, "half", "s@src.test ENVID=half-1", List.of("ok@a.test", "bad@b.test"),
                    content("half", 1_500, false));
            }
            Await.until(() -> spoolList(sourceSpool).contains("<s@src.test> ENVID=half-1  ok@a.test  "),
                Duration.ofSeconds(30), () -> "bad@b.test bounced: " + spoolList(sourceSpool));
        }
        final TestSmtpSink sink = keep(TestSmtpSink.start());
        final InProcessRelay target = keep(InProcessRelay.start(tmp.resolve("target"), "smtp.hostname", "target.test",
            "delivery.routes", "*=[127.0.0.1]:" + sink.port()));
        final Run run = transfer(sourceConfig("*=[127.0.0.1]:1"), "--to", "127.0.0.1:" + target.port());
        assertEquals(0, run.exit(), run::toString);
        assertTrue(run.err().contains("1 non-delivery report"), run::toString);

        final List<TestSmtpSink.Received> arrived = sink.awaitMessages(2, Duration.ofSeconds(30));
        final TestSmtpSink.Received message = arrived.stream().filter(m -> !m.mailFrom().isEmpty()).findFirst()
            .orElseThrow();
        assertEquals(List.of("ok@a.test"), message.recipients());
        assertArrived(List.of(sent), List.of(message), false);
        final TestSmtpSink.Received report = arrived.stream().filter(m -> m.mailFrom().isEmpty()).findFirst()
            .orElseThrow();
        assertEquals(List.of("s@src.test"), report.recipients());
        final String text = report.text();
        for (final String expected : List.of("Final-Recipient: rfc822; bad@b.test", "Action: failed",
            "Status: 5.1.1", "Original-Envelope-Id: half-1", "X-Relay-Queue-ID: " + sent.queueId(),
            "Reporting-MTA: dns; source.test", "Subject: half"))
        {
            assertTrue(text.contains(expected), () -> "no " + expected + " in\n" + text);
        }
        assertEquals(List.of(), queuedIds(sourceSpool));
    }

    // ------------------------------------------------------------------------------------------------------------

    private <T extends AutoCloseable> T keep(final T closeable)
    {
        closeAtEnd.add(closeable);
        return closeable;
    }

    private Map<String, String> sourceConfig(final String routes)
    {
        final Map<String, String> config = new LinkedHashMap<>(InProcessRelay.config(tmp.resolve("source"),
            "smtp.hostname", "source.test", "smtp.io_threads", "1", "delivery.routes", routes));
        return config;
    }

    private static Run transfer(final Map<String, String> config, final String... args) throws Exception
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        final ByteArrayOutputStream err = new ByteArrayOutputStream();
        final int exit;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8))
        {
            exit = TransferCommand.run(RelayConfig.fromMap(config), args, o, e);
        }
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static Run transferQuietly(final Map<String, String> config, final String... args)
    {
        try
        {
            return transfer(config, args);
        }
        catch (final Exception ex)
        {
            return new Run(-1, "", ex.toString());
        }
    }

    private static String spoolList(final Path spool)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (PrintStream print = new PrintStream(out, true, StandardCharsets.UTF_8))
        {
            SpoolCommand.run(spool, new String[] {"list"}, print);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** Queue ids {@code spool list} shows, in its order. */
    private static List<String> queuedIds(final Path spool)
    {
        final String list = spoolList(spool);
        final List<String> ids = new ArrayList<>();
        final Matcher m = LISTED.matcher(list);
        while (m.find())
        {
            ids.add(m.group(1));
        }
        return ids;
    }

    private static List<String> ids(final List<Sent> sent)
    {
        return sent.stream().map(Sent::queueId).toList();
    }

    private static int recipients(final List<Sent> sent)
    {
        return sent.stream().mapToInt(s -> s.recipients().size()).sum();
    }

    /** DATA with MAIL and RCPT parameters as given ({@code "addr PARAM=..."}); {@code content} is dot-stuffed here. */
    private static Sent sendData(
        final SmtpTestClient client, final String marker, final String from, final List<String> recipients,
        final byte[] content) throws IOException
    {
        client.command("MAIL FROM:<" + address(from) + ">" + parameters(from)).expect(250);
        for (final String rcpt : recipients)
        {
            client.command("RCPT TO:<" + address(rcpt) + ">" + parameters(rcpt)).expect(250);
        }
        client.command("DATA").expect(354);
        client.write(stuff(content));
        client.write(".\r\n");
        return new Sent(client.read().queueId(), marker, from, recipients, content);
    }

    private static Sent sendBdat(
        final SmtpTestClient client, final String marker, final String from, final List<String> recipients,
        final byte[] content) throws IOException
    {
        client.command("MAIL FROM:<" + address(from) + ">" + parameters(from)).expect(250);
        for (final String rcpt : recipients)
        {
            client.command("RCPT TO:<" + address(rcpt) + ">" + parameters(rcpt)).expect(250);
        }
        client.write("BDAT " + content.length + " LAST\r\n");
        client.write(content);
        return new Sent(client.read().queueId(), marker, from, recipients, content);
    }

    private static String address(final String withParameters)
    {
        final int space = withParameters.indexOf(' ');
        return space < 0 ? withParameters : withParameters.substring(0, space);
    }

    private static String parameters(final String withParameters)
    {
        final int space = withParameters.indexOf(' ');
        return space < 0 ? "" : withParameters.substring(space);
    }

    /**
     * A message of about {@code bytes}: Subject and Message-ID naming {@code marker}, then lines, some starting with
     * a dot (stuffed on the wire), some with 8-bit text when asked.
     */
    private static byte[] content(final String marker, final int bytes, final boolean eightBit)
    {
        final StringBuilder text = new StringBuilder("Subject: " + marker + "\r\nMessage-ID: <" + marker +
            "@src.test>\r\n\r\n.a line that starts with a dot: " + marker + "\r\n");
        for (int line = 0; text.length() < bytes; line++)
        {
            text.append(line % 7 == 3 ? "." : "").append("line ").append(line).append(' ')
                .append(eightBit && line % 5 == 0 ? "Grüße aus Köln " : "").append(marker).append(" ")
                .append("x".repeat(line % 61)).append("\r\n");
        }
        return text.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** RFC 5321 §4.5.2: a line starting with a dot gets another. */
    private static byte[] stuff(final byte[] content)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream(content.length + 1024);
        boolean lineStart = true;
        for (final byte b : content)
        {
            if (lineStart && b == '.')
            {
                out.write('.');
            }
            out.write(b);
            lineStart = b == '\n';
        }
        return out.toByteArray();
    }

    private static String traceId(final TestSmtpSink.Received received)
    {
        final Matcher m = TRACE.matcher(received.text());
        assertTrue(m.find(), () -> "no trace header in\n" + received.text().substring(0, 600));
        return m.group(1);
    }

    private static Map<String, TestSmtpSink.Received> byMarker(final List<TestSmtpSink.Received> arrived)
    {
        final Map<String, TestSmtpSink.Received> byMarker = new HashMap<>();
        for (final TestSmtpSink.Received received : arrived)
        {
            final Matcher m = Pattern.compile("\r\nSubject: (\\S+)\r\n").matcher(received.text());
            assertTrue(m.find(), received::text);
            byMarker.put(m.group(1), received);
        }
        return byMarker;
    }

    /**
     * Each sent message arrived once: its content byte for byte after the header fields the relays prepended
     * (which hold the trace header with its source queue id), the sender, the recipients (all, when
     * {@code allRecipients}) and, with a DSN-offering sink, the DSN parameters.
     */
    private static void assertArrived(
        final List<Sent> sent, final List<TestSmtpSink.Received> arrived, final boolean allRecipients)
    {
        final Map<String, TestSmtpSink.Received> byMarker = byMarker(arrived);
        assertEquals(sent.size(), arrived.size(), "arrivals");
        assertEquals(sent.size(), byMarker.size(), "distinct arrivals");
        for (final Sent message : sent)
        {
            final TestSmtpSink.Received received = byMarker.get(message.marker());
            assertTrue(received != null, () -> message.marker() + " did not arrive");
            final byte[] content = received.content();
            final int prefix = content.length - message.content().length;
            assertTrue(prefix > 0, () -> message.marker() + ": shorter than sent");
            assertArrayEquals(message.content(), Arrays.copyOfRange(content, prefix, content.length),
                () -> message.marker() + ": content changed");
            // [the target's Received:] X-Relay-Transferred-From: the source's Received:
            final String headers = new String(content, 0, prefix, StandardCharsets.UTF_8);
            final String trace = "X-Relay-Transferred-From: source.test; queue-id=" + message.queueId() + "; ";
            final int after = headers.indexOf("\r\n" + trace);
            final int at = headers.startsWith(trace) ? 0 : after < 0 ? -1 : after + 2;
            assertTrue(at >= 0 && (at == 0 || headers.startsWith("Received: ")) && headers.endsWith("\r\n") &&
                headers.indexOf("\r\nReceived: ", at) > at, () -> message.marker() + ": prepended\n" + headers);
            assertEquals(address(message.from()), received.mailFrom(), message.marker());
            if (allRecipients)
            {
                assertEquals(message.recipients().stream().map(SpoolTransferTest::address).toList(),
                    received.recipients(), message.marker());
            }
            if (message.from().contains("BODY=8BITMIME"))
            {
                assertTrue(received.eightBitMime(), message.marker());
            }
            if (message.marker().equals("dsn"))
            {
                assertEquals("HDRS", received.mailParams().get("RET"));
                assertEquals("env+2B1", received.mailParams().get("ENVID"));
                assertEquals("SUCCESS,FAILURE", received.rcptParams().get(0).get("NOTIFY"));
                assertEquals("rfc822;a+40dest.test", received.rcptParams().get(0).get("ORCPT"));
                assertEquals(null, received.rcptParams().get(1).get("NOTIFY"));
            }
        }
    }

    /** A quiet period: nothing more may arrive in it (a check, not a wait for something). */
    private static void quietFor(final Duration period) throws InterruptedException
    {
        Thread.sleep(period.toMillis());
    }
}
