package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.relay.spool.SpoolTestSupport.appendAll;
import static dev.relay.spool.SpoolTestSupport.await;
import static dev.relay.spool.SpoolTestSupport.body;
import static dev.relay.spool.SpoolTestSupport.message;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class SpoolSyncModeTest
{
    @TempDir
    Path dir;

    @Test
    void noneCallsBackInsideComplete() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final SpoolTestSupport.Commits commits = new SpoolTestSupport.Commits();
            final InboundMessage message = message(7, "a@x", "b@y");
            assertTrue(writer.begin(message));
            assertTrue(appendAll(writer, message, body(1, 1000), 1000));
            assertTrue(writer.complete(message, commits));
            assertEquals(1, commits.ids.size());
            assertEquals(0, writer.drainCompletions());
            assertEquals(0, spool.syncCount());
        }
    }

    @Test
    void alwaysSyncsEachMessageOffTheLoopAndCallsBackOnTheLoop() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.ALWAYS, "daily", 0))
        {
            final AtomicInteger wakeups = new AtomicInteger();
            final SpoolWriter writer = spool.newWriter(wakeups::incrementAndGet);
            final SpoolTestSupport.Commits commits = new SpoolTestSupport.Commits();
            for (int i = 0; i < 5; i++)
            {
                final InboundMessage message = message(10 + i, "a@x", "b@y");
                assertTrue(writer.begin(message));
                assertTrue(appendAll(writer, message, body(i, 2000), 2000));
                assertTrue(writer.complete(message, commits));
            }
            assertEquals(0, commits.ids.size(), "never from inside complete()");
            await(() -> commits.ids.size() == 5, 10_000, writer::drainCompletions);
            await(() -> wakeups.get() >= 1, 10_000, () -> { }); // the wakeup follows the post
            assertEquals(5, spool.syncCount(), "one sync per message in ALWAYS");
            for (int i = 0; i < 5; i++)
            {
                assertSame(Thread.currentThread(), commits.threads.get(i));
                assertTrue(commits.durable.get(i));
            }
        }
    }

    @Test
    void batchSyncsTheWholePassOnceAfterEndOfPass() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.BATCH, "daily", 0))
        {
            final AtomicInteger wakeups = new AtomicInteger();
            final SpoolWriter writer = spool.newWriter(wakeups::incrementAndGet);
            final SpoolTestSupport.Commits commits = new SpoolTestSupport.Commits();
            for (int i = 0; i < 10; i++)
            {
                final InboundMessage message = message(100 + i, "a@x", "b@y");
                assertTrue(writer.begin(message));
                assertTrue(appendAll(writer, message, body(i, 50_000), 8192));
                assertTrue(writer.complete(message, commits));
            }
            Thread.sleep(50);
            assertEquals(0, writer.drainCompletions(), "nothing is synced before the pass ends");
            assertEquals(0, spool.syncCount());
            writer.endOfPass();
            final int[] drained = new int[1];
            await(() -> commits.ids.size() == 10, 10_000, () -> drained[0] += writer.drainCompletions());
            assertEquals(10, drained[0]);
            assertEquals(1, spool.syncCount(), "group commit: one sync for the pass");
            await(() -> wakeups.get() == 1, 10_000, () -> { });
            assertEquals(1, wakeups.get(), "one wakeup per writer per group");
            for (int i = 0; i < 10; i++)
            {
                assertEquals(100 + i, commits.ids.get(i));
                assertSame(Thread.currentThread(), commits.threads.get(i));
            }
            writer.endOfPass();
            assertEquals(0, writer.drainCompletions());
        }
    }
}
