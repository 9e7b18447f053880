package dev.relay.delivery;

import dev.relay.delivery.client.RecipientResult;
import dev.relay.spool.OutcomeJournal;
import dev.relay.testing.DeliveryCounts;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How the {@link QueueManager} hands out a backlog made due at once (a flush after its destination came back) beside
 * fresh mail, stepped by hand: new mail is taken between slices of the backlog, not after a pass of it, and the mail
 * taken back from the deferred queue holds only its share of the active set, handed out again as results come back;
 * the kills a durable checkpoint allows go a slice a pass, and a crash among them loses and repeats nothing.
 */
@Timeout(60)
class BacklogHandOutTest extends SteppedQueueManager
{
    private static final String SENDER = "alice@client.test";
    private static final String ROUTES = "backlog.test=[127.0.0.1]:2001,fresh.test=[127.0.0.1]:2002";

    @Test
    void freshMailArrivingWhileABacklogIsTakenBackIsHandedOutAfterOneSliceOfIt() throws Exception
    {
        openSpool();
        // one loop: the backlog's hop and the fresh mail's share its job queue, the worst case
        startManager(1, "delivery.retry.schedule", "1h", "delivery.routes", ROUTES);
        final int backlog = 600;
        deferOnDisk(backlog);

        // the fresh message reaches the spool while the queue manager is handing out the backlog
        final int[] sent = {0};
        final long[] fresh = {0};
        onJobSent = () ->
        {
            if (++sent[0] == 5)
            {
                fresh[0] = spool.write(T0, SENDER, "body\r\n", "carol@fresh.test");
            }
        };
        inbox.flush();
        manager.doWork();
        onJobSent = () -> { };

        final List<DeliveryJob> handedOut = jobs(loops.get(0));
        int position = -1;
        for (int i = 0; i < handedOut.size(); i++)
        {
            if (handedOut.get(i).message.queueId() == fresh[0])
            {
                position = i;
            }
        }
        assertTrue(position >= 0, "the fresh message went out in the same pass as the backlog (" +
            handedOut.size() + " jobs)");
        assertTrue(position <= 5 + QueueManager.SLICE, "after at most one slice of the backlog: at " + position);
        assertTrue(handedOut.size() > position + 1, "the backlog went on after it");
        assertEquals("fresh.test", domainOf(handedOut.get(position)));
    }

    @Test
    void mailTakenBackHoldsItsShareOfTheActiveSetAndNewMailGoesOutBesideIt() throws Exception
    {
        openSpool();
        final int activeLimit = 160;
        final int share = activeLimit / QueueManager.DEFERRED_SHARE_DIVISOR;
        startManager(1, "delivery.retry.schedule", "1h", "delivery.routes", ROUTES, "queue.active_limit",
            Integer.toString(activeLimit));
        final int backlog = 100;
        final List<Long> backlogIds = deferOnDisk(backlog);

        inbox.flush();
        manager.doWork();
        final Map<Long, Integer> delivered = new HashMap<>();
        List<DeliveryJob> out = jobs(loops.get(0));
        assertEquals(share, out.size(), "a flush takes back the deferred queue's share of the active set");
        int passes = 0;
        int freshSent = 0;
        final List<Long> freshIds = new ArrayList<>();
        while (delivered.size() < backlog + freshIds.size() && passes++ < 1_000)
        {
            // the loop finishes a few transactions a pass; fresh mail keeps arriving; neither waits for the other
            final long freshId = spool.write(T0, SENDER, "body\r\n", "fresh" + freshSent++ + "@fresh.test");
            freshIds.add(freshId);
            final int inFlight = countTakenBack(out);
            assertTrue(inFlight <= share, "mail taken back in flight: " + inFlight);
            for (int i = 0; i < Math.min(3, out.size()); i++)
            {
                final DeliveryJob job = out.remove(0);
                delivered.merge(job.message.queueId(), 1, Integer::sum);
                handBack(job, reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"));
            }
            manager.doWork();
            final List<DeliveryJob> next = jobs(loops.get(0));
            assertTrue(next.stream().anyMatch(job -> job.message.queueId() == freshId),
                "the fresh message went out in the pass that found it");
            out.addAll(next);
        }
        for (final DeliveryJob job : out)
        {
            delivered.merge(job.message.queueId(), 1, Integer::sum);
        }
        final List<Long> all = new ArrayList<>(backlogIds);
        all.addAll(freshIds);
        DeliveryCounts.of(all, id -> delivered.getOrDefault(id, 0)).assertEachOnce("lost");
    }

    @Test
    void aCrashWhileTheKillsOfADurableCheckpointAreSpreadOverPassesLosesAndRepeatsNothing() throws Exception
    {
        openSpool();
        startManager(1, "delivery.retry.schedule", "1h", "delivery.routes", ROUTES);
        final int backlog = 600;
        final List<Long> ids = deferOnDisk(backlog);
        inbox.flush();
        final Map<Long, Integer> handedOut = new HashMap<>();
        for (int pass = 0; pass < 10; pass++)
        {
            manager.doWork();
            for (final DeliveryJob job : jobsOfAllLoops())
            {
                handedOut.merge(job.message.queueId(), 1, Integer::sum);
            }
        }
        assertEquals(backlog, handedOut.size(), "the backlog is out, taken from disk");
        // a checkpoint naming the 600 entries taken; a second later it is durable and their kills begin, a slice a
        // pass: the queue manager dies after the first slice
        clock.update(T0 + 2_000);
        manager.doWork();
        clock.update(T0 + 3_000);
        manager.doWork();
        assertEquals(backlog - QueueCheckpointer.KILLS_PER_PASS, manager.checkpointKillsLeft(),
            "one slice of the kills done");
        manager = null;
        loops.clear();

        clock.update(T0 + 4_000);
        startManager(1, "delivery.retry.schedule", "1h", "delivery.routes", ROUTES);
        manager.recover();
        final Map<Long, Integer> again = new HashMap<>();
        for (int pass = 0; pass < 10; pass++)
        {
            manager.doWork();
            for (final DeliveryJob job : jobsOfAllLoops())
            {
                again.merge(job.message.queueId(), 1, Integer::sum);
                handBack(job, reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"));
            }
        }
        DeliveryCounts.of(ids, id -> again.getOrDefault(id, 0))
            .assertEachOnce("in flight at the crash: each handed out again");
        assertEquals(0, manager.queuedMessages(), "none left on disk to come back");
    }

    @Test
    void aFlushWhoseCyclesTurnSparseAsItDrainsDeliversEveryMessageOnce() throws Exception
    {
        // a backlog in one spool cycle, flushed once that cycle is old: as the flush delivers it the cycle turns
        // sparse, and the housekeeping would pull the entries not yet taken back to move them forward; mail pulled
        // then missed the flush (parked again at its old time, an hour away, once the flush had ended)
        spool = TestSpool.open(dir.resolve("spool"), "secondly");
        journal = OutcomeJournal.open(dir.resolve("spool").resolve("journal"), "secondly");
        startManager(1, "delivery.retry.schedule", "1h", "delivery.routes", ROUTES, "queue.active_limit", "160",
            "queue.roll_cycle", "secondly");
        final int backlog = 100;
        final List<Long> ids = deferOnDisk(backlog);
        final int lastCycle = spool.spool().currentCycle();
        final long cyclesDeadline = System.nanoTime() + 10_000_000_000L;
        while (spool.spool().currentCycle() < lastCycle + 2 && System.nanoTime() < cyclesDeadline)
        {
            // the wall clock (Chronicle's cycles) moves on: the backlog's cycle becomes one that may be moved out of
            Thread.sleep(50);
        }

        inbox.flush();
        final Map<Long, Integer> delivered = new HashMap<>();
        final List<DeliveryJob> out = new ArrayList<>();
        long now = T0;
        for (int pass = 0; pass < 500 && (delivered.size() < backlog || !out.isEmpty()); pass++)
        {
            // a second a pass, so the housekeeping (moves, checkpoints) runs every pass; three transactions end
            now += 1_000;
            clock.update(now);
            manager.doWork();
            out.addAll(jobsOfAllLoops());
            for (int i = 0; i < Math.min(3, out.size()); i++)
            {
                final DeliveryJob job = out.remove(0);
                delivered.merge(job.message.queueId(), 1, Integer::sum);
                handBack(job, reply(RecipientResult.Status.DELIVERED, 250, "2.0.0", "ok"));
            }
        }
        manager.doWork();
        DeliveryCounts.of(ids, id -> delivered.getOrDefault(id, 0))
            .assertEachOnce("lost (still deferred: " + manager.deferredMessages() + ")");
        assertEquals(0, manager.deferredMessages(), "deferred");
        assertEquals(0, manager.queuedMessages(), "queued");
    }

    /** Writes {@code count} messages for backlog.test, has each deferred for an hour: they wait on disk. */
    private List<Long> deferOnDisk(final int count)
    {
        final List<Long> ids = new ArrayList<>();
        for (int i = 0; i < count; i++)
        {
            ids.add(spool.write(T0, SENDER, "body\r\n", "r" + i + "@backlog.test"));
        }
        int handedBack = 0;
        for (int pass = 0; handedBack < count && pass < 100; pass++)
        {
            manager.doWork();
            for (final DeliveryJob job : jobsOfAllLoops())
            {
                handBack(job, reply(RecipientResult.Status.DEFERRED, 421, "4.4.2", "not now"));
                handedBack++;
            }
        }
        manager.doWork();
        assertEquals(count, handedBack);
        assertEquals(count, manager.deferredMessages(), "an hour away: on disk");
        assertEquals(0, manager.activeMessages());
        return ids;
    }

    private static int countTakenBack(final List<DeliveryJob> out)
    {
        int count = 0;
        for (final DeliveryJob job : out)
        {
            count += "backlog.test".equals(domainOf(job)) ? 1 : 0;
        }
        return count;
    }

    private static String domainOf(final DeliveryJob job)
    {
        final String recipient = new String(job.message.recipients().get(job.recipientIndexes[0]),
            StandardCharsets.US_ASCII);
        return recipient.substring(recipient.indexOf('@') + 1);
    }
}
