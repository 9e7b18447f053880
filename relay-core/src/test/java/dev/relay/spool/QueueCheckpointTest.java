package dev.relay.spool;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The queue manager's checkpoint file: what is written is read back; a damaged or torn one is not trusted. */
@Timeout(30)
class QueueCheckpointTest
{
    @TempDir
    Path dir;

    private static QueueCheckpoint sample()
    {
        final QueueCheckpoint checkpoint = new QueueCheckpoint();
        checkpoint.writtenAtMs = 1_800_000_000_123L;
        checkpoint.spoolResumeIndexes = new long[] {0x4a0000001L, 0x4a0000011L, -1};
        checkpoint.spoolReadIndexes = new long[] {0x4a0000007L, 0x4a0000017L, 0x4a0000002L};
        checkpoint.journalIndex = 0x4a00000ffL;
        checkpoint.spoolSyncedIndexes = new long[] {0x4a0000008L, 0x4a0000018L, 0x4a0000003L};
        checkpoint.journalSyncedIndex = 0x4a0000100L;
        checkpoint.buckets.add(new QueueCheckpoint.BucketState(1_800_000_010_000L, 100, 900, 7, 7_000, 1_799_000L));
        checkpoint.buckets.add(new QueueCheckpoint.BucketState(1_800_000_020_000L, 0, 120, 1, 50, 1_799_001L));
        checkpoint.cycles.put(20_000, new long[] {8, 7_050, 1_000_000});
        checkpoint.active.add(DeferredIndexTest.entry(5, 0, 20_000));
        checkpoint.active.add(DeferredIndexTest.entry(6, 1_800_000_003_000L, 20_000));
        checkpoint.kills.add(new DeferredIndex.Kill(1_800_000_010_000L, 100));
        return checkpoint;
    }

    @Test
    void whatIsWrittenIsReadBack() throws Exception
    {
        QueueCheckpoint.write(dir, sample().encode(), List.of());
        final QueueCheckpoint read = QueueCheckpoint.read(dir);
        assertNotNull(read);
        final QueueCheckpoint expected = sample();
        assertEquals(expected.writtenAtMs, read.writtenAtMs);
        assertArrayEquals(expected.spoolResumeIndexes, read.spoolResumeIndexes, "per lane");
        assertArrayEquals(expected.spoolReadIndexes, read.spoolReadIndexes, "per lane");
        assertArrayEquals(expected.spoolSyncedIndexes, read.spoolSyncedIndexes, "per lane");
        assertArrayEquals(expected.spoolSyncedIndexes, QueueCheckpoint.spoolSyncedIndexes(dir));
        assertEquals(expected.journalIndex, read.journalIndex);
        assertEquals(expected.buckets, read.buckets);
        assertEquals(1, read.cycles.size());
        assertArrayEquals(new long[] {8, 7_050, 1_000_000}, read.cycles.get(20_000));
        assertEquals(2, read.active.size());
        assertEquals(6, read.active.get(1).queueId);
        assertEquals(1_800_000_003_000L, read.active.get(1).dueMs, "an active message keeps its next attempt");
        assertEquals("451 4.3.0 try again later (6)", read.active.get(1).reply[0]);
        assertEquals(expected.kills, read.kills);
        assertArrayEquals(new long[] {expected.spoolSyncedIndexes[0], expected.journalSyncedIndex},
            QueueCheckpoint.syncedIndexes(dir));
        assertFalse(Files.exists(dir.resolve(QueueCheckpoint.FILE + ".tmp")));
    }

    @Test
    void aDamagedOrTornCheckpointIsNotUsed() throws Exception
    {
        assertNull(QueueCheckpoint.read(dir), "none");
        assertArrayEquals(new long[] {-1, -1}, QueueCheckpoint.syncedIndexes(dir));
        final byte[] bytes = sample().encode();
        final byte[] flipped = bytes.clone();
        flipped[bytes.length / 2] ^= 0x10;
        Files.write(dir.resolve(QueueCheckpoint.FILE), flipped);
        assertNull(QueueCheckpoint.read(dir), "a flipped bit");
        Files.write(dir.resolve(QueueCheckpoint.FILE), java.util.Arrays.copyOf(bytes, bytes.length - 9));
        assertNull(QueueCheckpoint.read(dir), "cut short");
    }

    @Test
    void aNewCheckpointReplacesTheOldOneWhole() throws Exception
    {
        final QueueCheckpoint first = sample();
        QueueCheckpoint.write(dir, first.encode(), List.of());
        // a crash while the next one was written leaves its .tmp behind: the old one still stands
        Files.write(dir.resolve(QueueCheckpoint.FILE + ".tmp"), new byte[] {1, 2, 3});
        assertEquals(first.journalIndex, QueueCheckpoint.read(dir).journalIndex);
        final QueueCheckpoint second = sample();
        second.journalIndex = 0x4a0000200L;
        second.active.clear();
        final Path synced = Files.writeString(dir.resolve("1800000010000.due"), "entries");
        QueueCheckpoint.write(dir, second.encode(), List.of(synced, dir.resolve("gone.due")));
        final QueueCheckpoint read = QueueCheckpoint.read(dir);
        assertEquals(0x4a0000200L, read.journalIndex);
        assertEquals(0, read.active.size());
        assertFalse(Files.exists(dir.resolve(QueueCheckpoint.FILE + ".tmp")));
    }

    /**
     * A checkpoint written before spool lanes (version 1: one queue, no lane count) is read as lane 0's positions,
     * since lane 0 is where that queue still is (upgrade in place).
     */
    @Test
    void aCheckpointFromBeforeLanesIsReadAsLaneZero() throws Exception
    {
        final QueueCheckpoint single = sample();
        single.spoolResumeIndexes = new long[] {0x4a0000001L};
        single.spoolReadIndexes = new long[] {0x4a0000007L};
        single.spoolSyncedIndexes = new long[] {0x4a0000008L};
        final byte[] current = single.encode();
        // version 1 is version 2 without the lane count after the 56-byte header
        final java.nio.ByteBuffer v1 = java.nio.ByteBuffer.allocate(current.length - 4)
            .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        v1.put(current, 0, 56).put(current, 60, current.length - 64);
        v1.putInt(4, 1);
        final java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(v1.array(), 0, v1.position());
        v1.putInt((int)crc.getValue());
        Files.write(dir.resolve(QueueCheckpoint.FILE), v1.array());

        final QueueCheckpoint read = QueueCheckpoint.read(dir);
        assertNotNull(read, "version 1 is still read");
        assertArrayEquals(new long[] {0x4a0000001L}, read.spoolResumeIndexes);
        assertArrayEquals(new long[] {0x4a0000007L}, read.spoolReadIndexes);
        assertArrayEquals(new long[] {0x4a0000008L}, QueueCheckpoint.spoolSyncedIndexes(dir));
        assertEquals(single.journalIndex, read.journalIndex);
        assertEquals(2, read.active.size());
        assertEquals(single.kills, read.kills);
    }
}
