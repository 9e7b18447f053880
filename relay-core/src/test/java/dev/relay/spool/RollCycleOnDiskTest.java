package dev.relay.spool;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import net.openhft.chronicle.queue.RollCycles;
import net.openhft.chronicle.queue.rollcycles.LegacyRollCycles;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dev.relay.spool.SpoolTestSupport.appendAll;
import static dev.relay.spool.SpoolTestSupport.body;
import static dev.relay.spool.SpoolTestSupport.message;
import static dev.relay.spool.SpoolTestSupport.readAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A queue directory keeps the roll cycle its spool and journal were made with, whatever {@code queue.roll_cycle}
 * says at a later start (an operator's change, or a release whose default differs: hourly before, minutely now):
 * the mail in it is read, its cycle files are listed and named by that cycle (so clean-up and repair find them),
 * a new lane is made with it, and the journal's cycle numbers stay comparable with the spool's.
 */
@Timeout(60)
class RollCycleOnDiskTest
{
    @TempDir
    Path dir;

    private final ListAppender<ILoggingEvent> spoolLog = new ListAppender<>();
    private final Logger spoolLogger = (Logger)LoggerFactory.getLogger(Spool.class);

    @BeforeEach
    void captureSpoolLog()
    {
        spoolLog.start();
        spoolLogger.addAppender(spoolLog);
    }

    @AfterEach
    void releaseSpoolLog()
    {
        spoolLogger.detachAppender(spoolLog);
        spoolLog.stop();
    }

    @Test
    void aSpoolMadeHourlyKeepsItsCycleWhenStartedMinutely() throws Exception
    {
        final int hourBefore = RollCycles.FAST_HOURLY.current(System::currentTimeMillis, 0);
        final List<Long> written = new ArrayList<>();
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "hourly", 0);
             OutcomeJournal journal = OutcomeJournal.open(dir.resolve("journal"), "hourly"))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            for (long id = 1; id <= 5; id++)
            {
                write(writer, id, written);
                journal.recordResult(id, 0, OutcomeJournal.DEFERRED, 1, 0, "451 later");
            }
        }
        assertEquals(List.of(), warnings(), "no warning while the configuration matches");

        try (Spool spool = Spool.open(dir, SyncMode.NONE, "minutely", 0);
             OutcomeJournal journal = OutcomeJournal.open(dir.resolve("journal"), "minutely"))
        {
            final int hourAfter = RollCycles.FAST_HOURLY.current(System::currentTimeMillis, 0) + 1;
            assertHours(List.of(spool.currentCycle()), hourBefore, hourAfter, "the spool still rolls hourly");
            assertHours(spool.cycleFiles(0).keySet(), hourBefore, hourAfter,
                "its file is found under the hourly name, so clean-up and repair see it");
            assertHours(journal.cycleFiles().keySet(), hourBefore, hourAfter,
                "the journal too: its cycle numbers are compared with the spool's at clean-up");

            final List<SpooledMessage> read = readAll(spool.newReader(null));
            assertEquals(written, read.stream().map(SpooledMessage::queueId).toList(), "every message, once");
            final SpoolReader reader = spool.newReader(null);
            for (final SpooledMessage message : readAll(reader))
            {
                assertArrayEquals(body(message.queueId(), 3000), reader.readBodyToArray(message));
            }

            // a second loop's lane, made now, rolls with the spool (cycle numbers are shared by every lane)
            spool.newWriter(() -> { });
            final SpoolWriter second = spool.newWriter(() -> { });
            write(second, 6, written);
            assertHours(spool.cycleFiles(1).keySet(), hourBefore, hourAfter, "lane 1 is hourly as well");

            assertEquals(1, warnings().size(), "said once: " + warnings());
            assertTrue(warnings().get(0).contains("queue.roll_cycle=minutely") &&
                warnings().get(0).contains("made with hourly"), warnings().get(0));
        }
    }

    @Test
    void aNewQueueDirectoryTakesTheConfiguredCycle() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "minutely", 0);
             OutcomeJournal journal = OutcomeJournal.open(dir.resolve("journal"), "minutely"))
        {
            write(spool.newWriter(() -> { }), 1, new ArrayList<>());
            journal.recordResult(1, 0, OutcomeJournal.DEFERRED, 1, 0, "451 later");
            final int minute = LegacyRollCycles.MINUTELY.current(System::currentTimeMillis, 0);
            assertTrue(spool.currentCycle() >= minute, "minutes, not hours: " + spool.currentCycle());
            assertTrue(spool.cycleFiles(0).firstKey() >= minute);
            assertTrue(journal.cycleFiles().firstKey() >= minute);
        }
        assertEquals(List.of(), warnings());
    }

    @Test
    void aSpoolAndJournalMadeWithDifferentCyclesAreRefusedWithTheReason() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "hourly", 0))
        {
            write(spool.newWriter(() -> { }), 1, new ArrayList<>());
        }
        // a journal made elsewhere with another cycle, then moved in beside the spool
        final Path elsewhere = dir.resolveSibling(dir.getFileName() + "-other").resolve("journal");
        try (OutcomeJournal journal = OutcomeJournal.open(elsewhere, "minutely"))
        {
            journal.recordResult(1, 0, OutcomeJournal.DEFERRED, 1, 0, "451 later");
        }
        java.nio.file.Files.move(elsewhere, dir.resolve("journal"));

        final IllegalStateException refused = assertThrows(IllegalStateException.class,
            () -> OutcomeJournal.open(dir.resolve("journal"), "minutely").close());
        assertTrue(refused.getMessage().contains("roll cycle hourly and its journal minutely"),
            refused.getMessage());
    }

    /** Every cycle is an hour between {@code from} and {@code to} (a run may cross the hour), and there is one. */
    private static void assertHours(final java.util.Collection<Integer> cycles, final int from, final int to,
        final String what)
    {
        assertTrue(!cycles.isEmpty() && cycles.stream().allMatch(cycle -> cycle >= from && cycle <= to),
            what + ": " + cycles + " not within hours " + from + ".." + to);
    }

    private List<String> warnings()
    {
        synchronized (spoolLog)
        {
            return spoolLog.list.stream().filter(event -> event.getLevel() == Level.WARN)
                .map(ILoggingEvent::getFormattedMessage).toList();
        }
    }

    private static void write(final SpoolWriter writer, final long queueId, final List<Long> written)
    {
        final InboundMessage message = message(queueId, "alice@example.org", "bob@example.net");
        assertTrue(writer.begin(message));
        assertTrue(appendAll(writer, message, body(queueId, 3000), 1024));
        assertTrue(writer.complete(message, new SpoolTestSupport.Commits()));
        written.add(queueId);
    }
}
