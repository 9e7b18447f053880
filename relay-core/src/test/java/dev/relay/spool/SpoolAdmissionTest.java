package dev.relay.spool;

import dev.relay.config.SyncMode;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** queue.max_bytes: past the limit of undelivered mail, new transactions are refused (452 4.3.1), then resume. */
class SpoolAdmissionTest
{
    @Test
    @Timeout(30)
    void refusesNewMailWhileTooMuchIsQueued(@TempDir final Path dir) throws Exception
    {
        final AtomicLong queued = new AtomicLong();
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "hourly", 0))
        {
            spool.limitQueuedBytes(queued::get, 10_000);
            final SpoolWriter writer = spool.newWriter(() -> { });
            final dev.relay.smtp.InboundMessage first = SpoolTestSupport.message(1, "a@x.test", "b@y.test");
            assertTrue(writer.begin(first));
            writer.abort(first);
            queued.set(10_001);
            assertFalse(writer.begin(SpoolTestSupport.message(2, "a@x.test", "b@y.test")));
            queued.set(9_000);
            assertTrue(writer.begin(SpoolTestSupport.message(3, "a@x.test", "b@y.test")));
        }
    }

    @Test
    @Timeout(30)
    void autoLimitIsNinetyPercentOfFreeSpace(@TempDir final Path dir) throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "hourly", 0))
        {
            spool.limitQueuedBytes(() -> 0, -1);
            final long free = dir.toFile().getUsableSpace();
            assertTrue(spool.maxQueuedBytes() <= free && spool.maxQueuedBytes() >= free * 0.85,
                spool.maxQueuedBytes() + " of " + free);
        }
    }

    /** A restart with a backlog computes the same limit: the spool's own files count as space it may use. */
    @Test
    @Timeout(30)
    void autoLimitCountsTheSpoolsOwnFiles(@TempDir final Path dir) throws Exception
    {
        final long backlog = 8L * 1024 * 1024;
        java.nio.file.Files.write(dir.resolve("backlog.bin"), new byte[(int) backlog]);
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "hourly", 0))
        {
            spool.limitQueuedBytes(() -> 0, -1);
            final long free = dir.toFile().getUsableSpace();
            final long spoolFiles = SpoolDirectory.filesBytes(dir);
            assertTrue(spoolFiles >= backlog, spoolFiles + " bytes of files");
            assertTrue(spool.maxQueuedBytes() >= (free + spoolFiles) * 0.85
                    && spool.maxQueuedBytes() <= free + spoolFiles,
                spool.maxQueuedBytes() + " of " + free + " free + " + spoolFiles + " in the spool");
        }
    }
}
