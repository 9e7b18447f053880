package dev.relay.hardening;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.relay.Relay;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.CycleFiles;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The relay with {@code queue.roll_cycle=secondly}, stopped cleanly ({@link Relay#drainAndClose()}, what SIGTERM does)
 * after its spool and journal rolled several times, and started again, a few times over: no start repairs anything
 * (no ERROR or WARN from the repair, no {@code damaged-*} directory, every cycle file of the last run still there
 * with its inode and its bytes), and every message is delivered exactly once when its destination comes up —
 * also mail deferred in an old cycle, which delivery moves forward from cycle to cycle meanwhile.
 * <p>
 * Before the fix every restart after a roll took Chronicle's end-of-file mark for "unreadable bytes after the last
 * record", logged ERROR and copied every record into a new file.
 */
@Timeout(90)
class HardeningRollRestartTest
{
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final String SENDER = "alice@client.test";
    private static final int PER_CYCLE = 30;

    @TempDir
    Path spool;

    private TestSmtpSink down;
    private TestSmtpSink up;
    private Relay relay;
    private final ListAppender<ILoggingEvent> logs = new ListAppender<>();
    private final Logger root = (Logger)LoggerFactory.getLogger("dev.relay");
    private final Logger deliveryLog = (Logger)LoggerFactory.getLogger("dev.relay.smtp-out");
    private Level deliveryLogLevel;

    @BeforeEach
    void setUp() throws Exception
    {
        down = TestSmtpSink.start();
        up = TestSmtpSink.start();
        logs.start();
        root.addAppender(logs);
        deliveryLogLevel = deliveryLog.getLevel();
        // "moved forward to the current spool cycle", here only (not on the console)
        deliveryLog.setLevel(Level.INFO);
        deliveryLog.setAdditive(false);
        deliveryLog.addAppender(logs);
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
            deliveryLog.detachAppender(logs);
            deliveryLog.setAdditive(true);
            deliveryLog.setLevel(deliveryLogLevel);
            root.detachAppender(logs);
            logs.stop();
            Await.closeQuietly(down);
            Await.closeQuietly(up);
        }
    }

    private Map<String, String> config()
    {
        return Hardening.config(spool, "queue.roll_cycle", "secondly", "queue.sync", "batch",
            "delivery.retry.schedule", "1h",
            "delivery.routes", "down.test=127.0.0.1:" + down.port() + ",up.test=127.0.0.1:" + up.port());
    }

    @Test
    void restartsAfterManyRollsRepairNothingAndDeliverEachMessageOnce() throws Exception
    {
        down.stop();
        final List<String> sent = new ArrayList<>();
        TreeMap<String, CycleFiles.State> spoolFiles = new TreeMap<>();
        TreeMap<String, CycleFiles.State> journalFiles = new TreeMap<>();
        for (int run = 0; run < 3; run++)
        {
            startAndCheckNothingRepaired("run " + run, spoolFiles, journalFiles);
            final int before = sent.size();
            sendAcrossRolls("run" + run, "down.test", 2, sent);
            final int expected = sent.size() - before;
            Await.until("the run's messages deferred", WAIT, () -> relay.metrics().messagesDeferred() >= expected,
                () -> "deferred " + relay.metrics().messagesDeferred() + " of " + expected);
            relay.drainAndClose();
            relay = null;
            spoolFiles = CycleFiles.snapshot(spool);
            journalFiles = CycleFiles.snapshot(spool.resolve("journal"));
        }

        down.restart();
        startAndCheckNothingRepaired("delivery run", spoolFiles, journalFiles);
        relay.flush();
        Await.until("every message delivered", WAIT, () -> down.messageCount() >= sent.size(),
            () -> "delivered " + down.messageCount() + " of " + sent.size());
        Hardening.window(Duration.ofMillis(500));
        assertDeliveredOnce(down, sent);
        assertEquals(List.of(), problems(), "no ERROR or WARN at all");
        System.out.printf("HARDENING roll restarts: %d messages sent over 3 runs of at least 2 rolls each, 4 starts without a"
            + " repair, delivered once each%n", sent.size());
    }

    @Test
    void deferredMailInAnOldCycleSurvivesRestarts() throws Exception
    {
        down.stop();
        final List<String> deferred = new ArrayList<>();
        final List<String> delivered = new ArrayList<>();
        startAndCheckNothingRepaired("first start", new TreeMap<>(), new TreeMap<>());
        // the deferred mail at the start of a cycle, so that live mail fills the rest of it: a cycle is moved forward
        // only when under a quarter of it is still live, and each inbound loop writes a lane of its own
        final int cycle = relay.spool().currentCycle();
        Await.until("a new cycle", WAIT, () -> relay.spool().currentCycle() != cycle, () -> "");
        for (int i = 0; i < 5; i++)
        {
            deferred.add(send("deferred-" + i, "down.test"));
        }
        Await.until("the messages to down.test deferred", WAIT,
            () -> relay.metrics().messagesDeferred() >= deferred.size(), () -> "deferred "
                + relay.metrics().messagesDeferred());
        // traffic to the destination that is up, for a few cycles: the deferred mail ends up in old cycles and is
        // moved forward
        sendAcrossRolls("live0", "up.test", 3, delivered);
        Await.until("moved forward", WAIT, () -> movedForward() > 0, () -> "delivery log " + deliveryLines());
        for (int run = 1; run < 3; run++)
        {
            Await.until("the live messages delivered", WAIT, () -> up.messageCount() >= delivered.size(),
                () -> "delivered " + up.messageCount() + " of " + delivered.size());
            relay.drainAndClose();
            relay = null;
            startAndCheckNothingRepaired("restart " + run, CycleFiles.snapshot(spool),
                CycleFiles.snapshot(spool.resolve("journal")));
            sendAcrossRolls("live" + run, "up.test", 2, delivered);
        }
        Await.until("the live messages delivered", WAIT, () -> up.messageCount() >= delivered.size(),
            () -> "delivered " + up.messageCount() + " of " + delivered.size());
        assertEquals(0, down.messageCount());

        down.restart();
        relay.flush();
        Await.until("the deferred messages delivered", WAIT, () -> down.messageCount() >= deferred.size(),
            () -> "delivered " + down.messageCount() + " of " + deferred.size());
        Hardening.window(Duration.ofMillis(500));
        assertDeliveredOnce(down, deferred);
        assertDeliveredOnce(up, delivered);
        assertEquals(List.of(), problems(), "no ERROR or WARN at all");
        System.out.printf("HARDENING roll restarts: %d deferred messages moved forward %d times over 3 starts, then"
            + " delivered once each; %d live messages delivered once each%n", deferred.size(), movedForward(),
            delivered.size());
    }

    /**
     * Starts the relay and checks the start repaired nothing: no log line from the repair, no {@code damaged-*}
     * directory, and the cycle files of the last run (those delivery has not deleted as finished since) are the same
     * files with the same bytes — the newest one plus an end-of-file mark at most.
     */
    private void startAndCheckNothingRepaired(final String when, final TreeMap<String, CycleFiles.State> spoolFiles,
        final TreeMap<String, CycleFiles.State> journalFiles) throws Exception
    {
        relay = Hardening.start(config());
        final Path journal = spool.resolve("journal");
        assertEquals(List.of(), CycleFiles.rewritten(spoolFiles, CycleFiles.snapshot(spool)), when + ": spool files");
        assertEquals(List.of(), CycleFiles.rewritten(journalFiles, CycleFiles.snapshot(journal)),
            when + ": journal files");
        assertEquals(List.of(), damagedDirs(spool), when);
        assertEquals(List.of(), damagedDirs(journal), when);
        assertEquals(List.of(), problems(), when + ": no ERROR or WARN");
    }

    /**
     * Sends {@value #PER_CYCLE} messages to {@code domain} in each cycle until the spool has rolled {@code rolls}
     * times, and one more; adds their ids.
     */
    private void sendAcrossRolls(final String prefix, final String domain, final int rolls, final List<String> ids)
        throws Exception
    {
        final int first = relay.spool().currentCycle();
        int i = 0;
        for (int cycle = first; cycle < first + rolls; cycle = relay.spool().currentCycle())
        {
            for (int k = 0; k < PER_CYCLE && relay.spool().currentCycle() == cycle; k++)
            {
                ids.add(send(prefix + "-" + i++, domain));
            }
            final int current = cycle;
            Await.until("the next cycle", WAIT, () -> relay.spool().currentCycle() != current, () -> "");
        }
        ids.add(send(prefix + "-" + i, domain));
    }

    private String send(final String id, final String domain) throws Exception
    {
        try (BlockingSmtpClient client = new BlockingSmtpClient(relay.smtpAddresses().get(0), Duration.ofSeconds(5)))
        {
            final String rcpt = "bob@" + domain;
            client.send(SENDER, List.of(rcpt), Hardening.message(SENDER, rcpt, id));
            return id + "@client.test";
        }
    }

    /** The delivery log lines naming the queue ids the sink saw for {@code messageIds}, for a failure message. */
    private List<String> linesAbout(final List<String> messageIds)
    {
        final List<String> lines = new ArrayList<>();
        for (final TestSmtpSink sink : List.of(down, up))
        {
            for (final TestSmtpSink.Received got : sink.messages())
            {
                if (messageIds.contains(Hardening.messageId(got.content())))
                {
                    lines.add("received " + Hardening.messageId(got.content()) + ": " + new String(got.content(), 0,
                        Math.min(300, got.content().length), java.nio.charset.StandardCharsets.ISO_8859_1));
                }
            }
        }
        lines.addAll(deliveryLines());
        return lines;
    }

    private void assertDeliveredOnce(final TestSmtpSink sink, final List<String> ids)
    {
        final Map<String, Integer> seen = new HashMap<>();
        for (final TestSmtpSink.Received got : sink.messages())
        {
            seen.merge(Hardening.messageId(got.content()), 1, Integer::sum);
        }
        final List<String> lost = ids.stream().filter(id -> !seen.containsKey(id)).toList();
        final List<String> duplicated = seen.entrySet().stream().filter(entry -> entry.getValue() > 1)
            .map(Map.Entry::getKey).toList();
        assertEquals(List.of(), lost, "lost");
        assertEquals(List.of(), duplicated, () -> "duplicated; their delivery log: " + linesAbout(duplicated));
        assertEquals(ids.size(), seen.size(), "nothing else delivered: " + seen.keySet());
    }

    private List<String> problems()
    {
        final List<String> lines = new ArrayList<>();
        synchronized (logs)
        {
            for (final ILoggingEvent event : logs.list)
            {
                if (event.getLevel().isGreaterOrEqual(Level.WARN))
                {
                    lines.add(event.getLevel() + " " + event.getLoggerName() + ": " + event.getFormattedMessage());
                }
            }
        }
        return lines;
    }

    private List<String> deliveryLines()
    {
        final List<String> lines = new ArrayList<>();
        synchronized (logs)
        {
            for (final ILoggingEvent event : logs.list)
            {
                if (event.getLoggerName().equals(deliveryLog.getName()))
                {
                    lines.add(event.getFormattedMessage());
                }
            }
        }
        return lines;
    }

    private long movedForward()
    {
        return deliveryLines().stream().filter(line -> line.contains("moved forward")).count();
    }

    private static List<Path> damagedDirs(final Path dir) throws Exception
    {
        try (Stream<Path> files = Files.list(dir))
        {
            return files.filter(path -> path.getFileName().toString().startsWith("damaged-")).toList();
        }
    }
}
