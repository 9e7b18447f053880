package dev.relay.delivery;

import dev.relay.config.TlsLevel;
import dev.relay.smtp.QueueIds;
import dev.relay.delivery.client.RecipientResult;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.SpoolRecords;
import dev.relay.spool.SpooledMessage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@link QueueManager} stepped by hand: {@link QueueManager#doWork()} called from the test thread with a fake
 * clock, no sockets and no delivery loop thread. The test plays the delivery loops — it takes the jobs from their
 * {@link DeliveryLoopProxy}s, writes an outcome into each as a loop does, and hands it back through the
 * {@link QueueManagerProxy} — over a real spool and a real outcome journal in a temporary directory.
 */
@Timeout(60)
class QueueManagerTest extends SteppedQueueManager
{
    private static final String SENDER = "alice@client.test";


    @Test
    void newMailBecomesOneJobPerHopAndTransactionOnTheLoopThatOwnsTheHop() throws Exception
    {
        start(2, "delivery.routes", "a.test=[127.0.0.1]:2001,b.test=[127.0.0.1]:2002",
            "delivery.max_recipients_per_transaction", "2");
        spool.write(T0, SENDER, "body\r\n", "r1@a.test", "r2@b.test", "r3@a.test", "r4@a.test");
        manager.doWork();

        final NextHop a = NextHop.direct("127.0.0.1", 2001, TlsLevel.MAY);
        final NextHop b = NextHop.direct("127.0.0.1", 2002, TlsLevel.MAY);
        final List<DeliveryJob> onA = jobs(loops.get(Math.floorMod(a.key().hashCode(), 2)));
        final List<DeliveryJob> onB = jobs(loops.get(Math.floorMod(b.key().hashCode(), 2)));
        final Map<String, List<int[]>> byHop = new HashMap<>();
        for (final DeliveryJob job : concat(onA, onB))
        {
            byHop.computeIfAbsent(job.nextHop.key(), ignored -> new ArrayList<>()).add(job.recipientIndexes);
        }
        assertEquals(2, byHop.get(a.key()).size(), "three recipients of a.test, two per transaction");
        assertArrayEquals(new int[] {0, 2}, byHop.get(a.key()).get(0));
        assertArrayEquals(new int[] {3}, byHop.get(a.key()).get(1));
        assertEquals(1, byHop.get(b.key()).size());
        assertArrayEquals(new int[] {1}, byHop.get(b.key()).get(0));
        assertEquals(1, manager.queuedMessages());
        assertEquals(0, step(), "nothing more to do");
    }

    @Test
    void deliveredOutcomesAreJournaledAtOnceAndTheMessageIsRemoved() throws Exception
    {
        start(1);
        final long id = spool.write(T0, SENDER, "body\r\n", "bob@dest.test", "carol@dest.test");
        manager.doWork();
        final DeliveryJob job = onlyJob();
        assertEquals(2, job.recipientCount(), "one hop, one transaction");

        handBack(job, reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"));
        manager.doWork();
        assertEquals(0, manager.queuedMessages());
        final JournalLog log = journalLog();
        assertEquals(List.of("DELIVERED 0", "DELIVERED 1", "DONE"), log.of(id));
    }

    @Test
    void aDeferredRecipientIsRetriedOnTheScheduleAndTheJournalSaysWhen() throws Exception
    {
        start(1, "delivery.retry.schedule", "1m,5m");
        final long id = spool.write(T0, SENDER, "body\r\n", "bob@dest.test", "carol@dest.test");
        manager.doWork();
        handBack(onlyJob(), reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"),
            reply(RecipientResult.Status.DEFERRED, 451, "4.3.0", "try later"));
        manager.doWork();
        assertEquals(List.of("DELIVERED 0", "SCHEDULED attempts=1 next=" + (T0 + 60_000)), journalLog().of(id),
            "a minute away: it waits on disk, and the journal says where and until when");
        assertNull(loops.get(0).pollJob());

        clock.update(T0 + 59_999);
        manager.doWork();
        assertNull(loops.get(0).pollJob(), "not due yet");
        clock.update(T0 + 60_000);
        manager.doWork();
        final DeliveryJob retry = onlyJob();
        assertArrayEquals(new int[] {1}, retry.recipientIndexes, "only the deferred recipient");

        handBack(retry, reply(RecipientResult.Status.DEFERRED, 451, "4.3.0", "still later"));
        manager.doWork();
        assertTrue(journalLog().of(id).contains("SCHEDULED attempts=2 next=" + (T0 + 60_000 + 300_000)),
            journalLog().of(id).toString());
        clock.update(T0 + 60_000 + 300_000);
        manager.doWork();
        handBack(onlyJob(), reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"));
        manager.doWork();
        assertEquals(0, manager.queuedMessages());
        assertTrue(journalLog().of(id).contains("DONE"));
    }

    @Test
    void pastTheMaximumAgeDeferredRecipientsBounceWithOneDsnToTheSender() throws Exception
    {
        start(1, "delivery.retry.schedule", "20m", "queue.max_age", "30m");
        final long id = spool.write(T0, SENDER, "Subject: old\r\n\r\nbody\r\n", "bob@dest.test");
        manager.doWork();
        handBack(onlyJob(), reply(RecipientResult.Status.DEFERRED, 451, "4.3.0", "busy"));
        manager.doWork();
        clock.update(T0 + 20 * 60_000);
        manager.doWork();
        handBack(onlyJob(), reply(RecipientResult.Status.DEFERRED, 451, "4.3.0", "busy"));
        manager.doWork();
        assertEquals(1, manager.queuedMessages(), "20 minutes old: retried");
        clock.update(T0 + 40 * 60_000);
        manager.doWork();
        handBack(onlyJob(), reply(RecipientResult.Status.DEFERRED, 451, "4.3.0", "busy"));
        manager.doWork();

        assertTrue(journalLog().of(id).contains("BOUNCED 0"), journalLog().of(id).toString());
        assertTrue(journalLog().of(id).contains("DONE"));
        final SpooledMessage dsn = onlyDsn();
        final String text = new String(spool.body(dsn), StandardCharsets.UTF_8);
        assertTrue(text.contains("Status: 5.4.7"), text);
        assertTrue(text.contains("expired"), text);
    }

    @Test
    void aBouncedRecipientGetsTheSenderADsnAndTheNullSenderNone() throws Exception
    {
        start(1);
        final long id = spool.write(T0, SENDER, "Subject: hi\r\n\r\nbody\r\n", "bob@dest.test", "nobody@dest.test");
        final long fromNull = spool.write(T0, "", "Subject: dsn\r\n\r\nbody\r\n", "nobody@dest.test");
        manager.doWork();
        final List<DeliveryJob> jobs = jobs(loops.get(0));
        assertEquals(2, jobs.size());
        for (final DeliveryJob job : jobs)
        {
            if (job.message.queueId() == id)
            {
                handBack(job, reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"),
                    reply(RecipientResult.Status.FAILED, 550, "5.1.1", "no such user"));
            }
            else
            {
                handBack(job, reply(RecipientResult.Status.FAILED, 550, "5.1.1", "no such user"));
            }
        }
        manager.doWork();

        final SpooledMessage dsn = onlyDsn();
        assertArrayEquals(SENDER.getBytes(StandardCharsets.US_ASCII), dsn.recipients().get(0));
        assertEquals(SpoolRecords.ORIGIN_DSN, dsn.origin(), "the relay made it; no client sent it");
        assertEquals(0, dsn.clientAddress().length);
        final String text = new String(spool.body(dsn), StandardCharsets.UTF_8);
        assertTrue(text.contains("Final-Recipient: rfc822; nobody@dest.test"), text);
        assertFalse(text.contains("Final-Recipient: rfc822; bob@dest.test"), text);
        assertTrue(text.contains("Remote-MTA: dns; mx.dest.test"), text);
        assertTrue(text.contains("550 5.1.1 no such user"), text);
        assertTrue(journalLog().of(id).contains("DONE"));
        assertTrue(journalLog().of(fromNull).contains("DONE"), "the null sender's bounce is final without a DSN");
        manager.doWork();
        assertEquals(1, manager.queuedMessages(), "only the DSN is queued now");
        assertEquals(QueueIds.DSN_GENERATOR, QueueIds.generatorOf(onlyJob().message.queueId()),
            "the DSN is delivered like any message");
    }

    @Test
    void aDelayWarningGoesOnceWhenAMessageIsStillDeferredAfterTheWarningTime() throws Exception
    {
        start(1, "delivery.retry.schedule", "10m", "delivery.delay_warning", "15m");
        spool.write(T0, SENDER, "Subject: slow\r\n\r\nbody\r\n", "bob@dest.test");
        for (int round = 0; round < 3; round++)
        {
            clock.update(T0 + round * 10 * 60_000L);
            manager.doWork();
            handBack(onlyJob(), reply(RecipientResult.Status.DEFERRED, 451, "4.3.0", "busy"));
            manager.doWork();
        }
        final SpooledMessage warning = onlyDsn();
        final String text = new String(spool.body(warning), StandardCharsets.UTF_8);
        assertTrue(text.contains("Action: delayed"), text);
        manager.doWork();
        assertEquals(2, manager.queuedMessages(), "the message is still retried, beside its warning");
    }

    @Test
    void aRestartResumesFromTheJournal() throws Exception
    {
        start(1, "delivery.retry.schedule", "1m");
        final long id = spool.write(T0, SENDER, "body\r\n", "bob@dest.test", "carol@dest.test");
        final long finished = spool.write(T0, SENDER, "body\r\n", "dave@dest.test");
        manager.doWork();
        for (final DeliveryJob job : jobs(loops.get(0)))
        {
            if (job.message.queueId() == id)
            {
                handBack(job, reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"),
                    reply(RecipientResult.Status.DEFERRED, 451, "4.3.0", "later"));
            }
            else
            {
                handBack(job, reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"));
            }
        }
        manager.doWork();
        // as after kill -9: no close, the journal as written so far
        manager = null;
        loops.clear();

        clock.update(T0 + 30_000);
        startManager(1, "delivery.retry.schedule", "1m");
        assertTrue(manager.recover() >= 4, "the journal's records were replayed");
        manager.doWork();
        assertNull(loops.get(0).pollJob(), "the deferred recipient waits for its time; the finished message is done");
        assertEquals(1, manager.queuedMessages());
        clock.update(T0 + 60_000);
        manager.doWork();
        final DeliveryJob retry = onlyJob();
        assertEquals(id, retry.message.queueId());
        assertArrayEquals(new int[] {1}, retry.recipientIndexes, "the delivered recipient is not sent again");
        assertFalse(journalLog().of(finished).isEmpty());
    }

    @Test
    void aFinishedMessageWithTwoCopiesInTheSpoolIsNotDeliveredAgainAfterARestart() throws Exception
    {
        // a message moved forward and then delivered: both copies are in the spool until the old cycle is deleted
        start(1, "delivery.retry.schedule", "1m");
        final long id = spool.write(T0, SENDER, "body\r\n", "bob@dest.test");
        spool.writeAs(id, T0, SENDER, "body\r\n", "bob@dest.test");
        manager.doWork();
        handBack(onlyJob(), reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"));
        manager.doWork();
        manager.doWork();
        assertEquals(0, manager.queuedMessages());
        manager = null;
        loops.clear();

        startManager(1, "delivery.retry.schedule", "1m");
        manager.recover();
        for (int i = 0; i < 5; i++)
        {
            manager.doWork();
        }
        assertNull(loops.get(0).pollJob(), "neither copy of a finished message is delivered again");
        assertEquals(0, manager.queuedMessages());
    }

    @Test
    void aMovedCopyReadAfterTheMessageFinishedIsNotDeliveredAgain() throws Exception
    {
        // the tailer may meet a moved copy of a message (written by a move forward, ORIGIN_REQUEUE) after the
        // message finished: the message reads from that copy only when it was moved, never starts again from it
        start(1, "delivery.retry.schedule", "1m");
        final long id = spool.write(T0, SENDER, "body\r\n", "bob@dest.test");
        for (int i = 0; i < QueueManager.SPOOL_POLL_LIMIT + 50; i++)
        {
            spool.write(T0, SENDER, "body\r\n", "other" + i + "@dest.test");
        }
        spool.writeMovedCopy(id, T0, SENDER, "body\r\n", "bob@dest.test");
        manager.doWork();
        final List<DeliveryJob> first = jobsOfAllLoops();
        final DeliveryJob job = first.stream().filter(j -> j.message.queueId() == id).findFirst().orElseThrow();
        handBack(job, reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"));
        for (int i = 0; i < 5; i++)
        {
            manager.doWork();
        }
        assertTrue(jobsOfAllLoops().stream().noneMatch(j -> j.message.queueId() == id),
            "the later copy of the finished message is not delivered again");
        assertEquals(QueueManager.SPOOL_POLL_LIMIT + 50, manager.queuedMessages());
    }

    @Test
    void aFlushMakesDeferredMailDueNowAndEndsTheLoopsBackOffsFirst() throws Exception
    {
        start(2, "delivery.retry.schedule", "1h");
        spool.write(T0, SENDER, "body\r\n", "bob@dest.test");
        manager.doWork();
        final DeliveryJob first = jobsOfAllLoops().get(0);
        handBack(first, reply(RecipientResult.Status.DEFERRED, 421, "4.4.2", "closing"));
        manager.doWork();
        assertTrue(jobsOfAllLoops().isEmpty());

        inbox.flush();
        manager.doWork();
        assertEquals(1, jobsOfAllLoops().size(), "due at once");
        for (final DeliveryLoopProxy loop : loops)
        {
            assertEquals(1, loop.flushRequests(), "every loop was asked to end its back-offs");
        }
    }

    @Test
    void aDrainStartsNothingNewButStillJournalsWhatComesBack() throws Exception
    {
        start(1);
        final long id = spool.write(T0, SENDER, "body\r\n", "bob@dest.test");
        manager.doWork();
        final DeliveryJob job = onlyJob();
        inbox.drain();
        spool.write(T0, SENDER, "body\r\n", "carol@dest.test");
        manager.doWork();
        assertTrue(loops.get(0).drainRequested());
        handBack(job, reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"));
        manager.doWork();
        assertNull(loops.get(0).pollJob(), "the new message waits for the next start");
        assertTrue(journalLog().of(id).contains("DONE"));
    }

    @Test
    void aCycleLeftWithLittleLiveMailIsMovedOutOfAndDeletedWhileAFullOneStays() throws Exception
    {
        spool = TestSpool.open(dir.resolve("spool"), "secondly");
        journal = OutcomeJournal.open(dir.resolve("spool").resolve("journal"), "secondly");
        startManager(1, "delivery.retry.schedule", "1h", "queue.roll_cycle", "secondly");
        // one cycle: one message deferred, four delivered (a fifth of it stays live); the next: two, both deferred
        awaitStartOfSecond();
        final long deferred = spool.write(T0, SENDER, "body\r\n", "bob@dest.test");
        final List<Long> delivered = new ArrayList<>();
        for (int i = 0; i < 4; i++)
        {
            delivered.add(spool.write(T0, SENDER, "body\r\n", "carol@dest.test"));
        }
        manager.doWork();
        final List<DeliveryJob> jobs = jobs(loops.get(0));
        final int sparseCycle = spool.spool().cycleOf(jobs.get(0).message.startIndex());
        for (final DeliveryJob job : jobs)
        {
            assertEquals(sparseCycle, spool.spool().cycleOf(job.message.startIndex()), "written within a second");
            handBack(job, reply(job.message.queueId() == deferred ? RecipientResult.Status.DEFERRED :
                RecipientResult.Status.DELIVERED, 451, null, "later"));
        }
        manager.doWork();
        awaitStartOfSecond();
        final long fullA = spool.write(T0, SENDER, "body\r\n", "dave@dest.test");
        final long fullB = spool.write(T0, SENDER, "body\r\n", "erin@dest.test");
        manager.doWork();
        final List<DeliveryJob> fullJobs = jobs(loops.get(0));
        final int fullCycle = spool.spool().cycleOf(fullJobs.get(0).message.startIndex());
        for (final DeliveryJob job : fullJobs)
        {
            assertEquals(fullCycle, spool.spool().cycleOf(job.message.startIndex()), "written within a second");
            handBack(job, reply(RecipientResult.Status.DEFERRED, 451, null, "later"));
        }
        manager.doWork();
        assertEquals(3, manager.queuedMessages());
        assertEquals(3, manager.deferredMessages(), "an hour away: on disk");
        assertTrue(journalLog().of(delivered.get(0)).contains("DONE"));

        // the wall clock (Chronicle's cycles) moves two cycles on; the fake clock brings the housekeeping
        while (spool.spool().currentCycle() < fullCycle + 2)
        {
            Thread.sleep(50);
        }
        long now = T0;
        for (int pass = 0; pass < 20 && cycleFiles().contains(sparseCycle); pass++)
        {
            now += 1_000;
            clock.update(now);
            manager.doWork();
        }
        assertFalse(cycleFiles().contains(sparseCycle), "the sparse cycle was deleted once its message moved");
        assertTrue(cycleFiles().contains(fullCycle), "a cycle whose mail is all live stays: nothing to gain");
        assertEquals(3, manager.queuedMessages(), "the moved message lives on in its copy");
        assertEquals(3, manager.deferredMessages(), "back on disk after the move");
        assertTrue(journalLog().of(deferred).contains("ACTIVATED"), "taken from disk to be moved");

        inbox.flush();
        manager.doWork();
        final List<DeliveryJob> flushed = jobsOfAllLoops();
        assertEquals(3, flushed.size());
        for (final DeliveryJob job : flushed)
        {
            if (job.message.queueId() == deferred)
            {
                assertTrue(spool.spool().cycleOf(job.message.startIndex()) > fullCycle, "delivered from the copy");
                assertEquals(SpoolRecords.ORIGIN_REQUEUE, job.message.origin());
            }
            else
            {
                assertTrue(job.message.queueId() == fullA || job.message.queueId() == fullB);
                assertEquals(fullCycle, spool.spool().cycleOf(job.message.startIndex()), "never moved");
            }
        }
    }

    /** Waits until the wall clock is early in a second, so that a few writes land in one secondly cycle. */
    private static void awaitStartOfSecond() throws InterruptedException
    {
        final long second = System.currentTimeMillis() / 1000;
        while (System.currentTimeMillis() / 1000 == second)
        {
            Thread.sleep(5);
        }
    }

    // ---- the test's side of the proxies

    private void start(final int loopCount, final String... keyValues) throws Exception
    {
        openSpool();
        startManager(loopCount, keyValues);
    }

    private int step()
    {
        return manager.doWork();
    }

    /** The one message from the null sender that the relay itself wrote to the spool since the last look. */
    private SpooledMessage onlyDsn()
    {
        final List<SpooledMessage> dsns = new ArrayList<>();
        for (final SpooledMessage message : spool.readNew())
        {
            if (message.reversePath().length == 0 && QueueIds.generatorOf(message.queueId()) == QueueIds.DSN_GENERATOR)
            {
                dsns.add(message);
            }
        }
        assertEquals(1, dsns.size(), "one DSN");
        return dsns.get(0);
    }

    /** The secondly cycles that have a spool file, by Chronicle's cycle number (seconds since 1970). */
    private List<Integer> cycleFiles() throws Exception
    {
        final java.time.format.DateTimeFormatter format = java.time.format.DateTimeFormatter
            .ofPattern(dev.relay.spool.Spool.rollCycle("secondly").format()).withZone(java.time.ZoneOffset.UTC);
        final List<Integer> cycles = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir.resolve("spool")))
        {
            files.map(path -> path.getFileName().toString()).filter(name -> name.endsWith(".cq4")).forEach(name ->
                cycles.add((int)java.time.Instant.from(format.parse(name.substring(0, name.length() - 4)))
                    .getEpochSecond()));
        }
        return cycles;
    }

    private static <T> List<T> concat(final List<T> first, final List<T> second)
    {
        final List<T> all = new ArrayList<>(first);
        all.addAll(second);
        return all;
    }
}
