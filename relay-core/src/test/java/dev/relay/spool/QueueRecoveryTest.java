package dev.relay.spool;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A start's view of the queue from the checkpoint, the journal after it and the index entries after it, on real
 * files: next-attempt times kept, the journal after an older checkpoint applied, a torn index write dropped, and a
 * spool from before the checkpoint read from its journal.
 */
@Timeout(30)
class QueueRecoveryTest
{
    private static final long T0 = 1_800_000_000_000L;

    @TempDir
    Path dir;

    private Path deferredDir()
    {
        return dir.resolve("deferred");
    }

    private OutcomeJournal journal()
    {
        return OutcomeJournal.open(dir.resolve("journal"), "daily");
    }

    /** As the queue manager parks a message: the entry, then its SCHEDULED record. */
    private static QueueEntry park(final DeferredIndex index, final OutcomeJournal journal, final QueueEntry entry)
    {
        assertTrue(index.append(entry));
        journal.recordScheduled(entry.queueId, entry.attempts, entry.dueMs, entry.slot, entry.position);
        return entry;
    }

    /** A checkpoint of the index's state, the journal's last record and {@code active}, as the queue manager's. */
    private void checkpoint(final DeferredIndex index, final OutcomeJournal journal, final QueueEntry... active)
        throws Exception
    {
        final QueueCheckpoint checkpoint = new QueueCheckpoint();
        checkpoint.writtenAtMs = T0;
        checkpoint.journalIndex = journal.lastIndex();
        for (final DeferredBucket bucket : index.buckets().all())
        {
            checkpoint.buckets.add(new QueueCheckpoint.BucketState(bucket.slot(), bucket.readPosition(),
                bucket.writePosition(), bucket.liveCount(), bucket.liveBytes(), bucket.minReceivedAtMs()));
        }
        for (final Map.Entry<Integer, long[]> cycle : index.buckets().liveByCycle().byCycle().entrySet())
        {
            checkpoint.cycles.put(cycle.getKey(), new long[] {cycle.getValue()[0], cycle.getValue()[1], 0});
        }
        checkpoint.active.addAll(List.of(active));
        checkpoint.kills.addAll(index.pendingKills());
        QueueCheckpoint.write(index.dir(), checkpoint.encode(), index.takeDirtyFiles());
        index.applyKills(checkpoint.kills.size());
    }

    private static List<QueueEntry> due(final DeferredIndex index, final long horizonMs)
    {
        final List<QueueEntry> due = new ArrayList<>();
        QueueEntry into = new QueueEntry();
        while (index.next(horizonMs, into))
        {
            due.add(into);
            index.take(into);
            into = new QueueEntry();
        }
        return due;
    }

    @Test
    void aRestartKeepsEveryNextAttemptTime() throws Exception
    {
        final long[] dueTimes = {T0 + 60_000, T0 + 3_600_000, T0 + 3_600_500, T0 + 14_400_000};
        try (DeferredIndex index = DeferredIndex.open(deferredDir()); OutcomeJournal journal = journal())
        {
            for (int i = 0; i < dueTimes.length; i++)
            {
                park(index, journal, DeferredIndexTest.entry(i + 1, dueTimes[i], 1));
            }
            checkpoint(index, journal);
        }
        try (DeferredIndex index = DeferredIndex.open(deferredDir()); OutcomeJournal journal = journal())
        {
            final QueueRecovery.Result result = QueueRecovery.recover(index, journal);
            assertTrue(result.fromCheckpoint);
            assertEquals(0, result.journalRecords, "nothing after the checkpoint to read");
            assertEquals(List.of(), result.active);
            assertEquals(4, index.buckets().liveCount());
            assertEquals(List.of(), due(index, T0 + 59_999 - DeferredIndex.SLOT_MS), "none due before its time");
            final List<QueueEntry> first = due(index, T0 + 60_000);
            assertEquals(1, first.size());
            assertEquals(dueTimes[0], first.get(0).dueMs);
            final List<QueueEntry> rest = due(index, Long.MAX_VALUE);
            assertEquals(List.of(2L, 3L, 4L), rest.stream().map(e -> e.queueId).toList());
            for (int i = 0; i < 3; i++)
            {
                assertEquals(dueTimes[i + 1], rest.get(i).dueMs);
                assertEquals(1, rest.get(i).attempts);
                assertEquals(QueueEntry.DEFERRED, rest.get(i).status[0]);
            }
        }
    }

    @Test
    void theJournalAfterAnOlderCheckpointIsAppliedAndATornIndexWriteIsDropped() throws Exception
    {
        final long slot = DeferredIndex.slotOf(T0 + 3_600_000);
        final QueueEntry activeAtCheckpoint = DeferredIndexTest.entry(5, 0, 1);
        activeAtCheckpoint.status[0] = QueueEntry.READY;
        try (DeferredIndex index = DeferredIndex.open(deferredDir()); OutcomeJournal journal = journal())
        {
            for (int i = 1; i <= 3; i++)
            {
                park(index, journal, DeferredIndexTest.entry(i, T0 + 3_600_000 + i, 1));
            }
            checkpoint(index, journal, activeAtCheckpoint);

            // after the checkpoint: 4 parked (entry and record); 1 taken back, then delivered; 2 taken back and done
            park(index, journal, DeferredIndexTest.entry(4, T0 + 3_600_004, 1));
            final QueueEntry taken = new QueueEntry();
            assertTrue(index.next(Long.MAX_VALUE, taken));
            assertEquals(1, taken.queueId);
            journal.recordActivated(1, taken.slot, taken.position);
            index.take(taken);
            journal.recordResult(1, 0, OutcomeJournal.DELIVERED, 2, 0, "250 2.0.0 ok");
            assertTrue(index.next(Long.MAX_VALUE, taken));
            assertEquals(2, taken.queueId);
            journal.recordActivated(2, taken.slot, taken.position);
            index.take(taken);
            journal.recordResult(2, 0, OutcomeJournal.BOUNCED, 2, 0, "550 5.1.1 no such user");
            journal.recordDone(2);
            // 6: read by the spool tailer after the checkpoint, one recipient deferred (still active)
            journal.recordResult(6, 0, OutcomeJournal.DEFERRED, 1, T0 + 5_000, "421 busy");
            // 5 (active at the checkpoint) parked, but the crash came between the entry and its SCHEDULED record
            assertTrue(index.append(DeferredIndexTest.entry(5, T0 + 3_600_005, 1)));
        }
        // and an entry whose write the crash cut short
        final QueueEntry torn = DeferredIndexTest.entry(7, T0 + 3_600_007, 1);
        final ByteBuffer bytes = ByteBuffer.allocate(torn.encodedLength());
        torn.encode(bytes);
        final Path file = deferredDir().resolve(slot + ".due");
        final long beforeTorn = Files.size(file);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.APPEND))
        {
            channel.write(ByteBuffer.wrap(bytes.array(), 0, 50));
        }

        try (DeferredIndex index = DeferredIndex.open(deferredDir()); OutcomeJournal journal = journal())
        {
            final QueueRecovery.Result result = QueueRecovery.recover(index, journal);
            assertTrue(result.fromCheckpoint);
            assertEquals(7, result.journalRecords, "only what came after the checkpoint");
            assertEquals(beforeTorn, Files.size(file), "the torn entry is cut off");

            // active: 1 (taken back, recipient 0 delivered since) and 5 (its entry is not confirmed)
            final Map<Long, QueueEntry> active = new java.util.HashMap<>();
            for (final QueueEntry entry : result.active)
            {
                active.put(entry.queueId, entry);
            }
            assertEquals(java.util.Set.of(1L, 5L), active.keySet());
            assertEquals(QueueEntry.DELIVERED, active.get(1L).status[0]);
            assertEquals(2, active.get(1L).attempts);
            assertEquals(QueueEntry.READY, active.get(5L).status[0]);
            // the spool tailer meets 6 again and applies its outcome; 2 is done and skipped
            assertTrue(result.filter.get(6L).takeOnce());
            assertFalse(result.filter.get(6L).takeOnce(), "a second copy is skipped");
            assertEquals(T0 + 5_000, result.filter.get(6L).legacyDueMs());
            assertFalse(result.filter.get(2L).takeOnce());

            // deferred: 3 and 4, with their due times; 1, 2 and the unconfirmed 5 are not
            assertEquals(2, index.buckets().liveCount());
            index.applyKills(index.pendingKills().size());
            final List<QueueEntry> due = due(index, Long.MAX_VALUE);
            assertEquals(List.of(3L, 4L), due.stream().map(e -> e.queueId).toList());
            assertEquals(T0 + 3_600_003, due.get(0).dueMs);
            assertEquals(T0 + 3_600_004, due.get(1).dueMs);
        }
    }

    @Test
    void aSpoolFromBeforeTheCheckpointIsReadFromItsWholeJournal() throws Exception
    {
        // an old relay's journal: outcomes and DONE only, no deferred/ directory, no checkpoint
        try (OutcomeJournal journal = journal())
        {
            journal.recordResult(1, 0, OutcomeJournal.DEFERRED, 3, T0 + 900_000, "451 later");
            journal.recordResult(2, 0, OutcomeJournal.DELIVERED, 1, 0, "250 ok");
            journal.recordDone(2);
            journal.recordResult(3, 0, OutcomeJournal.DELIVERED, 1, 0, "250 ok");
        }
        assertFalse(Files.exists(deferredDir()));
        try (DeferredIndex index = DeferredIndex.open(deferredDir()); OutcomeJournal journal = journal())
        {
            final QueueRecovery.Result result = QueueRecovery.recover(index, journal);
            assertFalse(result.fromCheckpoint);
            assertArrayEquals(new long[] {-1}, result.spoolResumeIndexes, "the spool is read from its start");
            assertEquals(4, result.journalRecords);
            assertEquals(List.of(), result.active);
            assertEquals(0, index.buckets().liveCount());
            final QueueRecovery.Tail deferred = result.filter.get(1L);
            assertEquals(T0 + 900_000, deferred.legacyDueMs(), "its next attempt as the old journal had it");
            assertEquals(3, deferred.attempts());
            assertTrue(deferred.takeOnce());
            assertFalse(result.filter.get(2L).takeOnce(), "finished");
            final QueueEntry partly = new QueueEntry();
            partly.recipients(2);
            assertTrue(result.filter.get(3L).takeOnce());
            result.filter.get(3L).applyTo(partly, -1);
            assertEquals(QueueEntry.DELIVERED, partly.status[0]);
            assertEquals(QueueEntry.READY, partly.status[1]);
        }
    }

    @Test
    void aDamagedCheckpointMeansTheWholeJournalAndIndexAreRead() throws Exception
    {
        try (DeferredIndex index = DeferredIndex.open(deferredDir()); OutcomeJournal journal = journal())
        {
            park(index, journal, DeferredIndexTest.entry(1, T0 + 60_000, 1));
            checkpoint(index, journal);
            park(index, journal, DeferredIndexTest.entry(2, T0 + 60_001, 1));
        }
        final Path checkpoint = deferredDir().resolve(QueueCheckpoint.FILE);
        final byte[] bytes = Files.readAllBytes(checkpoint);
        bytes[20] ^= 1;
        Files.write(checkpoint, bytes);
        try (DeferredIndex index = DeferredIndex.open(deferredDir()); OutcomeJournal journal = journal())
        {
            final QueueRecovery.Result result = QueueRecovery.recover(index, journal);
            assertFalse(result.fromCheckpoint);
            assertEquals(2, result.journalRecords);
            assertEquals(2, index.buckets().liveCount(), "both entries confirmed by their SCHEDULED records");
            assertEquals(List.of(1L, 2L), due(index, Long.MAX_VALUE).stream().map(e -> e.queueId).toList());
        }
    }
}
