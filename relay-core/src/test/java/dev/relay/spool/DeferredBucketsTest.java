package dev.relay.spool;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The deferred index's buckets and live counts alone (no files): what recovery restores and the gauges read. */
@Timeout(10)
class DeferredBucketsTest
{
    private static final long SLOT_A = 1_800_000_000_000L;
    private static final long SLOT_B = SLOT_A + DeferredIndex.SLOT_MS;

    @Test
    void restoredBucketsGiveTheCountsAndForgettingOneTakesItsLiveOut()
    {
        final DeferredBuckets buckets = new DeferredBuckets();
        buckets.restore(SLOT_A, 100, 500, 3, 3000, 1_000);
        buckets.restore(SLOT_B, 200, 200, 0, 0, 500);
        buckets.restoreCycle(7, 3, 3000);

        assertEquals(3, buckets.liveCount());
        assertEquals(3000, buckets.liveBytes());
        assertEquals(700, buckets.fileBytes(), "every entry written, live or dead");
        assertEquals(1_000, buckets.oldestReceivedAtMs(), "a bucket with nothing live does not count");
        assertEquals(new TreeMap<>(Map.of(SLOT_A, 500L)), buckets.liveWriteEnds());
        assertEquals(3, buckets.liveByCycle().countIn(7));
        assertEquals(2, buckets.all().size());

        buckets.forget(SLOT_A);
        assertNull(buckets.existing(SLOT_A));
        assertEquals(0, buckets.liveCount());
        assertEquals(0, buckets.liveBytes());
        assertEquals(200, buckets.fileBytes());
        assertEquals(Long.MAX_VALUE, buckets.oldestReceivedAtMs());
    }

    @Test
    void countingAfreshAfterAResetKeepsTheBucketsAndTheirPositions()
    {
        final DeferredBuckets buckets = new DeferredBuckets();
        buckets.restore(SLOT_A, 0, 400, 5, 5000, 1_000);
        buckets.restoreCycle(7, 5, 5000);

        buckets.resetCounts();
        assertEquals(0, buckets.liveCount());
        assertEquals(0, buckets.liveBytes());
        assertEquals(Integer.MAX_VALUE, buckets.liveByCycle().minCycle());
        assertNotNull(buckets.existing(SLOT_A));
        assertEquals(400, buckets.existing(SLOT_A).writePosition());

        final QueueEntry first = DeferredIndexTest.entry(1, SLOT_A, 7);
        first.slot = SLOT_A;
        final QueueEntry second = DeferredIndexTest.entry(2, SLOT_B, 8);
        second.slot = SLOT_B;
        buckets.countLive(first);
        buckets.countLive(second);

        assertEquals(2, buckets.liveCount());
        assertEquals(first.bodyBytes + second.bodyBytes, buckets.liveBytes());
        assertEquals(1, buckets.existing(SLOT_A).liveCount());
        assertEquals(1, buckets.existing(SLOT_B).liveCount(), "a bucket made for the entry's slot");
        assertEquals(1, buckets.liveByCycle().countIn(7));
        assertEquals(1, buckets.liveByCycle().countIn(8));
        assertEquals(7, buckets.liveByCycle().minCycle());
        assertEquals(first.receivedAtMs, buckets.oldestReceivedAtMs());
    }
}
