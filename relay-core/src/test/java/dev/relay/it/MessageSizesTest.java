package dev.relay.it;

import dev.relay.config.RelayConfig;
import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpooledMessage;
import dev.relay.testing.AiosmtpdProcess;
import dev.relay.testing.FileReceiver;
import dev.relay.testing.PostfixInstance;
import dev.relay.testing.SmtpSinkProcess;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.opentest4j.TestAbortedException;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.relay.it.SizeLadder.PART;
import static dev.relay.it.SizeLadder.SPOOL_CHUNK;
import static dev.relay.it.SizeLadder.WRITE_BUFFER;
import static dev.relay.it.SizeLadder.bdatCommand;
import static dev.relay.it.SizeLadder.sign;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every size arrives, byte-exact: the relay as ops/relay runs it (a child JVM, {@link ChildRelay}) takes messages
 * with DATA (dot-stuffed wire form) and with BDAT (raw, RFC 3030) and delivers each to real receivers, a domain
 * each: {@link TestSmtpSink} with CHUNKING (a BDAT-received body goes out as BDAT) and without (it goes out as
 * stuffed DATA), Postfix's smtp-sink, a private Postfix instance (CHUNKING) and Python's aiosmtpd (neither
 * PIPELINING nor CHUNKING). {@link SizeRun} says how a copy is compared; what each receiver adds of its own is
 * documented and removed on its launcher ({@link SmtpSinkProcess}, {@link PostfixInstance},
 * {@link AiosmtpdProcess}). A raw body that does not end in CRLF gets one when the relay stuffs it into DATA
 * (RFC 5321 §4.1.1.4), and the expected content for a receiver without CHUNKING says so; Postfix gets only bodies
 * that open with a header section or an empty line and end in CRLF (its cleanup would change the others).
 * <p>
 * The sizes ({@link SizeLadder}): 0 to 100 octets; the boundaries of every buffer on the path, with body ends and
 * lone-dot lines across each at every offset (the relay's 64 KiB outbound write buffer less its Received: header,
 * its inbound read buffer, the spool writer's 16 KiB stage, the 16 KiB parts a raw body is stuffed through); 1 MiB,
 * 20 MiB and {@code smtp.max_message_size} (of the stored form), one octet more refused with 552. The second test
 * runs a relay with a 1 MiB read buffer, where one read can exceed the spool's 256 KiB record
 * (SpoolRecords.MAX_CHUNK_BYTES).
 */
@Timeout(300)
class MessageSizesTest
{
    // five letters each, so every Received: header has one length (every message has two or more recipients, so
    // none has a "for" clause)
    private static final String CHUNK = "chunk.test";
    private static final String PLAIN = "plain.test";
    private static final String SINK = "sinks.test";
    private static final String POSTFIX = "postf.test";
    private static final String AIOSMTPD = "aiosm.test";
    private static final List<String> ALL = List.of(CHUNK, PLAIN, SINK, POSTFIX, AIOSMTPD);
    private static final long RECEIVER_LIMIT = 64L << 20;
    private static final Map<String, Inbox> inboxes = new LinkedHashMap<>();

    @TempDir
    static Path receiversDir;
    @TempDir
    Path relayDir;

    @BeforeAll
    static void startReceivers() throws Exception
    {
        inboxes.put(CHUNK, new Inbox.Sink("TestSmtpSink with CHUNKING", TestSmtpSink.start(), true));
        inboxes.put(PLAIN, new Inbox.Sink("TestSmtpSink without CHUNKING",
            TestSmtpSink.start().disableExtension("CHUNKING"), false));
        optional(SINK, () -> SmtpSinkProcess.start(receiversDir));
        optional(POSTFIX, () -> PostfixInstance.start(receiversDir, POSTFIX, RECEIVER_LIMIT));
        optional(AIOSMTPD, () -> AiosmtpdProcess.start(receiversDir, RECEIVER_LIMIT));
    }

    @AfterAll
    static void stopReceivers()
    {
        for (final Inbox inbox : inboxes.values())
        {
            inbox.close();
        }
        inboxes.clear();
    }

    private interface Launcher
    {
        FileReceiver start() throws Exception;
    }

    /** Outside CI a missing tool leaves that receiver out (said on stdout); under CI=true it fails the class. */
    private static void optional(final String domain, final Launcher launcher) throws Exception
    {
        try
        {
            inboxes.put(domain, new Inbox.Files(launcher.start()));
        }
        catch (final TestAbortedException missing)
        {
            System.out.println("MessageSizesTest: no receiver for " + domain + ": " + missing.getMessage());
        }
    }

    @Test
    void everySizeArrivesByteExact() throws Exception
    {
        final Map<String, String> config = relayConfig("smtp.buffer_size", "65536");
        final RelayConfig parsed = RelayConfig.fromMap(config);
        final int readBuffer = parsed.inbound().bufferSize();
        final long max = parsed.smtp().maxMessageSize();
        try (ChildRelay relay = startRelay(config))
        {
            final SizeRun run = new SizeRun(relay, metricsPort(config), inboxes);
            final int h = run.measureHeader();
            final SizeLadder ladder = new SizeLadder(h);
            for (final boolean bdat : new boolean[] {false, true})
            {
                for (final int size : new int[] {0, 2, 3, 4, 5, 64, 100})
                {
                    ladder.add(bdat, size, "tiny", ALL);
                }
                ladder.boundaries(bdat, readBuffer, ALL);
                ladder.add(bdat, 100_000, "100 kB", ALL);
                ladder.add(bdat, 300_000, "300 kB", ALL);
                for (int j = -1; j <= (bdat ? 2 : 3); j++)
                {
                    ladder.dotLines(bdat, j, readBuffer, 200_000, ALL);
                }
                ladder.add(bdat, 1 << 20, "1 MiB", ALL).dotFiller = true;
            }
            // BDAT out to a CHUNKING peer: the body ends at the write buffer's end, or one octet either side
            for (int d = -1; d <= 1; d++)
            {
                ladder.add(true, WRITE_BUFFER - h - bdatCommand(WRITE_BUFFER - h) + d, "BDAT out buffer " + sign(d),
                    ALL);
            }
            // a raw body without a final CRLF: 1 and 3 octets, and stuffed CRLF.CRLF across the write buffer's end
            for (final int size : new int[] {1, 3, WRITE_BUFFER - h, WRITE_BUFFER - h - 2, WRITE_BUFFER - h - 4})
            {
                ladder.add(true, size, "open last line", ALL).openEnd = true;
            }
            final LadderMessage chunked = ladder.add(true, 200_000, "3 BDAT chunks", ALL);
            chunked.chunkSplits = true;
            chunked.dotFiller = true;
            run.sendAndVerify(ladder.messages);

            // the big ones, each to three receivers, one at a time: checked and let go (the sinks keep them on the
            // heap) before the next
            run.sendAndVerify(List.of(SizeLadder.big(false, 20 << 20, "20 MiB", List.of(CHUNK, PLAIN, SINK))));
            run.sendAndVerify(List.of(SizeLadder.big(true, 20 << 20, "20 MiB", List.of(CHUNK, PLAIN, POSTFIX))));
            run.sendAndVerify(List.of(
                SizeLadder.big(false, (int)max, "smtp.max_message_size", List.of(CHUNK, PLAIN, POSTFIX))));
            run.sendAndVerify(List.of(
                SizeLadder.big(true, (int)max, "smtp.max_message_size", List.of(CHUNK, PLAIN, SINK))));
            run.refuseOverMax(max, List.of(CHUNK, PLAIN));
            run.printTable("everySizeArrivesByteExact");
            run.assertCounters();
        }
    }

    @Test
    void largeReadBufferAcrossSpoolRecords() throws Exception
    {
        final Map<String, String> config = relayConfig("smtp.buffer_size", "1048576", "smtp.io_threads", "1");
        final int readBuffer = RelayConfig.fromMap(config).inbound().bufferSize();
        try (ChildRelay relay = startRelay(config))
        {
            final SizeRun run = new SizeRun(relay, metricsPort(config), inboxes);
            final SizeLadder ladder = new SizeLadder(run.measureHeader());
            for (final boolean bdat : new boolean[] {false, true})
            {
                for (int d = -2; d <= 2; d++)
                {
                    ladder.add(bdat, SPOOL_CHUNK + d, "256K record " + sign(d), ALL);
                    ladder.add(bdat, 2 * SPOOL_CHUNK + d, "512K record " + sign(d), ALL);
                }
                ladder.readBuffer(bdat, readBuffer, "1M read buffer ", ALL);
                for (int j = -1; j <= (bdat ? 2 : 3); j++)
                {
                    ladder.dotLines(bdat, j, readBuffer, 600_000, ALL);
                }
                ladder.add(bdat, 3 << 20, "3 MiB", ALL).dotFiller = true;
            }
            run.sendAndVerify(ladder.messages);
            run.printTable("largeReadBufferAcrossSpoolRecords");
            run.assertCounters();

            // a read of more than 256 KiB is stored as records of 256 KiB and the rest; whether one happens depends
            // on how far the relay's reads lag behind the client: for a third to five sixths of these in every run
            // seen so far
            final Map<String, List<Integer>> records = spoolRecords(relayDir.resolve("spool"));
            final long split = records.values().stream().filter(lengths -> lengths.contains(SPOOL_CHUNK)).count();
            System.out.println("MessageSizesTest: messages with a spool record of " + SPOOL_CHUNK + " octets: " +
                split + " of " + records.size());
            assertTrue(split > 0, () -> "no read over 256 KiB was split into spool records: " + records);
        }
    }

    /** Sender to the lengths of its body records in the spool, in order. */
    private static Map<String, List<Integer>> spoolRecords(final Path spool) throws IOException
    {
        final Map<String, List<Integer>> records = new LinkedHashMap<>();
        try (SpoolReader reader = SpoolReader.open(spool))
        {
            final List<SpooledMessage> messages = new ArrayList<>();
            while (reader.poll(messages::add, 1024) > 0)
            {
                // to the end of what is there now
            }
            for (final SpooledMessage m : messages)
            {
                final List<Integer> lengths = new ArrayList<>();
                reader.readBody(m, (bytes, offset, length) -> lengths.add(length));
                records.put(new String(m.reversePath(), StandardCharsets.US_ASCII), lengths);
            }
        }
        return records;
    }

    /** The relay's test configuration, each receiver's domain routed to it, with {@code overrides}. */
    private Map<String, String> relayConfig(final String... overrides) throws IOException
    {
        final StringBuilder routes = new StringBuilder();
        for (final Map.Entry<String, Inbox> inbox : inboxes.entrySet())
        {
            routes.append(inbox.getKey()).append("=[127.0.0.1]:").append(inbox.getValue().port()).append(',');
        }
        // nothing else leaves (a bounce's DSN to client.test would wait here, and be counted)
        routes.append("*=[127.0.0.1]:1");
        final Map<String, String> config = InProcessRelay.config(relayDir.resolve("spool"),
            "delivery.routes", routes.toString(),
            "delivery.retry.schedule", "1h",
            "metrics.listen", "127.0.0.1:" + freePort());
        for (int i = 0; i + 1 < overrides.length; i += 2)
        {
            config.put(overrides[i], overrides[i + 1]);
        }
        return config;
    }

    /** The child relay; another metrics port when the one picked was taken meanwhile. */
    private ChildRelay startRelay(final Map<String, String> config) throws IOException
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return ChildRelay.start(relayDir, config);
            }
            catch (final AssertionError failed)
            {
                if (attempt == 3 || !String.valueOf(failed.getMessage()).contains("Address already in use"))
                {
                    throw failed;
                }
                config.put("metrics.listen", "127.0.0.1:" + freePort());
            }
        }
    }

    private static int metricsPort(final Map<String, String> config)
    {
        final String listen = config.get("metrics.listen");
        return Integer.parseInt(listen.substring(listen.lastIndexOf(':') + 1));
    }

    private static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress()))
        {
            return socket.getLocalPort();
        }
    }
}
