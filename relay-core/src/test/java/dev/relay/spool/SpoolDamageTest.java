package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.bytes.MappedBytes;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueStore;
import net.openhft.chronicle.wire.Wires;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static dev.relay.spool.SpoolTestSupport.appendAll;
import static dev.relay.spool.SpoolTestSupport.body;
import static dev.relay.spool.SpoolTestSupport.cycleFile;
import static dev.relay.spool.SpoolTestSupport.flipByteOf;
import static dev.relay.spool.SpoolTestSupport.message;
import static dev.relay.spool.SpoolTestSupport.readAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Damaged spool records: every record's checksum is verified by readers, a message with a damaged record is not
 * handed over, and a newest cycle file with a damaged tail is repaired at open so that later appends are read.
 */
@Timeout(60)
class SpoolDamageTest
{
    private static final int LARGE = 600 * 1024;

    @TempDir
    Path dir;

    /** Writes A (large: START_BODY + BODY records), B (small: WHOLE), C (large); returns their bodies. */
    private List<byte[]> writeThree(final Path spoolDir) throws IOException
    {
        final List<byte[]> bodies = List.of(body(1, LARGE), body(2, 900), body(3, LARGE));
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            for (int i = 0; i < bodies.size(); i++)
            {
                final InboundMessage message = message(100 + i, "alice@example.org", "bob@example.net");
                assertTrue(writer.begin(message));
                assertTrue(appendAll(writer, message, bodies.get(i), 64 * 1024));
                assertTrue(writer.complete(message, new SpoolTestSupport.Commits()));
            }
        }
        return bodies;
    }

    private static List<Long> ids(final List<SpooledMessage> messages)
    {
        return messages.stream().map(SpooledMessage::queueId).toList();
    }

    /**
     * Records written across several of Chronicle's 16 MiB mapping chunks all pass their checksum (the writer
     * computes it from the record's sources; reading the record back faulted in SpoolAppendBenchmark, not here).
     */
    @Test
    void recordsAcrossManyMappingChunksAreIntact() throws IOException
    {
        final Path spoolDir = dir.resolve("spool");
        final int messages = 30_000;
        final byte[] small = body(1, 1500);
        final byte[] large = body(2, LARGE);
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            for (int i = 0; i < messages; i++)
            {
                writeMessage(writer, i + 1, i % 1000 == 0 ? large : small);
            }
        }
        assertTrue(Files.size(cycleFile(spoolDir)) > 48L << 20, "spans several chunks");
        try (SpoolReader reader = SpoolReader.open(spoolDir))
        {
            assertEquals(messages, readAll(reader).size());
            assertEquals(0, reader.damagedRecords());
        }
    }

    @Test
    void damagedBodyChunkDropsItsMessageOnly() throws IOException
    {
        final Path spoolDir = dir.resolve("spool");
        final List<byte[]> bodies = writeThree(spoolDir);
        flipByteOf(cycleFile(spoolDir), bodies.get(0), 400 * 1024); // in A's second BODY record

        try (SpoolReader reader = SpoolReader.open(spoolDir))
        {
            final List<SpooledMessage> read = readAll(reader);
            assertEquals(List.of(101L, 102L), ids(read), "A is dropped, B and C are handed over");
            assertEquals(1, reader.damagedRecords());
            assertEquals(1, reader.damagedMessages());
            assertArrayEquals(bodies.get(2), reader.readBodyToArray(read.get(1)));
        }
    }

    @Test
    void damagedWholeRecordIsSkipped() throws IOException
    {
        final Path spoolDir = dir.resolve("spool");
        final List<byte[]> bodies = writeThree(spoolDir);
        flipByteOf(cycleFile(spoolDir), bodies.get(1), 500);

        try (SpoolReader reader = SpoolReader.open(spoolDir))
        {
            assertEquals(List.of(100L, 102L), ids(readAll(reader)));
            assertEquals(1, reader.damagedRecords());
        }
    }

    @Test
    void damageInTheNewestFileIsRepairedAtOpenAndNewMailIsRead() throws IOException
    {
        final Path spoolDir = dir.resolve("spool");
        final List<byte[]> bodies = writeThree(spoolDir);
        flipByteOf(cycleFile(spoolDir), bodies.get(1), 500);

        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, "daily", 0))
        {
            assertEquals(1, damagedDirs(spoolDir), "the damaged file is kept aside");
            appendSmall(spool, 200);
            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = readAll(reader);
            assertEquals(List.of(100L, 102L, 200L), ids(read), "intact records carried over, then the new one");
            assertArrayEquals(bodies.get(0), reader.readBodyToArray(read.get(0)));
        }
    }

    @Test
    void damageInAnOlderCycleFileDoesNotHideTheLaterOnes() throws Exception
    {
        final Path spoolDir = dir.resolve("spool");
        final byte[] bodyB = body(2, 900);
        final byte[] spanning = body(5, LARGE);
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, "secondly", 0))
        {
            // start at the beginning of a cycle: the writes before the roll below all land in one file
            final int openedIn = spool.currentCycle();
            while (spool.currentCycle() == openedIn)
            {
                Thread.sleep(2);
            }
            final SpoolWriter writer = spool.newWriter(() -> { });
            writeMessage(writer, 100, body(1, 900));
            writeMessage(writer, 101, bodyB);
            // a message whose records straddle the roll: START_BODY and BODY now, END in the next cycle
            final InboundMessage straddling = message(150, "alice@example.org", "bob@example.net");
            assertTrue(writer.begin(straddling));
            assertTrue(appendAll(writer, straddling, spanning, 64 * 1024));
            final int firstCycle = spool.currentCycle();
            while (spool.currentCycle() == firstCycle)
            {
                Thread.sleep(20);
            }
            assertTrue(writer.complete(straddling, new SpoolTestSupport.Commits()));
            writeMessage(writer, 102, body(3, 900));
        }
        final List<Path> cycles = cycleFiles(spoolDir);
        assertEquals(2, cycles.size(), "two cycle files: " + cycles);
        flipByteOf(cycles.get(0), bodyB, 500);

        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, "secondly", 0))
        {
            assertEquals(1, damagedDirs(spoolDir));
            appendSmall(spool, 200);
            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = readAll(reader);
            assertEquals(List.of(100L, 150L, 102L, 200L), ids(read), "B is lost; the later file is read again");
            assertArrayEquals(spanning, reader.readBodyToArray(read.get(1)));
        }
        try (Stream<Path> kept = Files.walk(spoolDir).filter(path -> path.getParent().getFileName().toString()
            .startsWith("damaged-") && path.toString().endsWith(".cq4")))
        {
            assertEquals(List.of(cycles.get(0).getFileName().toString()),
                kept.map(path -> path.getFileName().toString()).toList(), "only the damaged file is kept");
        }
    }

    private static void writeMessage(final SpoolWriter writer, final long queueId, final byte[] body)
    {
        final InboundMessage message = message(queueId, "alice@example.org", "bob@example.net");
        assertTrue(writer.begin(message));
        assertTrue(appendAll(writer, message, body, 64 * 1024));
        assertTrue(writer.complete(message, new SpoolTestSupport.Commits()));
    }

    private static List<Path> cycleFiles(final Path spoolDir) throws IOException
    {
        try (Stream<Path> files = Files.list(spoolDir))
        {
            return files.filter(path -> path.toString().endsWith(".cq4")).sorted().toList();
        }
    }

    @Test
    void noiseAfterTheLastRecordIsRepairedAtOpen() throws IOException
    {
        final Path spoolDir = dir.resolve("spool");
        writeThree(spoolDir);
        final long end = lastRecordEnd(spoolDir);
        final byte[] noise = new byte[300];
        new Random(7).nextBytes(noise);
        noise[3] &= 0x3f; // a header that looks like a finished data record far away
        writeAt(cycleFile(spoolDir), end, noise);

        reopenAppendAndReadAll(spoolDir, 1);
    }

    /** Opens the spool (repairing it), asserts the damaged-* dirs, appends message 200 and reads everything. */
    private static void reopenAppendAndReadAll(final Path spoolDir, final int damagedDirs) throws IOException
    {
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, "daily", 0))
        {
            assertEquals(damagedDirs, damagedDirs(spoolDir), "files set aside");
            appendSmall(spool, 200);
            assertEquals(List.of(100L, 101L, 102L, 200L), ids(readAll(spool.newReader(null))));
        }
    }

    private static void writeAt(final Path file, final long position, final byte[] bytes) throws IOException
    {
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw"))
        {
            raf.seek(position);
            raf.write(bytes);
        }
    }

    @Test
    void recordLeftUnfinishedByAKilledWriterIsClearedInPlace() throws IOException
    {
        final Path spoolDir = dir.resolve("spool");
        writeThree(spoolDir);
        final long end = lastRecordEnd(spoolDir);
        // a header saying NOT_COMPLETE, length 100 (little-endian), and the start of a record
        writeAt(cycleFile(spoolDir), end, new byte[] {100, 0, 0, (byte)0x80, 1, 2, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9});

        reopenAppendAndReadAll(spoolDir, 0); // nothing to set aside: the write never finished
    }

    @Test
    void intactSpoolIsLeftAlone() throws IOException
    {
        final Path spoolDir = dir.resolve("spool");
        writeThree(spoolDir);
        final long size = Files.size(cycleFile(spoolDir));
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, "daily", 0))
        {
            assertEquals(0, damagedDirs(spoolDir));
            assertEquals(List.of(100L, 101L, 102L), ids(readAll(spool.newReader(null))));
        }
        assertEquals(size, Files.size(cycleFile(spoolDir)));
    }

    @Test
    void checksumCatchesAFlippedBitAndVersionOneIsUnchecked()
    {
        final RecordChecksum checksum = new RecordChecksum();
        final Bytes<?> bytes = Bytes.allocateElasticOnHeap(64);
        SpoolRecords.writeEnd(bytes, 7, 1000, 2);
        bytes.writeInt(checksum.reset().update(bytes, 0, bytes.writePosition()).value());
        assertTrue(checksum.intact(bytes, 0, bytes.writePosition()));

        bytes.writeByte(13, (byte)(bytes.readByte(13) ^ 1));
        assertFalse(checksum.intact(bytes, 0, bytes.writePosition()), "a flipped bit");

        bytes.writeByte(SpoolRecords.VERSION_OFFSET, SpoolRecords.VERSION_WITHOUT_CHECKSUM);
        assertTrue(checksum.intact(bytes, 0, bytes.writePosition()), "version 1 records carry no checksum");
        bytes.writeByte(SpoolRecords.VERSION_OFFSET, (byte)9);
        assertFalse(checksum.intact(bytes, 0, bytes.writePosition()), "an unknown version is damage");
        assertFalse(checksum.intact(bytes, 0, 8), "shorter than a header");
    }

    @Test
    void journalWithANoisyTailIsRepairedAndReplaysItsRecords() throws IOException
    {
        final Path journalDir = dir.resolve("journal");
        try (OutcomeJournal journal = OutcomeJournal.open(journalDir, "daily"))
        {
            journal.recordResult(1, 0, OutcomeJournal.DELIVERED, 1, 0, "250 ok");
            journal.recordResult(2, 0, OutcomeJournal.DEFERRED, 1, 5000, "451 later");
            journal.recordDone(1);
        }
        final long end = lastRecordEnd(journalDir, 4L << 20);
        final byte[] noise = new byte[100];
        new Random(9).nextBytes(noise);
        noise[3] &= 0x3f;
        writeAt(cycleFile(journalDir), end, noise);
        try (OutcomeJournal journal = OutcomeJournal.open(journalDir, "daily"))
        {
            journal.recordDone(2);
            final List<String> replayed = new ArrayList<>();
            journal.replay(new OutcomeJournal.Visitor()
            {
                @Override
                public void onResult(final long queueId, final int recipient, final byte status, final int attempts,
                    final long nextAttemptMs, final String text)
                {
                    replayed.add("result " + queueId + " " + status + " " + text);
                }

                @Override
                public void onDone(final long queueId)
                {
                    replayed.add("done " + queueId);
                }
            });
            assertEquals(List.of("result 1 1 250 ok", "result 2 3 451 later", "done 1", "done 2"), replayed);
        }
    }

    private static void appendSmall(final Spool spool, final long queueId)
    {
        final SpoolWriter writer = spool.newWriter(() -> { });
        final InboundMessage message = message(queueId, "carol@example.org", "dave@example.net");
        assertTrue(writer.begin(message));
        assertTrue(appendAll(writer, message, body(queueId, 300), 300));
        assertTrue(writer.complete(message, new SpoolTestSupport.Commits()));
    }

    private static long damagedDirs(final Path spoolDir) throws IOException
    {
        try (Stream<Path> files = Files.list(spoolDir))
        {
            return files.filter(path -> path.getFileName().toString().startsWith("damaged-")).count();
        }
    }

    private static long lastRecordEnd(final Path spoolDir)
    {
        return lastRecordEnd(spoolDir, Spool.BLOCK_SIZE);
    }

    /** Where the record after the newest one would start, per the cycle file's own header. */
    private static long lastRecordEnd(final Path queueDir, final long blockSize)
    {
        try (SingleChronicleQueue queue = SingleChronicleQueueBuilder.binary(queueDir)
            .rollCycle(Spool.rollCycle("daily")).blockSize(blockSize).build())
        {
            final SingleChronicleQueueStore store = queue.storeForCycle(queue.lastCycle(), queue.epoch(), false, null);
            final MappedBytes bytes = store.bytes();
            try
            {
                final long header = store.writePosition();
                return (header + Wires.SPB_HEADER_SIZE + Wires.lengthOf(bytes.readVolatileInt(header)) + 3) & ~3L;
            }
            finally
            {
                bytes.releaseLast();
                queue.closeStore(store);
            }
        }
    }
}
