package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.QueueIds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

import static dev.relay.spool.SpoolTestSupport.appendAll;
import static dev.relay.spool.SpoolTestSupport.body;
import static dev.relay.spool.SpoolTestSupport.cycleFile;
import static dev.relay.spool.SpoolTestSupport.flipByteOf;
import static dev.relay.spool.SpoolTestSupport.message;
import static dev.relay.spool.SpoolTestSupport.onWriterThreads;
import static dev.relay.spool.SpoolTestSupport.readAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Per-loop spool queues ({@link SpoolLanes}): each writer appends to a lane of its own, every lane is read, and
 * everything that names a position (repair, clean-up, the reader's resume point, {@code spool list}) works across
 * them; a spool of the single-queue layout before lanes is lane 0 and is read in place.
 */
@Timeout(120)
class SpoolLanesTest
{
    private static final int PER_WRITER = 300;

    @TempDir
    Path dir;

    @Test
    void twoLoopsAppendToTheirOwnQueuesAndEveryMessageIsReadOnceAlsoAfterARestart() throws Exception
    {
        final ConcurrentHashMap<Long, byte[]> bodies = new ConcurrentHashMap<>();
        try (Spool spool = Spool.open(dir, SyncMode.BATCH, "daily", 0))
        {
            onWriterThreads(spool, 2, (loop, writer) ->
            {
                assertEquals(loop, writer.lane(), "the n-th writer writes lane n");
                final QueueIds ids = new QueueIds(loop);
                final SpoolTestSupport.Commits commits = new SpoolTestSupport.Commits();
                for (int i = 0; i < PER_WRITER; i++)
                {
                    final InboundMessage m = message(ids.next(System.currentTimeMillis()), "a@x", "r@y");
                    final byte[] body = body(m.queueId(), 500 + (i % 7) * 9_000);
                    bodies.put(m.queueId(), body);
                    assertTrue(writer.begin(m));
                    assertTrue(appendAll(writer, m, body, 4096));
                    assertTrue(writer.complete(m, commits));
                    if (i % 5 == 4)
                    {
                        writer.endOfPass();
                        writer.drainCompletions();
                    }
                }
                writer.endOfPass();
                SpoolTestSupport.await(() -> commits.ids.size() == PER_WRITER, 30_000, writer::drainCompletions);
            });
            assertEquals(2, spool.laneCount());
            assertTrue(spool.syncCount() > 0, "the one syncer synced both lanes");
            assertFalse(spool.cycleFiles(0).isEmpty());
            assertFalse(spool.cycleFiles(1).isEmpty(), "lane 1 is a queue of its own in lane-1/");
            assertTrue(Files.isDirectory(dir.resolve("lane-1")));

            final SpoolReader reader = spool.newReader(null);
            final Map<Long, Integer> seen = readAllCounting(reader, bodies);
            assertCounts(bodies, seen);
        }
        // a restart: a new process's reader finds both lanes on disk
        try (Spool spool = Spool.open(dir, SyncMode.BATCH, "daily", 0))
        {
            assertEquals(2, spool.laneCount());
            assertCounts(bodies, readAllCounting(spool.newReader(null), bodies));
        }
        try (SpoolReader readOnly = SpoolReader.open(dir))
        {
            assertCounts(bodies, readAllCounting(readOnly, bodies));
        }
    }

    @Test
    void aSpoolOfTheSingleQueueLayoutIsReadInPlaceAndNewMailGoesToLanes() throws Exception
    {
        // the layout before lanes: one queue in the spool directory itself (what one writer makes)
        final Map<Long, byte[]> bodies = new HashMap<>();
        try (Spool old = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = old.newWriter(() -> { });
            for (int i = 0; i < 20; i++)
            {
                write(writer, 1000 + i, bodies);
            }
        }
        try (Stream<Path> entries = Files.list(dir))
        {
            assertTrue(entries.noneMatch(path -> path.getFileName().toString().startsWith(SpoolLanes.DIR_PREFIX)));
        }
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            assertEquals(1, spool.laneCount(), "the old queue is lane 0");
            final SpoolWriter loop0 = spool.newWriter(() -> { });
            final SpoolWriter loop1 = spool.newWriter(() -> { });
            write(loop0, 2000, bodies);
            write(loop1, 2001, bodies);
            final SpoolReader reader = spool.newReader(null);
            final Map<Long, Integer> seen = readAllCounting(reader, bodies);
            assertCounts(bodies, seen);
        }
    }

    @Test
    void lanesNobodyWritesAnyMoreAreStillReadAndCleanedUp() throws Exception
    {
        final Map<Long, byte[]> bodies = new HashMap<>();
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "secondly", 0))
        {
            for (int lane = 0; lane < 3; lane++)
            {
                write(spool.newWriter(() -> { }), 100 + lane, bodies);
            }
        }
        // fewer loops now: one writer, three lanes read
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "secondly", 0))
        {
            assertEquals(3, spool.laneCount());
            final SpoolWriter loop0 = spool.newWriter(() -> { });
            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = readAll(reader);
            assertEquals(List.of(100L, 101L, 102L), read.stream().map(SpooledMessage::queueId).sorted().toList());
            final int now = spool.currentCycle();
            assertTrue(reader.resumeCycle() >= now - 1, "lanes read to their end keep no older cycle than the last");

            final int written = spool.currentCycle();
            SpoolTestSupport.await(() -> spool.currentCycle() >= written + 2, 10_000, () -> { });
            write(loop0, 200, bodies);
            final int deleted = spool.deleteCyclesBefore(spool.currentCycle());
            assertTrue(deleted >= 3, "the old cycles of every lane are cleaned up: " + deleted);
            assertTrue(spool.cycleFiles(1).isEmpty() && spool.cycleFiles(2).isEmpty());

            // more loops again: lane 1 written after its tailer's cycle file was deleted, and still read
            final SpoolWriter loop1 = spool.newWriter(() -> { });
            assertEquals(1, loop1.lane());
            write(loop1, 201, bodies);
            final List<Long> later = new ArrayList<>();
            final long deadline = System.nanoTime() + 10_000_000_000L;
            while (later.size() < 2 && System.nanoTime() < deadline)
            {
                reader.poll(m -> later.add(m.queueId()), 10);
                Thread.onSpinWait();
            }
            assertEquals(List.of(200L, 201L), later.stream().sorted().toList());
        }
    }

    @Test
    void aDamagedCycleInLaneOneIsRepairedAtOpen() throws Exception
    {
        final Map<Long, byte[]> bodies = new HashMap<>();
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter loop0 = spool.newWriter(() -> { });
            final SpoolWriter loop1 = spool.newWriter(() -> { });
            write(loop0, 10, bodies);
            write(loop1, 11, bodies);
            write(loop1, 12, bodies);
            write(loop1, 13, bodies);
        }
        final Path lane1 = dir.resolve("lane-1");
        flipByteOf(cycleFile(lane1), bodies.get(12L), 300);

        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            assertNotEquals(Integer.MAX_VALUE, spool.repairedFromCycle(), "a start knows lane 1 was repaired");
            try (Stream<Path> entries = Files.list(lane1))
            {
                assertEquals(1, entries.filter(path -> path.getFileName().toString().startsWith("damaged-")).count(),
                    "the damaged file is kept aside in its lane");
            }
            final SpoolWriter loop0 = spool.newWriter(() -> { });
            final SpoolWriter loop1 = spool.newWriter(() -> { });
            write(loop1, 14, bodies);
            write(loop0, 15, bodies);
            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = readAll(reader);
            assertEquals(List.of(10L, 11L, 13L, 14L, 15L), read.stream().map(SpooledMessage::queueId).sorted().toList(),
                "lane 1's intact records carried over, its new mail read, lane 0 untouched");
            for (final SpooledMessage message : read)
            {
                assertArrayEquals(bodies.get(message.queueId()), reader.readBodyToArray(message));
            }
        }
    }

    @Test
    void listAndShowCoverEveryLane() throws Exception
    {
        final long id0 = new QueueIds(0).next(System.currentTimeMillis());
        final long id1 = new QueueIds(1).next(System.currentTimeMillis());
        final Map<Long, byte[]> bodies = new HashMap<>();
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            write(spool.newWriter(() -> { }), id0, bodies);
            write(spool.newWriter(() -> { }), id1, bodies);
        }
        final String list = run("list");
        assertTrue(list.contains(QueueIds.format(id0)) && list.contains(QueueIds.format(id1)), list);
        assertEquals(2, list.lines().filter(line -> line.contains("r@y")).count(), list);
        final String show = run("show", QueueIds.format(id1));
        assertTrue(show.contains(QueueIds.format(id1)), show);
    }

    private String run(final String... args)
    {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        assertEquals(0, SpoolCommand.run(dir, args, out));
        return bytes.toString(StandardCharsets.UTF_8);
    }

    private static void write(final SpoolWriter writer, final long queueId, final Map<Long, byte[]> bodies)
    {
        final InboundMessage message = message(queueId, "a@x", "r@y");
        final byte[] body = body(queueId, 2_000 + (int)(queueId % 5) * 1_000);
        bodies.put(queueId, body);
        assertTrue(writer.begin(message));
        assertTrue(appendAll(writer, message, body, 1024));
        assertTrue(writer.complete(message, (m, durable) -> { }));
    }

    /** Reads to the end: how often each id was handed over; every body read back equals what was written. */
    private static Map<Long, Integer> readAllCounting(final SpoolReader reader, final Map<Long, byte[]> bodies)
    {
        final Map<Long, Integer> seen = new HashMap<>();
        for (final SpooledMessage message : readAll(reader))
        {
            seen.merge(message.queueId(), 1, Integer::sum);
            assertArrayEquals(bodies.get(message.queueId()), reader.readBodyToArray(message), message.toString());
        }
        return seen;
    }

    private static void assertCounts(final Map<Long, byte[]> written, final Map<Long, Integer> seen)
    {
        final long lost = written.keySet().stream().filter(id -> !seen.containsKey(id)).count();
        final long duplicated = seen.values().stream().filter(n -> n > 1).count();
        assertEquals(0, lost, "lost");
        assertEquals(0, duplicated, "duplicated");
        assertEquals(written.size(), seen.size());
    }
}
