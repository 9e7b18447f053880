package dev.relay.delivery;

import dev.relay.config.RelayConfig;
import dev.relay.delivery.client.RecipientResult;
import dev.relay.delivery.client.TransactionResult;
import dev.relay.metrics.RelayMetrics;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.SpoolInjector;
import org.agrona.concurrent.CachedEpochClock;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the tests of a {@link QueueManager} stepped by hand share ({@link QueueManagerTest}, {@link QueueSurgeryTest}):
 * a real spool and outcome journal in a temporary directory, a fake clock, and the test's side of the proxies — it
 * plays the delivery loops, taking the jobs from their {@link DeliveryLoopProxy}s and handing each back with an
 * outcome written into it as a loop does. {@code doWork()} runs on the test thread; no socket, no other thread.
 */
abstract class SteppedQueueManager
{
    static final long T0 = 1_800_000_000_000L;
    static final HopAddress SINK = new HopAddress("mx.dest.test", 10, new InetSocketAddress("127.0.0.1", 2525));

    @TempDir
    Path dir;

    final CachedEpochClock clock = new CachedEpochClock();
    final List<DeliveryLoopProxy> loops = new ArrayList<>();
    TestSpool spool;
    OutcomeJournal journal;
    QueueManagerProxy inbox;
    QueueManager manager;
    /** Runs on every job a proxy hands its loop's queue (the loop's wakeup), inside {@code doWork()}. */
    Runnable onJobSent = () -> { };
    private SpoolInjector injector;

    @AfterEach
    void close()
    {
        if (manager != null)
        {
            manager.onClose();
        }
        if (journal != null)
        {
            journal.close();
        }
        if (spool != null)
        {
            spool.close();
        }
    }

    /** Opens the spool and the journal in {@code dir/spool}, daily cycles. */
    void openSpool() throws IOException
    {
        spool = TestSpool.open(dir.resolve("spool"));
        journal = OutcomeJournal.open(dir.resolve("spool").resolve("journal"), "daily");
    }

    /**
     * A queue manager (a new one after a "restart") over the open spool and journal, with {@code loopCount} more
     * delivery loop proxies, routing every domain to 127.0.0.1:2525 unless {@code keyValues} (key, value pairs of
     * the configuration) say otherwise. The clock starts at {@link #T0}.
     */
    void startManager(final int loopCount, final String... keyValues) throws Exception
    {
        final Map<String, String> values = new LinkedHashMap<>();
        values.put("smtp.hostname", "relay.test");
        values.put("queue.dir", dir.resolve("spool").toString());
        values.put("delivery.routes", "*=[127.0.0.1]:2525");
        for (int i = 0; i + 1 < keyValues.length; i += 2)
        {
            values.put(keyValues[i], keyValues[i + 1]);
        }
        final RelayConfig config = RelayConfig.fromMap(values);
        if (clock.time() == 0)
        {
            clock.update(T0);
        }
        for (int i = 0; i < loopCount; i++)
        {
            loops.add(new DeliveryLoopProxy(() -> onJobSent.run()));
        }
        inbox = QueueManagerProxy.create();
        if (injector == null)
        {
            injector = spool.spool().newInjector(() -> { }, "relay.test");
        }
        final Bouncer bouncer = new Bouncer("relay.test", injector, spool.spool());
        manager = new QueueManager(config.queue(), spool.spool(), journal, bouncer, inbox, loops, new RelayMetrics(),
            clock);
    }

    static List<DeliveryJob> jobs(final DeliveryLoopProxy loop)
    {
        final List<DeliveryJob> jobs = new ArrayList<>();
        DeliveryJob job;
        while ((job = loop.pollJob()) != null)
        {
            jobs.add(job);
        }
        return jobs;
    }

    List<DeliveryJob> jobsOfAllLoops()
    {
        final List<DeliveryJob> all = new ArrayList<>();
        for (final DeliveryLoopProxy loop : loops)
        {
            all.addAll(jobs(loop));
        }
        return all;
    }

    DeliveryJob onlyJob()
    {
        final List<DeliveryJob> jobs = jobsOfAllLoops();
        assertEquals(1, jobs.size(), "one job");
        return jobs.get(0);
    }

    /** Writes the outcome into {@code job} as its delivery loop does, one reply per recipient (the last repeats). */
    void handBack(final DeliveryJob job, final RecipientResult... replies)
    {
        final RecipientResult[] results = new RecipientResult[job.recipientCount()];
        for (int i = 0; i < results.length; i++)
        {
            results[i] = replies[Math.min(i, replies.length - 1)];
        }
        job.recordTransaction(new TransactionResult(results, false), SINK, false, null);
        assertTrue(inbox.offerResult(job));
    }

    static RecipientResult reply(
        final RecipientResult.Status status, final int code, final String enhanced, final String text)
    {
        return new RecipientResult(status, code, enhanced, text);
    }

    JournalLog journalLog()
    {
        final JournalLog log = new JournalLog();
        journal.replay(log);
        return log;
    }

    /** The journal's records per message, as short strings ("DEFERRED 0 attempts=1 next=...", "HELD", "DONE"). */
    static final class JournalLog implements OutcomeJournal.Visitor
    {
        private final Map<Long, List<String>> records = new HashMap<>();

        @Override
        public void onResult(
            final long queueId, final int recipient, final byte status, final int attempts, final long nextAttemptMs,
            final String text)
        {
            final String name = status == OutcomeJournal.DELIVERED ? "DELIVERED" :
                status == OutcomeJournal.BOUNCED ? "BOUNCED" : status == OutcomeJournal.DELETED ? "DELETED" :
                    "DEFERRED";
            add(queueId, status == OutcomeJournal.DEFERRED ?
                name + " " + recipient + " attempts=" + attempts + " next=" + nextAttemptMs : name + " " + recipient);
        }

        @Override
        public void onDone(final long queueId)
        {
            add(queueId, "DONE");
        }

        @Override
        public void onScheduled(final long queueId, final int attempts, final long dueMs, final long slot,
            final long position)
        {
            add(queueId, "SCHEDULED attempts=" + attempts + " next=" + dueMs);
        }

        @Override
        public void onActivated(final long queueId, final long slot, final long position)
        {
            add(queueId, "ACTIVATED");
        }

        @Override
        public void onHeld(final long queueId, final boolean held)
        {
            add(queueId, held ? "HELD" : "RELEASED");
        }

        private void add(final long queueId, final String record)
        {
            records.computeIfAbsent(queueId, ignored -> new ArrayList<>()).add(record);
        }

        List<String> of(final long queueId)
        {
            return records.getOrDefault(queueId, List.of());
        }

        /** The records of {@code queueId} that start with one of {@code kinds}, in order. */
        List<String> kinds(final long queueId, final String... kinds)
        {
            final List<String> matching = new ArrayList<>();
            for (final String record : of(queueId))
            {
                for (final String kind : kinds)
                {
                    if (record.startsWith(kind))
                    {
                        matching.add(record);
                        break;
                    }
                }
            }
            return matching;
        }
    }
}
