package dev.relay.spool;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The deferred index on real files: due order, a file per 10 s of due time, kills, a torn write at the end. */
@Timeout(30)
class DeferredIndexTest
{
    private static final long T0 = 1_800_000_000_000L;

    @TempDir
    Path dir;

    static QueueEntry entry(final long queueId, final long dueMs, final int cycle)
    {
        final QueueEntry entry = new QueueEntry();
        entry.queueId = queueId;
        entry.dueMs = dueMs;
        entry.receivedAtMs = T0 - 60_000 + queueId;
        entry.startIndex = queueId * 10;
        entry.endIndex = queueId * 10 + 3;
        entry.bodyBytes = 1000 + queueId;
        entry.chunkCount = 1;
        entry.attempts = 1;
        entry.cycle = cycle;
        entry.recipients(2);
        entry.status[0] = QueueEntry.DEFERRED;
        entry.reply[0] = "451 4.3.0 try again later (" + queueId + ")";
        entry.statusCode[0] = "4.3.0";
        entry.remoteMta[0] = "mx.example";
        entry.status[1] = QueueEntry.DELIVERED;
        return entry;
    }

    private static List<Long> drain(final DeferredIndex index, final long horizonMs)
    {
        final List<Long> ids = new ArrayList<>();
        final QueueEntry into = new QueueEntry();
        while (index.next(horizonMs, into))
        {
            ids.add(into.queueId);
            index.take(into);
        }
        return ids;
    }

    @Test
    void entriesComeBackInDueOrderOfTheirSlotsOnceTheSlotHasBegun()
    {
        try (DeferredIndex index = DeferredIndex.open(dir))
        {
            // appended out of order: 3 due last, 1 and 2 in the same slot, 4 first
            assertTrue(index.append(entry(3, T0 + 35_000, 7)));
            assertTrue(index.append(entry(1, T0 + 12_000, 7)));
            assertTrue(index.append(entry(2, T0 + 19_999, 8)));
            assertTrue(index.append(entry(4, T0 + 1_000, 8)));
            assertEquals(4, index.buckets().liveCount());
            assertEquals(4 * 1000 + 10, index.buckets().liveBytes());
            assertEquals(2, index.buckets().liveByCycle().countIn(7));
            assertEquals(7, index.buckets().liveByCycle().minCycle());

            assertEquals(List.of(), drain(index, T0 - 1), "nothing before its slot");
            assertEquals(List.of(4L), drain(index, T0));
            assertEquals(List.of(1L, 2L), drain(index, T0 + 10_000), "a slot in the order written");
            assertEquals(List.of(3L), drain(index, Long.MAX_VALUE));
            assertEquals(0, index.buckets().liveCount());
            assertEquals(Integer.MAX_VALUE, index.buckets().liveByCycle().minCycle());
        }
    }

    @Test
    void oneFilePerTenSecondsOfDueTime() throws IOException
    {
        try (DeferredIndex index = DeferredIndex.open(dir))
        {
            for (int i = 0; i < 100; i++)
            {
                // due every second for 100 s: 10 files of 10 entries
                assertTrue(index.append(entry(i, T0 + i * 1_000L, 1)));
            }
            final List<Long> slots = index.slotsOnDisk();
            assertEquals(10, slots.size());
            long onDisk = 0;
            for (final long slot : slots)
            {
                onDisk += Files.size(dir.resolve(slot + ".due"));
            }
            assertEquals(onDisk, index.buckets().fileBytes(), "what queue.max_bytes counts for the index");
            for (int s = 0; s < 10; s++)
            {
                final long slot = T0 + s * DeferredIndex.SLOT_MS;
                assertEquals(slot, slots.get(s));
                assertTrue(Files.exists(dir.resolve(slot + ".due")));
                assertEquals(10, index.buckets().existing(slot).liveCount());
            }
            assertEquals(DeferredIndex.slotOf(T0 + 9_999), DeferredIndex.slotOf(T0));
            assertEquals(T0 + 10_000, DeferredIndex.slotOf(T0 + 10_000));
        }
    }

    @Test
    void anEntryReadBackIsTheOneWritten()
    {
        try (DeferredIndex index = DeferredIndex.open(dir))
        {
            final QueueEntry written = entry(42, T0 + 5_000, 3);
            written.flags = QueueEntry.FLAG_WARNED;
            assertTrue(index.append(written));
            final QueueEntry read = new QueueEntry();
            assertTrue(index.read(written.slot, written.position, read));
            assertTrue(read.live);
            assertEquals(42, read.queueId);
            assertEquals(T0 + 5_000, read.dueMs);
            assertEquals(written.receivedAtMs, read.receivedAtMs);
            assertEquals(420, read.startIndex);
            assertEquals(423, read.endIndex);
            assertEquals(1042, read.bodyBytes);
            assertEquals(3, read.cycle);
            assertEquals(QueueEntry.FLAG_WARNED, read.flags);
            assertEquals(QueueEntry.DEFERRED, read.status[0]);
            assertEquals("451 4.3.0 try again later (42)", read.reply[0]);
            assertEquals("4.3.0", read.statusCode[0]);
            assertEquals("mx.example", read.remoteMta[0]);
            assertEquals(QueueEntry.DELIVERED, read.status[1]);
        }
    }

    @Test
    void aTakenEntryIsKilledOnDiskOnlyOnceTheCheckpointSaysSo()
    {
        final QueueEntry first = entry(1, T0, 1);
        final QueueEntry second = entry(2, T0 + 1, 1);
        try (DeferredIndex index = DeferredIndex.open(dir))
        {
            index.append(first);
            index.append(second);
            final QueueEntry scan = new QueueEntry();
            final DeferredIndex.ScanCursor cursor = new DeferredIndex.ScanCursor();
            assertTrue(index.scanNext(cursor, scan));
            assertTrue(index.scanNext(cursor, scan));
            assertEquals(2, scan.queueId);
            // taken out of the middle (a move forward): skipped from now on, still live on disk
            index.take(scan);
            assertEquals(1, index.buckets().liveCount());
            assertEquals(1, index.pendingKills().size());
            assertEquals(List.of(1L), drain(index, T0));
            final QueueEntry onDisk = new QueueEntry();
            assertTrue(index.read(second.slot, second.position, onDisk));
            assertTrue(onDisk.live, "not killed before a checkpoint names it");

            index.applyKills(index.pendingKills().size() - 1);
            assertTrue(index.read(second.slot, second.position, onDisk));
            assertFalse(onDisk.live, "killed");
            assertTrue(index.read(first.slot, first.position, onDisk));
            assertTrue(onDisk.live, "the first is not killed yet");
            index.applyKills(1);
            assertTrue(index.pendingKills().isEmpty());
        }
        // a tool's read-only view of the files: both dead now
        try (DeferredIndex readOnly = DeferredIndex.openReadOnly(dir))
        {
            readOnly.recoverWritten(DeferredIndex.slotOf(T0), 0, entry -> assertFalse(entry.live, "" + entry.queueId));
        }
    }

    @Test
    void aWriteTornByACrashIsCutOffAndTheWholeEntriesStay() throws IOException
    {
        final long slot = DeferredIndex.slotOf(T0);
        final long whole;
        try (DeferredIndex index = DeferredIndex.open(dir))
        {
            for (int i = 0; i < 5; i++)
            {
                index.append(entry(i, T0 + i, 1));
            }
            whole = index.buckets().existing(slot).writePosition();
        }
        // the sixth entry's write cut short: its first 40 bytes only
        final QueueEntry torn = entry(5, T0 + 5, 1);
        final java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(torn.encodedLength());
        torn.encode(bytes);
        try (FileChannel file = FileChannel.open(dir.resolve(slot + ".due"), StandardOpenOption.WRITE,
            StandardOpenOption.APPEND))
        {
            file.write(java.nio.ByteBuffer.wrap(bytes.array(), 0, 40));
        }
        assertEquals(whole + 40, Files.size(dir.resolve(slot + ".due")));

        // read-only (spool list): the whole entries, the file left as it is
        final List<Long> seen = new ArrayList<>();
        try (DeferredIndex readOnly = DeferredIndex.openReadOnly(dir))
        {
            readOnly.recoverWritten(slot, 0, entry -> seen.add(entry.queueId));
        }
        assertEquals(List.of(0L, 1L, 2L, 3L, 4L), seen);
        assertEquals(whole + 40, Files.size(dir.resolve(slot + ".due")));

        try (DeferredIndex index = DeferredIndex.open(dir))
        {
            seen.clear();
            index.recoverWritten(slot, 0, entry ->
            {
                seen.add(entry.queueId);
                index.buckets().countLive(entry);
            });
            assertEquals(List.of(0L, 1L, 2L, 3L, 4L), seen);
            assertEquals(whole, Files.size(dir.resolve(slot + ".due")), "the torn bytes are cut off");
            assertEquals(whole, index.buckets().existing(slot).writePosition());
            // appends go on after the last whole entry
            assertTrue(index.append(entry(6, T0 + 6, 1)));
            assertEquals(whole, index.buckets().existing(slot).writePosition() - entry(6, T0 + 6, 1).encodedLength());
            assertEquals(List.of(0L, 1L, 2L, 3L, 4L, 6L), drain(index, T0));
        }
    }

    @Test
    void damagedBytesInTheMiddleAreSkippedAndTheEntriesAfterThemStay() throws IOException
    {
        final long slot = DeferredIndex.slotOf(T0);
        final long[] positions = new long[3];
        try (DeferredIndex index = DeferredIndex.open(dir))
        {
            for (int i = 0; i < 3; i++)
            {
                final QueueEntry e = entry(i, T0 + i, 1);
                index.append(e);
                positions[i] = e.position;
            }
            // a disk fault in the middle entry (inside its checksummed bytes)
            try (FileChannel file = FileChannel.open(dir.resolve(slot + ".due"), StandardOpenOption.WRITE))
            {
                file.write(java.nio.ByteBuffer.wrap(new byte[] {(byte)0xff, (byte)0xff}), positions[1] + 30);
            }
            assertEquals(List.of(0L, 2L), drain(index, T0));
        }
        // a start reading the file again (no checkpoint) keeps the entries after the damage too
        try (DeferredIndex index = DeferredIndex.open(dir))
        {
            final List<Long> seen = new ArrayList<>();
            index.recoverWritten(slot, 0, entry -> seen.add(entry.queueId));
            assertEquals(List.of(0L, 2L), seen);
            assertEquals(positions[2] + entry(2, T0 + 2, 1).encodedLength(), Files.size(dir.resolve(slot + ".due")),
                "nothing cut");
        }
    }

    @Test
    void aFinishedBucketIsDeletedWithItsFile()
    {
        try (DeferredIndex index = DeferredIndex.open(dir))
        {
            index.append(entry(1, T0, 1));
            index.append(entry(2, T0 + 20_000, 1));
            assertEquals(List.of(1L), drain(index, T0));
            index.applyKills(index.pendingKills().size());
            index.delete(DeferredIndex.slotOf(T0));
            assertEquals(List.of(T0 + 20_000), index.slotsOnDisk());
            assertEquals(1, index.buckets().liveCount());
            assertEquals(1, index.buckets().all().size());
        }
    }

    @Test
    void aBucketWithKillsPendingIsNotDeletedSoNoKillCanHitANewFileOfItsSlot()
    {
        final long slot = DeferredIndex.slotOf(T0);
        try (DeferredIndex index = DeferredIndex.open(dir))
        {
            // both taken; their kills wait for a checkpoint, then go a slice a pass: the bucket is empty meanwhile
            index.append(entry(1, T0, 1));
            index.append(entry(2, T0 + 1, 1));
            assertEquals(List.of(1L, 2L), drain(index, T0));
            assertFalse(index.delete(slot), "kills for its entries are pending: the file stays");
            assertEquals(List.of(slot), index.slotsOnDisk());

            // a message parked again at a due time in that slot (moved forward while overdue): the same file
            final QueueEntry again = entry(3, T0 + 2, 1);
            assertTrue(index.append(again));
            index.applyKills(2);
            assertTrue(index.pendingKills().isEmpty());
            assertEquals(List.of(3L), drain(index, T0), "the kills hit the entries taken, not the new one");
            assertFalse(index.delete(slot), "the new entry's kill is pending");
            index.applyKills(1);
            assertTrue(index.delete(slot));
            assertEquals(List.of(), index.slotsOnDisk());
        }
    }
}
