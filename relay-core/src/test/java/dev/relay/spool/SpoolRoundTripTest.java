package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static dev.relay.spool.SpoolTestSupport.appendAll;
import static dev.relay.spool.SpoolTestSupport.body;
import static dev.relay.spool.SpoolTestSupport.message;
import static dev.relay.spool.SpoolTestSupport.readAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class SpoolRoundTripTest
{
    @TempDir
    Path dir;

    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception
    {
        for (int i = toClose.size() - 1; i >= 0; i--)
        {
            toClose.get(i).close();
        }
    }

    private Spool open(final SyncMode mode) throws IOException
    {
        final Spool spool = Spool.open(dir.resolve("spool"), mode, "daily", 0);
        toClose.add(spool);
        return spool;
    }

    @Test
    void smallMessageIsOneWholeRecordAndReadsBack() throws IOException
    {
        final Spool spool = open(SyncMode.NONE);
        final SpoolWriter writer = spool.newWriter(() -> { });
        final SpoolTestSupport.Commits commits = new SpoolTestSupport.Commits();
        final InboundMessage message = message(42, "alice@example.org", "bob@example.net", "carol@example.net");
        final byte[] body = body(1, 1024);

        assertTrue(writer.begin(message));
        assertTrue(appendAll(writer, message, body, 700));
        assertTrue(writer.complete(message, commits));
        assertEquals(List.of(42L), commits.ids);

        final SpoolReader reader = spool.newReader(null);
        final List<SpooledMessage> read = readAll(reader);
        assertEquals(1, read.size());
        final SpooledMessage m = read.get(0);
        assertEquals(42, m.queueId());
        assertEquals(m.startIndex(), m.endIndex(), "one WHOLE excerpt");
        assertEquals(message.receivedAtMs(), m.receivedAtMs());
        assertEquals(InboundMessage.FLAG_8BITMIME, m.flags());
        assertArrayEquals(message.reversePath(), m.reversePath());
        assertEquals(2, m.recipients().size());
        assertArrayEquals(message.recipients().get(1), m.recipients().get(1));
        assertArrayEquals(message.clientAddress(), m.clientAddress());
        assertArrayEquals(message.heloName(), m.heloName());
        assertArrayEquals(message.receivedHeader(), m.receivedHeader());
        assertEquals(1024, m.bodyBytes());
        assertArrayEquals(body, reader.readBodyToArray(m));
    }

    @Test
    void manyChunksAndEmptyBodyRoundTrip() throws IOException
    {
        final Spool spool = open(SyncMode.NONE);
        final SpoolWriter writer = spool.newWriter(() -> { });
        final SpoolTestSupport.Commits commits = new SpoolTestSupport.Commits();
        final Map<Long, byte[]> bodies = new HashMap<>();
        final int[] sizes = {0, 5, SpoolWriter.STAGE_BYTES, SpoolWriter.STAGE_BYTES + 1, 300_000, 1_000_000};
        final int[] pieces = {1, 1, 4096, 8192, 8192, 300_000};
        for (int i = 0; i < sizes.length; i++)
        {
            final InboundMessage message = message(100 + i, "", "x@example.net");
            final byte[] body = body(i, sizes[i]);
            bodies.put(100L + i, body);
            assertTrue(writer.begin(message));
            assertTrue(appendAll(writer, message, body, pieces[i]));
            assertTrue(writer.complete(message, commits));
        }
        assertEquals(sizes.length, commits.ids.size());

        final SpoolReader reader = spool.newReader(null);
        final List<SpooledMessage> read = readAll(reader);
        assertEquals(sizes.length, read.size());
        for (final SpooledMessage m : read)
        {
            assertArrayEquals(bodies.get(m.queueId()), reader.readBodyToArray(m), m.toString());
            assertEquals(0, m.reversePath().length);
        }
        assertTrue(read.get(5).chunkCount() >= 4, "1 MB in one append is split into 256 KiB chunks");
    }

    @Test
    void interleavedTransactionsOnOneLoopAndAbortedMessageIsNeverRead() throws IOException
    {
        final Spool spool = open(SyncMode.NONE);
        final SpoolWriter writer = spool.newWriter(() -> { });
        final SpoolTestSupport.Commits commits = new SpoolTestSupport.Commits();
        final InboundMessage a = message(1, "a@x", "r@y");
        final InboundMessage b = message(2, "b@x", "r@y");
        final InboundMessage c = message(3, "c@x", "r@y");
        final byte[] bodyA = body(1, 40_000);
        final byte[] bodyB = body(2, 3_000);
        assertTrue(writer.begin(a));
        assertTrue(writer.begin(b));
        assertTrue(writer.begin(c));
        for (int i = 0; i < 10; i++)
        {
            assertTrue(SpoolTestSupport.appendAll(writer, a, java.util.Arrays.copyOfRange(bodyA, i * 4000, i * 4000 + 4000), 4000));
            if (i < 3)
            {
                assertTrue(appendAll(writer, b, java.util.Arrays.copyOfRange(bodyB, i * 1000, i * 1000 + 1000), 1000));
                assertTrue(appendAll(writer, c, body(9, 20_000), 20_000));
            }
        }
        writer.abort(c);
        assertTrue(writer.complete(b, commits));
        assertTrue(writer.complete(a, commits));
        assertEquals(List.of(2L, 1L), commits.ids);

        final SpoolReader reader = spool.newReader(null);
        final List<SpooledMessage> read = readAll(reader);
        assertEquals(2, read.size());
        assertEquals(2, read.get(0).queueId());
        assertEquals(1, read.get(1).queueId());
        assertArrayEquals(bodyB, reader.readBodyToArray(read.get(0)));
        assertArrayEquals(bodyA, reader.readBodyToArray(read.get(1)));
        assertEquals(1, reader.pendingCount(), "the aborted START stays pending until dropped");
    }

    @Test
    void pendingMessagesAreBounded() throws IOException
    {
        final Spool spool = open(SyncMode.NONE);
        final SpoolWriter writer = spool.newWriter(() -> { });
        for (int i = 0; i < 50; i++)
        {
            final InboundMessage message = message(1000 + i, "a@x", "r@y");
            assertTrue(writer.begin(message));
            assertTrue(appendAll(writer, message, body(i, 20_000), 20_000));
            writer.abort(message);
        }
        final SpoolReader reader = spool.newReader(null).pendingLimits(10, SpoolReader.DEFAULT_MAX_PENDING_AGE_MS);
        assertEquals(0, readAll(reader).size());
        assertEquals(10, reader.pendingCount());
        assertEquals(40, reader.droppedPending());
    }

    @Test
    void beginRefusesWhenDiskBelowMinimum() throws IOException
    {
        final Spool spool = Spool.open(dir.resolve("full"), SyncMode.NONE, "hourly", Long.MAX_VALUE);
        toClose.add(spool);
        final SpoolWriter writer = spool.newWriter(() -> { });
        assertFalse(writer.begin(message(1, "a@x", "b@y")));
    }

    @Test
    void openFailsWithDirectoryAndReason() throws IOException
    {
        final Path file = Files.writeString(dir.resolve("plain-file"), "x");
        final IOException ex = assertThrows(
            IOException.class, () -> Spool.open(file.resolve("spool"), SyncMode.BATCH, "daily", 0));
        assertTrue(ex.getMessage().contains(file.resolve("spool").toString()), ex.getMessage());
        assertTrue(ex.getMessage().contains("cannot create directory"), ex.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Spool.open(dir.resolve("s"), SyncMode.BATCH, "weekly", 0));
    }

    @Test
    void reopenFindsEverything() throws IOException
    {
        final Path spoolDir = dir.resolve("spool");
        final Map<Long, byte[]> bodies = new HashMap<>();
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, "secondly", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            for (int i = 0; i < 20; i++)
            {
                final InboundMessage message = message(500 + i, "a@x", "r@y");
                final byte[] body = body(i, 100 + i * 5000);
                bodies.put(500L + i, body);
                assertTrue(writer.begin(message));
                assertTrue(appendAll(writer, message, body, 8192));
                assertTrue(writer.complete(message, (m, d) -> { }));
            }
        }
        try (Spool spool = Spool.open(spoolDir, SyncMode.NONE, "secondly", 0))
        {
            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = readAll(reader);
            assertEquals(20, read.size());
            for (final SpooledMessage m : read)
            {
                assertArrayEquals(bodies.get(m.queueId()), reader.readBodyToArray(m));
            }
            // and it still appends
            final SpoolWriter writer = spool.newWriter(() -> { });
            final InboundMessage message = message(999, "a@x", "r@y");
            assertTrue(writer.begin(message));
            assertTrue(writer.complete(message, (m, d) -> { }));
            assertEquals(1, readAll(reader).size());
        }
    }
}
