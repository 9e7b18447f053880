package dev.relay.spool;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import dev.relay.testing.CycleFiles;
import net.openhft.chronicle.core.time.SetTimeProvider;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder;
import net.openhft.chronicle.wire.DocumentContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Stream;

import static dev.relay.spool.SpoolTestSupport.appendAll;
import static dev.relay.spool.SpoolTestSupport.body;
import static dev.relay.spool.SpoolTestSupport.message;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A spool and a journal stopped cleanly after their cycles rolled, or killed in the middle of a roll, open again
 * without a repair: a rolled cycle file ends in Chronicle's end-of-file mark ({@code 00 00 00 c0} and the field name
 * "EOF", {@code c3 45 4f 46}, which the header's length does not count), and that is the normal end of a file, not
 * "unreadable bytes after the last record". Real damage after the mark is still found and repaired. A cycle file
 * whose creation a kill interrupted (renamed from {@code .precreated}, header not yet complete) is removed at open
 * instead of costing Chronicle's 10 s timeout at every look.
 */
@Timeout(60)
class SpoolRollRestartTest
{
    private static final String SECONDLY = "secondly";

    @TempDir
    Path dir;

    private final ListAppender<ILoggingEvent> repairLog = new ListAppender<>();
    private final Logger repairLogger = (Logger)LoggerFactory.getLogger(QueueRepair.class);

    @BeforeEach
    void captureRepairLog()
    {
        repairLog.start();
        repairLogger.addAppender(repairLog);
    }

    @AfterEach
    void releaseRepairLog()
    {
        repairLogger.detachAppender(repairLog);
        repairLog.stop();
    }

    private List<String> repairLines()
    {
        synchronized (repairLog)
        {
            return repairLog.list.stream().map(event -> event.getLevel() + " " + event.getFormattedMessage()).toList();
        }
    }

    /**
     * With every roll cycle the relay offers (a settable clock stands in for waiting a minute, an hour, a day),
     * records in many cycles: QueueRepair finds nothing to repair and leaves every file as it was.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {SECONDLY, "minutely", "hourly", "daily"})
    void rolledCycleFilesOfEveryRollCycleAreIntact(final String rollCycle) throws IOException
    {
        final SetTimeProvider clock = new SetTimeProvider(System.currentTimeMillis() * 1_000_000L);
        final Function<Path, SingleChronicleQueue> open = path -> SingleChronicleQueueBuilder.binary(path)
            .rollCycle(Spool.rollCycle(rollCycle)).blockSize(Spool.BLOCK_SIZE).timeProvider(clock).build();
        final long cycleMs = Spool.rollCycle(rollCycle).lengthInMillis();
        final int cycles = 5;
        try (SingleChronicleQueue queue = open.apply(dir); ExcerptAppender appender = queue.createAppender())
        {
            for (int cycle = 0; cycle < cycles; cycle++)
            {
                for (int i = 0; i < 300; i++)
                {
                    try (DocumentContext dc = appender.writingDocument())
                    {
                        dc.wire().bytes().write(body(cycle * 1000L + i, 200 + i));
                    }
                }
                clock.advanceMillis(cycleMs);
            }
        }
        final List<Path> files = CycleFiles.list(dir);
        assertEquals(cycles, files.size(), "one file per cycle: " + files);
        for (final Path rolled : files.subList(0, cycles - 1))
        {
            assertEndsWithEndOfFileMark(rolled);
        }
        final TreeMap<String, CycleFiles.State> before = CycleFiles.snapshot(dir);

        assertNull(QueueRepair.repair(dir, open, (bytes, start, end) -> true), "nothing to repair");

        assertEquals(List.of(), repairLines());
        assertEquals(before, CycleFiles.snapshot(dir), "every file left as it was");
    }

    /**
     * Three runs of a spool and its journal, each writing across several secondly rolls (one message straddling a
     * roll) and closing: every open finds nothing to repair, rewrites nothing, and every message is read once.
     */
    @Test
    void cleanStopsAfterManyRollsOpenWithoutARepair() throws Exception
    {
        final Path spoolDir = dir.resolve("spool");
        final Path journalDir = dir.resolve("journal");
        final List<Long> written = new ArrayList<>();
        TreeMap<String, CycleFiles.State> spoolFiles = new TreeMap<>();
        TreeMap<String, CycleFiles.State> journalFiles = new TreeMap<>();
        for (int run = 0; run < 3; run++)
        {
            try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, SECONDLY, 0);
                 OutcomeJournal journal = OutcomeJournal.open(journalDir, SECONDLY))
            {
                assertEquals(List.of(), repairLines(), "run " + run + " opened without a repair");
                assertEquals(0, damagedDirs(spoolDir) + damagedDirs(journalDir));
                assertEquals(List.of(), CycleFiles.rewritten(spoolFiles, CycleFiles.snapshot(spoolDir)),
                    "spool files at open of run " + run);
                assertEquals(List.of(), CycleFiles.rewritten(journalFiles, CycleFiles.snapshot(journalDir)),
                    "journal files at open of run " + run);
                writeAcrossRolls(spool, journal, 3, 1000L * (run + 1), written);
            }
            spoolFiles = CycleFiles.snapshot(spoolDir);
            journalFiles = CycleFiles.snapshot(journalDir);
        }
        assertTrue(spoolFiles.size() >= 9, "at least three cycles a run: " + spoolFiles.keySet());
        assertTrue(journalFiles.size() >= 9, "the journal too: " + journalFiles.keySet());
        for (final String name : spoolFiles.headMap(spoolFiles.lastKey()).keySet())
        {
            assertEndsWithEndOfFileMark(spoolDir.resolve(name));
        }

        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, SECONDLY, 0);
             OutcomeJournal journal = OutcomeJournal.open(journalDir, SECONDLY))
        {
            assertEquals(List.of(), repairLines());
            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = new ArrayList<>();
            while (reader.poll(read::add, 1000) > 0)
            {
                // keep reading
            }
            assertEquals(written, read.stream().map(SpooledMessage::queueId).toList(), "each message once, in order");
            assertEquals(0, reader.damagedRecords());
            for (final SpooledMessage message : read)
            {
                assertArrayEquals(body(message.queueId(), bodyLength(message.queueId())),
                    reader.readBodyToArray(message));
            }
            final List<Long> delivered = new ArrayList<>();
            assertEquals(2L * written.size(), journal.replay(new OutcomeJournal.Visitor()
            {
                @Override
                public void onResult(final long queueId, final int recipient, final byte status, final int attempts,
                    final long nextAttemptMs, final String text)
                {
                    if (status == OutcomeJournal.DELIVERED)
                    {
                        delivered.add(queueId);
                    }
                }

                @Override
                public void onDone(final long queueId)
                {
                }
            }), "every outcome replayed once");
            assertEquals(written, delivered);
        }
        assertEquals(0, damagedDirs(spoolDir) + damagedDirs(journalDir));
    }

    /**
     * A kill between writing the end-of-file header and the "EOF" after it leaves part of the name, or none: a
     * normal end. The rolled files here keep 0, 1, 2 and 3 bytes of it.
     */
    @Test
    void endOfFileMarksCutShortByAKillAreNotDamage() throws Exception
    {
        final Path spoolDir = dir.resolve("spool");
        final List<Long> written = new ArrayList<>();
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, SECONDLY, 0))
        {
            writeAcrossRolls(spool, null, 4, 1000, written);
        }
        final List<Path> files = CycleFiles.list(spoolDir);
        for (int nameBytes = 0; nameBytes < 4; nameBytes++)
        {
            final Path rolled = files.get(nameBytes);
            writeAt(rolled, CycleFiles.dataEnd(rolled) - 4 + nameBytes, new byte[4 - nameBytes]);
        }

        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, SECONDLY, 0))
        {
            assertEquals(List.of(), repairLines());
            assertEquals(0, damagedDirs(spoolDir));
            assertEquals(written, readIds(spool));
        }
    }

    /** Noise after a rolled file's end-of-file mark is still damage: the file is repaired, no record is lost. */
    @Test
    void noiseAfterTheEndOfFileMarkIsRepaired() throws Exception
    {
        final Path spoolDir = dir.resolve("spool");
        final List<Long> written = new ArrayList<>();
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, SECONDLY, 0))
        {
            writeAcrossRolls(spool, null, 2, 1000, written);
        }
        final Path rolled = CycleFiles.list(spoolDir).get(0);
        final long end = CycleFiles.dataEnd(rolled);
        writeAt(rolled, end + 4096, new byte[] {0x5a, 0x5a});

        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, SECONDLY, 0))
        {
            assertTrue(repairLines().stream().anyMatch(line -> line.startsWith("ERROR")
                && line.contains("unreadable bytes at offset " + (end + 4096))), () -> "reported: " + repairLines());
            assertEquals(1, damagedDirs(spoolDir));
            assertEquals(written, readIds(spool));
        }
    }

    /**
     * What a kill in the middle of a roll can leave as the newest cycle file, after the rename of
     * {@code <cycle>.precreated} and before Chronicle completed its header: empty, mapped (zeros), or a header
     * still marked "not complete". The file is removed at open (WARN, no ERROR, nothing set aside), quickly, and
     * every message is read; new mail is taken.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"empty", "zeros", "header-not-complete"})
    void cycleFileLeftHalfCreatedByAKillIsRemoved(final String state) throws Exception
    {
        final Path spoolDir = dir.resolve("spool");
        final List<Long> written = new ArrayList<>();
        final Path halfCreated;
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, SECONDLY, 0))
        {
            writeAcrossRolls(spool, null, 1, 1000, written);
            final int cycle = spool.currentCycle();
            halfCreated = spool.allocator().cycleFile(cycle + 1).toPath();
            awaitCycleAfter(spool, cycle);
        }
        try (RandomAccessFile raf = new RandomAccessFile(halfCreated.toFile(), "rw"))
        {
            switch (state)
            {
                case "zeros" -> raf.setLength(20L << 20);
                case "header-not-complete" ->
                {
                    raf.setLength(20L << 20);
                    // NOT_COMPLETE_UNKNOWN_LENGTH, then the start of the header's fields
                    raf.write(new byte[] {0, 0, 0, (byte)0xC0, (byte)0xB9, 6, 'h', 'e', 'a', 'd', 'e', 'r'});
                }
                default ->
                {
                    // the pre-created file as renamed: empty
                }
            }
        }

        final long startNs = System.nanoTime();
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, SECONDLY, 0))
        {
            final long openMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs);
            assertTrue(openMs < 5_000, "opened in " + openMs + " ms (Chronicle's timeout on an unfinished file is 10 s)");
            final List<String> lines = repairLines();
            assertEquals(1, lines.size(), () -> "one line: " + lines);
            assertTrue(lines.get(0).startsWith("WARN") && lines.get(0).contains("creation unfinished"), lines::toString);
            assertEquals(0, damagedDirs(spoolDir));
            writeMessage(spool.newWriter(() -> { }), 9999, written);
            assertEquals(written, readIds(spool));
        }
        try (Stream<Path> files = Files.list(spoolDir))
        {
            assertEquals(List.of(), files.filter(path -> path.toString().endsWith(".discard")).toList());
        }
    }

    /** A cycle file whose first header is gone while it holds records is damage: set aside, the later files read. */
    @Test
    void cycleFileWithItsFirstHeaderLostIsSetAside() throws Exception
    {
        final Path spoolDir = dir.resolve("spool");
        final List<Long> written = new ArrayList<>();
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, SECONDLY, 0))
        {
            writeAcrossRolls(spool, null, 3, 1000, written);
        }
        final List<Path> files = CycleFiles.list(spoolDir);
        assertTrue(files.size() >= 3, files::toString);
        writeAt(files.get(0), 0, new byte[4]);

        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, SECONDLY, 0))
        {
            assertTrue(repairLines().stream().anyMatch(line -> line.startsWith("ERROR") && line.contains("first header")),
                () -> "reported: " + repairLines());
            assertEquals(1, damagedDirs(spoolDir));
            final List<Long> read = readIds(spool);
            assertTrue(!read.isEmpty() && written.subList(written.size() - read.size(), written.size()).equals(read),
                () -> "the messages of the later files: " + read + " of " + written);
        }
    }

    /**
     * Writes messages (and a DEFERRED and a DELIVERED outcome for each, when {@code journal} is given) until the
     * spool has rolled {@code rolls} times; one message starts before a roll and ends after it. Ids from
     * {@code firstId}.
     */
    private static void writeAcrossRolls(final Spool spool, final OutcomeJournal journal, final int rolls,
        final long firstId, final List<Long> written) throws InterruptedException
    {
        final SpoolWriter writer = spool.newWriter(() -> { });
        long id = firstId;
        for (int roll = 0; roll < rolls; roll++)
        {
            final int cycle = spool.currentCycle();
            for (int i = 0; i < 20; i++)
            {
                writeMessage(writer, id++, written);
                record(journal, id - 1);
            }
            // the last message of the cycle: started now, finished after the roll
            final long straddling = id++;
            final InboundMessage message = message(straddling, "alice@example.org", "bob@example.net");
            assertTrue(writer.begin(message));
            assertTrue(appendAll(writer, message, body(straddling, bodyLength(straddling)), 64 * 1024));
            awaitCycleAfter(spool, cycle);
            assertTrue(writer.complete(message, new SpoolTestSupport.Commits()));
            written.add(straddling);
            record(journal, straddling);
        }
        writeMessage(writer, id, written);
        record(journal, id);
    }

    private static void record(final OutcomeJournal journal, final long queueId)
    {
        if (journal != null)
        {
            journal.recordResult(queueId, 0, OutcomeJournal.DEFERRED, 1, 0, "451 later");
            journal.recordResult(queueId, 0, OutcomeJournal.DELIVERED, 2, 0, "250 ok");
        }
    }

    private static void writeMessage(final SpoolWriter writer, final long queueId, final List<Long> written)
    {
        final InboundMessage message = message(queueId, "alice@example.org", "bob@example.net");
        assertTrue(writer.begin(message));
        assertTrue(appendAll(writer, message, body(queueId, bodyLength(queueId)), 64 * 1024));
        assertTrue(writer.complete(message, new SpoolTestSupport.Commits()));
        written.add(queueId);
    }

    /** Small bodies, and every seventh one over a 256 KiB chunk (START_BODY, BODY and END records). */
    private static int bodyLength(final long queueId)
    {
        return queueId % 7 == 0 ? 300 * 1024 : 500 + (int)(queueId % 500);
    }

    private static void awaitCycleAfter(final Spool spool, final int cycle) throws InterruptedException
    {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (spool.currentCycle() == cycle)
        {
            assertTrue(System.nanoTime() < deadline, "the cycle did not change");
            Thread.sleep(5);
        }
    }

    private static List<Long> readIds(final Spool spool)
    {
        final SpoolReader reader = spool.newReader(null);
        final List<Long> ids = new ArrayList<>();
        while (reader.poll(message -> ids.add(message.queueId()), 1000) > 0)
        {
            // keep reading
        }
        return ids;
    }

    /** The file's last bytes of data are Chronicle's end-of-file mark. */
    private static void assertEndsWithEndOfFileMark(final Path file) throws IOException
    {
        final long end = CycleFiles.dataEnd(file);
        assertArrayEquals(CycleFiles.END_OF_FILE_MARK, CycleFiles.read(file, end - 8, 8),
            file.getFileName() + " ends (at " + end + ") in 00 00 00 c0 c3 45 4f 46");
    }

    private static void writeAt(final Path file, final long position, final byte[] bytes) throws IOException
    {
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw"))
        {
            raf.seek(position);
            raf.write(bytes);
        }
    }

    private static long damagedDirs(final Path queueDir) throws IOException
    {
        if (!Files.isDirectory(queueDir))
        {
            return 0;
        }
        try (Stream<Path> files = Files.list(queueDir))
        {
            return files.filter(path -> path.getFileName().toString().startsWith("damaged-")).count();
        }
    }
}
