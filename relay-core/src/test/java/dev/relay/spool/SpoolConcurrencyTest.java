package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

import static dev.relay.spool.SpoolTestSupport.appendAll;
import static dev.relay.spool.SpoolTestSupport.body;
import static dev.relay.spool.SpoolTestSupport.message;
import static dev.relay.spool.SpoolTestSupport.onWriterThreads;
import static dev.relay.spool.SpoolTestSupport.readAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(120)
class SpoolConcurrencyTest
{
    @TempDir
    Path dir;

    @Test
    void twoWriterThreadsInterleaveAndEverythingReadsBack() throws Exception
    {
        final ConcurrentHashMap<Long, byte[]> bodies = new ConcurrentHashMap<>();
        try (Spool spool = Spool.open(dir, SyncMode.BATCH, "daily", 0))
        {
            onWriterThreads(spool, 2, (loop, writer) ->
            {
                final SpoolTestSupport.Commits commits = new SpoolTestSupport.Commits();
                for (int i = 0; i < 200; i += 2)
                {
                    // two sessions of this loop, interleaved
                    final InboundMessage a = message(((long)loop << 32) | i, "a@x", "r@y");
                    final InboundMessage b = message(((long)loop << 32) | (i + 1), "b@x", "r@y");
                    final byte[] bodyA = body(a.queueId(), 1000 + i * 300);
                    final byte[] bodyB = body(b.queueId(), 20_000 + i);
                    bodies.put(a.queueId(), bodyA);
                    bodies.put(b.queueId(), bodyB);
                    writer.begin(a);
                    writer.begin(b);
                    appendAll(writer, a, bodyA, 7000);
                    appendAll(writer, b, bodyB, 3000);
                    writer.complete(a, commits);
                    writer.complete(b, commits);
                    writer.endOfPass();
                    writer.drainCompletions();
                }
                SpoolTestSupport.await(() -> commits.ids.size() == 200, 20_000, writer::drainCompletions);
            });

            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = readAll(reader);
            assertEquals(400, read.size());
            for (final SpooledMessage m : read)
            {
                assertArrayEquals(bodies.get(m.queueId()), reader.readBodyToArray(m), m.toString());
            }
        }
    }

    @Test
    void twentyMebibytesIn64KiBChunksReadBackExactWithLittleAllocation() throws Exception
    {
        final com.sun.management.ThreadMXBean threads =
            (com.sun.management.ThreadMXBean)ManagementFactory.getThreadMXBean();
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final SpoolReader reader = spool.newReader(null);
            final InboundMessage message = message(77, "big@x", "r@y");
            final ByteBuffer chunk = ByteBuffer.allocateDirect(64 * 1024);
            final MessageDigest written = MessageDigest.getInstance("SHA-256");
            final MessageDigest read = MessageDigest.getInstance("SHA-256");
            final byte[] scratch = new byte[64 * 1024];
            final java.util.Random random = new java.util.Random(3);
            // warm up code paths so allocation below is steady state
            final InboundMessage warm = message(1, "a@x", "r@y");
            writer.begin(warm);
            writer.append(warm, chunk, 0, chunk.capacity());
            writer.complete(warm, (m, d) -> { });

            final long before = threads.getThreadAllocatedBytes(Thread.currentThread().getId());
            assertTrue(writer.begin(message));
            for (int i = 0; i < 320; i++)
            {
                random.nextBytes(scratch);
                chunk.clear();
                chunk.put(scratch).flip();
                written.update(scratch);
                assertTrue(writer.append(message, chunk, 0, chunk.limit()));
            }
            assertTrue(writer.complete(message, (m, d) -> { }));
            final SpooledMessage[] found = new SpooledMessage[2];
            final int[] n = new int[1];
            reader.poll(m -> found[n[0]++] = m, 2);
            final long total = reader.readBody(found[1], (bytes, offset, length) ->
            {
                for (int done = 0; done < length; )
                {
                    final int step = Math.min(scratch.length, length - done);
                    bytes.read(offset + done, scratch, 0, step);
                    read.update(scratch, 0, step);
                    done += step;
                }
            });
            final long allocated = threads.getThreadAllocatedBytes(Thread.currentThread().getId()) - before;

            assertEquals(20L * 1024 * 1024, total);
            assertEquals(20L * 1024 * 1024, found[1].bodyBytes());
            assertArrayEquals(written.digest(), read.digest());
            assertTrue(allocated < 4L * 1024 * 1024, "heap allocated while moving 20 MiB: " + allocated);
        }
    }

    @Test
    void readOnlyReaderFollowsAWriterThatKeepsAppending() throws Exception
    {
        final int count = 300;
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final Thread appender = new Thread(() ->
            {
                for (int i = 0; i < count; i++)
                {
                    final InboundMessage message = message(i + 1, "a@x", "r@y");
                    writer.begin(message);
                    appendAll(writer, message, body(i, 10_000 + i), 4096);
                    writer.complete(message, (m, d) -> { });
                    if (i % 50 == 0)
                    {
                        try
                        {
                            Thread.sleep(10);
                        }
                        catch (final InterruptedException ex)
                        {
                            return;
                        }
                    }
                }
            }, "appender");
            appender.start();
            try (SpoolReader reader = SpoolReader.open(dir))
            {
                final List<SpooledMessage> read = new ArrayList<>();
                SpoolTestSupport.await(() -> read.size() == count, 30_000, () -> reader.poll(read::add, 10));
                for (int i = 0; i < count; i++)
                {
                    assertEquals(i + 1, read.get(i).queueId());
                    assertArrayEquals(body(i, 10_000 + i), reader.readBodyToArray(read.get(i)));
                }
            }
            appender.join();
        }
    }
}
