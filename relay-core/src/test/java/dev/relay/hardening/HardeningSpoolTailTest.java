package dev.relay.hardening;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.relay.Relay;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A spool whose newest cycle file lost or garbled its tail, as after a power cut with {@code queue.sync=none}: the
 * relay is stopped with mail queued (destination down), the newest {@code *.cq4} is damaged — its last bytes of
 * written data zeroed, cut off or overwritten with noise, the last record and a half wiped, or the file cut to half
 * its data — and the relay restarted on it with the destination up.
 * <p>
 * Asserted: it starts; the messages before the damage are delivered exactly once and intact (a prefix of what was
 * sent); the damaged message is not delivered as found (its record checksum fails) and the damage is reported in an
 * ERROR log line; and mail sent after the restart is taken and delivered — the repaired tail leaves no hole that
 * new records would vanish behind.
 * <p>
 * Chronicle preallocates cycle files (sparse), so the end of written data is found by reading: the last non-zero
 * byte.
 */
@Timeout(60)
class HardeningSpoolTailTest
{
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final int MESSAGES = 20;
    private static final int DAMAGE_BYTES = 64;
    private static final String SENDER = "alice@client.test";

    @TempDir
    Path spool;

    private TestSmtpSink dest;
    private Relay relay;
    private final ListAppender<ILoggingEvent> logs = new ListAppender<>();
    private final Logger root = (Logger)LoggerFactory.getLogger("dev.relay");

    @BeforeEach
    void setUp() throws Exception
    {
        dest = TestSmtpSink.start();
        logs.start();
        root.addAppender(logs);
    }

    @AfterEach
    void closeAll()
    {
        try
        {
            Await.closeQuietly(relay);
        }
        finally
        {
            Await.closeQuietly(dest);
            root.detachAppender(logs);
            logs.stop();
        }
    }

    private enum Damage
    {
        /** The last 64 bytes of data zeroed: the end of the last message's record. */
        ZEROED,
        /** The file cut 64 bytes short of its data. */
        TRUNCATED,
        /** 256 bytes of noise from 64 bytes before the end of data: into the last record and past it. */
        NOISE,
        /** The last 2 KiB of data zeroed: the last few records, headers and all. */
        WIPED_RECORDS,
        /** The file cut 2 KiB short of its data: the header's write position is past what is left. */
        CUT_RECORDS
    }

    @Test
    void zeroedTail() throws Exception
    {
        damagedTail(Damage.ZEROED);
    }

    @Test
    void truncatedTail() throws Exception
    {
        damagedTail(Damage.TRUNCATED);
    }

    @Test
    void noiseInTail() throws Exception
    {
        damagedTail(Damage.NOISE);
    }

    @Test
    void wipedRecords() throws Exception
    {
        damagedTail(Damage.WIPED_RECORDS);
    }

    @Test
    void cutRecords() throws Exception
    {
        damagedTail(Damage.CUT_RECORDS);
    }

    private Map<String, String> config()
    {
        return Hardening.config(spool, "queue.sync", "none", "delivery.retry.schedule", "1h",
            "delivery.routes", "example.test=127.0.0.1:" + dest.port());
    }

    private void damagedTail(final Damage damage) throws Exception
    {
        dest.stop();
        relay = Hardening.start(config());
        final List<String> ids = new ArrayList<>();
        for (int i = 0; i < MESSAGES; i++)
        {
            ids.add(send("tail-" + damage + "-" + i));
        }
        Await.until("every message deferred once", WAIT,
            () -> relay.metrics().messagesDeferred() >= MESSAGES, () -> "deferred " + relay.metrics().messagesDeferred());
        relay.close();
        relay = null;

        final Path newest = newestCycleWithData();
        final long end = dataEnd(newest);
        assertTrue(end > DAMAGE_BYTES, "no data in " + newest);
        damage(newest, end, damage);

        dest.restart();
        final long restartNs = System.nanoTime();
        relay = Hardening.start(config());
        relay.flush(); // the journal says: next attempt in 1h
        // the relay takes and delivers new mail: the repaired tail has no hole for new records to vanish behind
        send("tail-" + damage + "-after");
        Await.until("the message sent after the restart", WAIT,
            () -> seen(dest, "tail-" + damage + "-after@client.test"), () -> "got " + dest.messageCount());
        final long deliveredMs = (System.nanoTime() - restartNs) / 1_000_000;
        relay.flush();
        Hardening.window(Duration.ofMillis(500));
        final Map<String, Integer> seen = new HashMap<>();
        for (final TestSmtpSink.Received got : dest.messages())
        {
            final String text = got.text();
            final String id = Hardening.messageId(got.content());
            assertTrue(id != null && text.endsWith("body of " + id.replace("@client.test", "") + "\r\n"),
                () -> "only intact messages are delivered: " + text);
            seen.merge(id, 1, Integer::sum);
        }
        seen.remove("tail-" + damage + "-after@client.test");
        // what survived is what was written before the damage: a prefix of the sent messages, each exactly once
        final int survived = seen.size();
        for (int i = 0; i < survived; i++)
        {
            assertEquals(1, seen.getOrDefault("tail-" + damage + "-" + i + "@client.test", 0),
                "message " + i + " exactly once: " + seen);
        }
        switch (damage)
        {
            case ZEROED, TRUNCATED, NOISE -> assertEquals(MESSAGES - 1, survived, "all but the damaged last: " + seen);
            // a record is ~420 bytes here: 2 KiB takes four or five
            case WIPED_RECORDS, CUT_RECORDS ->
                assertTrue(survived >= MESSAGES - 6 && survived < MESSAGES - 1, "survived " + survived);
        }
        final List<String> errors = new ArrayList<>();
        synchronized (logs)
        {
            for (final ILoggingEvent event : logs.list)
            {
                if (event.getLevel().isGreaterOrEqual(Level.ERROR))
                {
                    errors.add(event.getLoggerName() + ": " + event.getFormattedMessage());
                }
            }
        }
        assertTrue(errors.stream().anyMatch(line -> line.contains("damaged")), () -> "the damage is reported: " + errors);
        System.out.printf("HARDENING spool tail %-13s %s: data end %d, delivered %d of %d and the new one %d ms after"
                + " restart; queued %d; errors %s%n", damage, newest.getFileName(), end, survived, MESSAGES,
            deliveredMs, relay.queuedMessages(), errors);
    }

    private static boolean seen(final TestSmtpSink sink, final String id)
    {
        return sink.messages().stream().anyMatch(got -> id.equals(Hardening.messageId(got.content())));
    }

    private String send(final String id) throws Exception
    {
        try (BlockingSmtpClient client = new BlockingSmtpClient(relay.smtpAddresses().get(0), Duration.ofSeconds(5)))
        {
            return client.send(SENDER, List.of("bob@example.test"),
                Hardening.message(SENDER, "bob@example.test", id));
        }
    }

    private Path newestCycleWithData() throws IOException
    {
        try (Stream<Path> list = Files.list(spool))
        {
            return list.filter(path -> path.getFileName().toString().endsWith(".cq4"))
                .max((a, b) -> a.getFileName().toString().compareTo(b.getFileName().toString()))
                .orElseThrow(() -> new AssertionError("no cycle file in " + spool));
        }
    }

    /** Offset just past the last non-zero byte. */
    static long dataEnd(final Path file) throws IOException
    {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ))
        {
            final ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
            long end = 0;
            long position = 0;
            while (true)
            {
                buffer.clear();
                final int n = channel.read(buffer, position);
                if (n <= 0)
                {
                    return end;
                }
                for (int i = n - 1; i >= 0; i--)
                {
                    if (buffer.get(i) != 0)
                    {
                        end = position + i + 1;
                        break;
                    }
                }
                position += n;
            }
        }
    }

    private static void damage(final Path file, final long end, final Damage damage) throws IOException
    {
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw"))
        {
            switch (damage)
            {
                case ZEROED -> zero(raf, end - DAMAGE_BYTES, DAMAGE_BYTES);
                case TRUNCATED -> raf.setLength(end - DAMAGE_BYTES);
                case NOISE ->
                {
                    final byte[] noise = new byte[DAMAGE_BYTES * 4];
                    new Random(42).nextBytes(noise);
                    raf.seek(end - DAMAGE_BYTES);
                    raf.write(noise);
                }
                case WIPED_RECORDS -> zero(raf, end - 2048, 2048);
                case CUT_RECORDS -> raf.setLength(end - 2048);
            }
        }
    }

    private static void zero(final RandomAccessFile raf, final long from, final int length) throws IOException
    {
        raf.seek(from);
        raf.write(new byte[length]);
    }
}
