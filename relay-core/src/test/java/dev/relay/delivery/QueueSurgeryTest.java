package dev.relay.delivery;

import dev.relay.delivery.client.RecipientResult;
import dev.relay.smtp.QueueIds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Queue surgery ({@link QueueCommand}: hold, release, delete, requeue) on the {@link QueueManager}, stepped by hand
 * as {@link QueueManagerTest} does: {@code doWork()} from the test thread with a fake clock over a real spool and
 * journal, the test playing the delivery loops. Each command goes through the proxy, as the admin endpoint sends it.
 */
@Timeout(60)
class QueueSurgeryTest extends SteppedQueueManager
{
    private static final String ALICE = "alice@client.test";
    private static final String BOB = "bob@client.test";

    private String[] configuration;

    @Test
    void holdKeepsADueMessageFromBeingHandedOutFlushedOrExpiredAndReleaseTriesItOnceMore() throws Exception
    {
        start("delivery.retry.schedule", "1m", "queue.max_age", "30m");
        final long id = spool.write(T0, ALICE, "Subject: held\r\n\r\nbody\r\n", "bob@dest.test");
        manager.doWork();
        handBack(onlyJob(), deferred());
        manager.doWork();

        assertEquals(1, run("hold", "id=" + QueueIds.format(id)));
        assertEquals(0, run("hold", "id=" + QueueIds.format(id)), "held already: not counted again");
        clock.update(T0 + 60_000);
        stepSome();
        assertTrue(jobsOfAllLoops().isEmpty(), "due, but held");
        inbox.flush();
        stepSome();
        assertTrue(jobsOfAllLoops().isEmpty(), "a flush leaves held mail alone");
        clock.update(T0 + 2 * 3_600_000);
        stepSome();
        assertTrue(jobsOfAllLoops().isEmpty());
        assertEquals(1, manager.queuedMessages(), "past queue.max_age, but held mail does not expire");
        assertFalse(journalLog().of(id).contains("BOUNCED 0"), journalLog().of(id).toString());
        assertEquals(List.of("HELD"), journalLog().kinds(id, "HELD"));

        assertEquals(1, run("release", "id=" + QueueIds.format(id)));
        final DeliveryJob retry = onlyJob();
        assertEquals(id, retry.message.queueId(), "released: due now");
        handBack(retry, deferred());
        manager.doWork();
        assertTrue(journalLog().of(id).contains("BOUNCED 0"),
            "its age kept counting (as Postfix's): one attempt after the release, then it expires");
        stepSome();
        assertTrue(journalLog().of(id).contains("DONE"), "finished once its DSN is in the spool");
    }

    @Test
    void aMessageHeldWhileItsRoundIsOutWaitsFromTheEndOfTheRoundAndIsDeliveredOnceReleased() throws Exception
    {
        start("delivery.retry.schedule", "1m");
        final long id = spool.write(T0, ALICE, "body\r\n", "bob@dest.test", "carol@dest.test");
        manager.doWork();
        final DeliveryJob job = onlyJob();
        assertEquals(1, run("hold", "id=" + QueueIds.format(id)), "in flight: held when the round ends");
        handBack(job, delivered(), deferred());
        manager.doWork();
        clock.update(T0 + 5 * 60_000);
        stepSome();
        assertTrue(jobsOfAllLoops().isEmpty(), "held: no retry");
        assertEquals(1, manager.queuedMessages());

        assertEquals(1, run("release", "all=yes"));
        final DeliveryJob retry = onlyJob();
        assertEquals(1, retry.recipientCount(), "only the recipient still to deliver");
        handBack(retry, delivered());
        manager.doWork();
        assertEquals(0, manager.queuedMessages());
        assertTrue(journalLog().of(id).contains("DONE"));
        assertEquals(List.of("HELD", "RELEASED"), journalLog().kinds(id, "HELD", "RELEASED"));
    }

    @Test
    void aMessageWaitingInMemoryIsHeldAtOnce() throws Exception
    {
        start("delivery.retry.schedule", "5s");
        final long id = spool.write(T0, ALICE, "body\r\n", "bob@dest.test");
        manager.doWork();
        handBack(onlyJob(), deferred());
        manager.doWork();
        assertEquals(1, manager.activeMessages(), "due in 5 s: it waits in memory");
        assertEquals(1, run("hold", "sender=" + ALICE));
        assertEquals(0, manager.activeMessages(), "held: it waits in the hold bucket on disk");
        clock.update(T0 + 60_000);
        stepSome();
        assertTrue(jobsOfAllLoops().isEmpty());
        assertEquals(1, run("release", "id=" + QueueIds.format(id)));
        stepSome();
        assertEquals(id, onlyJob().message.queueId());
    }

    @Test
    void deleteFinishesWithoutADsnOnDiskAndInFlightAndARestartDoesNotBringItBack() throws Exception
    {
        start("delivery.retry.schedule", "1h");
        final long onDisk = spool.write(T0, ALICE, "body\r\n", "bob@dest.test", "carol@dest.test");
        final long inFlight = spool.write(T0, ALICE, "body\r\n", "dave@dest.test");
        final long kept = spool.write(T0, BOB, "body\r\n", "erin@dest.test");
        manager.doWork();
        DeliveryJob flying = null;
        for (final DeliveryJob job : jobsOfAllLoops())
        {
            if (job.message.queueId() == onDisk)
            {
                handBack(job, reply(RecipientResult.Status.FAILED, 550, "5.1.1", "no such user"), deferred());
            }
            else if (job.message.queueId() == kept)
            {
                handBack(job, deferred());
            }
            else
            {
                flying = job;
            }
        }
        manager.doWork();
        spool.readNew();

        assertEquals(2, run("delete", "id=" + QueueIds.format(onDisk), "id=" + QueueIds.format(inFlight),
            "operator=test: relay spool delete"));
        handBack(flying, deferred());
        stepSome();
        assertEquals(1, manager.queuedMessages(), "only the message not selected");
        assertEquals(List.of("DELETED 1", "DONE"), journalLog().kinds(onDisk, "DELETED", "DONE"),
            "the bounced recipient stays bounced; the rest is deleted");
        assertEquals(List.of("DELETED 0", "DONE"), journalLog().kinds(inFlight, "DELETED", "DONE"));
        assertTrue(spool.readNew().isEmpty(), "no DSN, although a recipient had bounced");

        // as after kill -9: no close; the start finds the deleted messages finished
        manager = null;
        loops.clear();
        clock.update(T0 + 2 * 3_600_000);
        startManager();
        manager.recover();
        stepSome();
        final List<DeliveryJob> jobs = jobsOfAllLoops();
        assertEquals(1, jobs.size());
        assertEquals(kept, jobs.get(0).message.queueId());
    }

    @Test
    void requeueMakesADeferredMessageDueNowAndEndsTheBackOffs() throws Exception
    {
        start("delivery.retry.schedule", "1h");
        final long id = spool.write(T0, ALICE, "body\r\n", "bob@dest.test");
        final long other = spool.write(T0, BOB, "body\r\n", "bob@dest.test");
        manager.doWork();
        for (final DeliveryJob job : jobsOfAllLoops())
        {
            handBack(job, deferred());
        }
        manager.doWork();
        stepSome();
        assertTrue(jobsOfAllLoops().isEmpty());
        final long flushesBefore = loops.get(0).flushRequests();

        assertEquals(1, run("requeue", "id=" + QueueIds.format(id)));
        stepSome();
        final DeliveryJob job = onlyJob();
        assertEquals(id, job.message.queueId(), "that message only");
        assertTrue(loops.get(0).flushRequests() > flushesBefore, "back-offs end, as for a flush");
        assertFalse(journalLog().kinds(other, "DONE").contains("DONE"));
    }

    @Test
    void selectionBySenderRecipientDomainAndAll() throws Exception
    {
        start("delivery.retry.schedule", "1h");
        final long m1 = spool.write(T0, ALICE, "body\r\n", "x@a.test");
        final long m2 = spool.write(T0, BOB, "body\r\n", "y@b.test");
        final long m3 = spool.write(T0, ALICE, "body\r\n", "z@B.test", "w@a.test");
        final long m4 = spool.write(T0, "", "body\r\n", "v@c.test");
        manager.doWork();
        for (final DeliveryJob job : jobsOfAllLoops())
        {
            handBack(job, job.message.queueId() == m3 ? new RecipientResult[] {deferred(), delivered()} :
                new RecipientResult[] {deferred()});
        }
        manager.doWork();

        assertEquals(2, run("hold", "sender=ALICE@client.test"), "m1, m3 (the address case-insensitive)");
        assertEquals(1, run("hold", "recipient-domain=b.test"), "m2; m3 is held already");
        assertEquals(0, run("hold", "recipient-domain=a.test"), "m1 held; m3's a.test recipient is delivered");
        assertEquals(1, run("hold", "sender=<>"), "m4, from the null sender");
        assertEquals(0, run("hold", "sender=<" + BOB + ">"), "m2 held already; brackets are optional");
        assertEquals(0, run("requeue", "all=yes"), "held mail is not requeued");
        assertEquals(1, run("release", "sender=" + BOB, "recipient-domain=b.test"), "both must match: m2");
        assertEquals(3, run("release", "all=yes"));
        assertEquals(4, run("requeue", "all=yes"));
        final Set<Long> due = new HashSet<>();
        for (final DeliveryJob job : jobsOfAllLoops())
        {
            due.add(job.message.queueId());
        }
        assertEquals(Set.of(m1, m2, m3, m4), due);
        assertThrows(IllegalArgumentException.class, () -> QueueCommand.parse("hold", "all=yes\nsender=a@b"));
        assertThrows(IllegalArgumentException.class, () -> QueueCommand.parse("hold", ""));
        assertThrows(IllegalArgumentException.class, () -> QueueCommand.parse("purge", "all=yes"));
        assertThrows(IllegalArgumentException.class, () -> QueueCommand.parse("hold", "id=not-an-id"));
    }

    @Test
    void heldMailStaysHeldAfterARestartOnDiskAndInFlight() throws Exception
    {
        start("delivery.retry.schedule", "1m");
        final long onDisk = spool.write(T0, ALICE, "body\r\n", "bob@dest.test");
        final long inFlight = spool.write(T0, ALICE, "body\r\n", "carol@dest.test");
        final long free = spool.write(T0, BOB, "body\r\n", "dave@dest.test");
        manager.doWork();
        for (final DeliveryJob job : jobsOfAllLoops())
        {
            if (job.message.queueId() != inFlight)
            {
                handBack(job, deferred());
            }
        }
        manager.doWork();
        assertEquals(2, run("hold", "sender=" + ALICE));

        // as after kill -9: the job in flight never comes back, no close
        manager = null;
        loops.clear();
        clock.update(T0 + 10 * 60_000);
        startManager();
        manager.recover();
        stepSome();
        final List<DeliveryJob> jobs = jobsOfAllLoops();
        assertEquals(1, jobs.size(), "the held ones stay held");
        assertEquals(free, jobs.get(0).message.queueId());
        handBack(jobs.get(0), delivered());
        stepSome();
        assertEquals(2, manager.queuedMessages());

        // and after a clean stop, from the checkpoint
        manager.onClose();
        manager = null;
        loops.clear();
        startManager();
        manager.recover();
        stepSome();
        assertTrue(jobsOfAllLoops().isEmpty());
        assertEquals(2, run("release", "all=yes"));
        final Set<Long> due = new HashSet<>();
        for (final DeliveryJob job : jobsOfAllLoops())
        {
            due.add(job.message.queueId());
        }
        assertEquals(Set.of(onDisk, inFlight), due);
    }

    // ---- the test's side of the proxies

    /** Sends a command as the admin endpoint does, lets the queue manager run it, and says how many it touched. */
    private int run(final String verb, final String... lines)
    {
        final QueueCommand command = QueueCommand.parse(verb, String.join("\n", lines));
        assertTrue(inbox.submit(command));
        manager.doWork();
        return command.touchedNow();
    }

    private void stepSome()
    {
        for (int i = 0; i < 5; i++)
        {
            manager.doWork();
        }
    }

    private void start(final String... keyValues) throws Exception
    {
        openSpool();
        configuration = keyValues;
        startManager();
    }

    /** A queue manager (again, after a "restart") with one more delivery loop and the configuration of start(). */
    private void startManager() throws Exception
    {
        startManager(1, configuration);
    }

    private static RecipientResult delivered()
    {
        return reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok");
    }

    private static RecipientResult deferred()
    {
        return reply(RecipientResult.Status.DEFERRED, 451, "4.3.0", "try later");
    }

}
