package dev.relay.net;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(10)
class DeadlineListsTest
{
    private static final class Conn extends DeadlineLists.Timer
    {
        final int id;

        Conn(final int id)
        {
            this.id = id;
        }

        @Override
        public String toString()
        {
            return "conn " + id;
        }
    }

    private final DeadlineLists<Conn> timers = new DeadlineLists<>();
    private final List<Conn> expired = new ArrayList<>();
    private final DeadlineLists.ExpiryHandler<Conn> collect = (timer, nowMs) -> expired.add(timer);

    private static Conn[] conns(final int count)
    {
        final Conn[] conns = new Conn[count];
        for (int i = 0; i < count; i++)
        {
            conns[i] = new Conn(i);
        }
        return conns;
    }

    @Test
    void emptyHasNothingDue()
    {
        assertEquals(DeadlineLists.NOT_ARMED, timers.nextDeadlineMs());
        assertEquals(0, timers.poll(Long.MAX_VALUE - 1, collect, 256));
        assertEquals(0, timers.size());
    }

    @Test
    void expiresInDeadlineOrderAcrossDurations()
    {
        final Conn[] c = conns(4);
        timers.arm(c[0], 0, 300);
        timers.arm(c[1], 0, 10);
        timers.arm(c[2], 5, 10);
        timers.arm(c[3], 5, 300);
        assertEquals(10, timers.nextDeadlineMs());
        assertEquals(4, timers.size());

        assertEquals(0, timers.poll(9, collect, 256));
        assertEquals(1, timers.poll(10, collect, 256));
        assertEquals(List.of(c[1]), expired);
        assertFalse(c[1].isArmed());
        assertEquals(DeadlineLists.NOT_ARMED, c[1].deadlineMs());
        assertEquals(15, timers.nextDeadlineMs());

        assertEquals(1, timers.poll(299, collect, 256));
        assertEquals(300, timers.nextDeadlineMs());
        assertEquals(2, timers.poll(1000, collect, 256));
        assertEquals(List.of(c[1], c[2], c[0], c[3]), expired);
        assertEquals(DeadlineLists.NOT_ARMED, timers.nextDeadlineMs());
        assertEquals(0, timers.size());
    }

    @Test
    void cancelUnlinksHeadMiddleAndTail()
    {
        final Conn[] c = conns(5);
        for (final Conn conn : c)
        {
            timers.arm(conn, 0, 10);
        }
        timers.cancel(c[0]);
        timers.cancel(c[2]);
        timers.cancel(c[4]);
        timers.cancel(c[4]);
        timers.cancel(new Conn(99));
        assertFalse(c[2].isArmed());
        assertEquals(2, timers.size());
        timers.poll(10, collect, 256);
        assertEquals(List.of(c[1], c[3]), expired);

        timers.cancel(c[1]);
        timers.arm(c[1], 20, 10);
        assertTrue(c[1].isArmed());
        assertEquals(30, timers.nextDeadlineMs());
    }

    @Test
    void reArmMovesToTheTailWithTheNewDeadline()
    {
        final Conn[] c = conns(3);
        timers.arm(c[0], 0, 10);
        timers.arm(c[1], 0, 10);
        timers.arm(c[2], 0, 10);
        timers.arm(c[0], 5, 10);
        assertEquals(15, c[0].deadlineMs());
        timers.arm(c[0], 7, 10);
        assertEquals(17, c[0].deadlineMs());
        assertEquals(3, timers.size());

        assertEquals(2, timers.poll(16, collect, 256));
        assertEquals(List.of(c[1], c[2]), expired);
        assertEquals(17, timers.nextDeadlineMs());
        timers.poll(17, collect, 256);
        assertEquals(List.of(c[1], c[2], c[0]), expired);
    }

    @Test
    void aShortenedTimeoutMovesToItsOwnList()
    {
        final Conn longer = new Conn(0);
        final Conn shortened = new Conn(1);
        timers.arm(longer, 0, 300_000);
        timers.arm(shortened, 0, 300_000);
        timers.arm(shortened, 1_000, 3_000);
        assertEquals(4_000, shortened.deadlineMs());
        assertEquals(4_000, timers.nextDeadlineMs());
        assertEquals(1, timers.poll(4_000, collect, 256));
        assertEquals(List.of(shortened), expired);
        assertEquals(300_000, timers.nextDeadlineMs());

        timers.arm(shortened, 5_000, 3_000);
        timers.arm(shortened, 6_000, 180_000);
        assertEquals(186_000, shortened.deadlineMs());
        assertEquals(2, timers.poll(300_000, collect, 256));
        assertEquals(List.of(shortened, longer, shortened), expired, "due timers of one poll go list by list");
    }

    @Test
    void manyInTheSameMillisecondExpireInArmOrderAndBoundedPerPoll()
    {
        final Conn[] c = conns(10_000);
        for (final Conn conn : c)
        {
            timers.arm(conn, 42, 64);
        }
        assertEquals(106, timers.nextDeadlineMs());
        int polls = 0;
        int expiredCount;
        while ((expiredCount = timers.poll(106, collect, 256)) > 0)
        {
            assertTrue(expiredCount <= 256);
            polls++;
        }
        assertEquals((10_000 + 255) / 256, polls);
        assertEquals(10_000, expired.size());
        for (int i = 0; i < c.length; i++)
        {
            assertEquals(i, expired.get(i).id);
        }
        assertEquals(0, timers.size());
    }

    @Test
    void theLimitCoversAllListsOfOnePoll()
    {
        final Conn[] c = conns(6);
        for (int i = 0; i < c.length; i++)
        {
            timers.arm(c[i], 0, 10 + i % 3);
        }
        assertEquals(4, timers.poll(100, collect, 4));
        assertEquals(2, timers.poll(100, collect, 4));
        assertEquals(6, expired.size());
    }

    @Test
    void theHandlerMayReArmAndCancelDuringAPoll()
    {
        final Conn[] c = conns(3);
        timers.arm(c[0], 0, 10);
        timers.arm(c[1], 0, 10);
        timers.arm(c[2], 0, 10);
        final DeadlineLists.ExpiryHandler<Conn> handler = (timer, nowMs) ->
        {
            expired.add(timer);
            if (timer == c[0])
            {
                timers.cancel(c[1]);
                timers.arm(timer, nowMs, 10);
            }
        };
        assertEquals(2, timers.poll(10, handler, 256));
        assertEquals(List.of(c[0], c[2]), expired);
        assertTrue(c[0].isArmed());
        assertEquals(20, timers.nextDeadlineMs());
    }

    @Test
    void aClockThatGoesBackKeepsTheListSorted()
    {
        final Conn[] c = conns(2);
        timers.arm(c[0], 1_000, 10);
        timers.arm(c[1], 900, 10);
        assertEquals(1_010, c[1].deadlineMs());
        assertEquals(2, timers.poll(1_010, collect, 256));
    }

    @Test
    void durationsAreAFewPositiveConstants()
    {
        final Conn conn = new Conn(0);
        assertThrows(IllegalArgumentException.class, () -> timers.arm(conn, 0, 0));
        for (int i = 1; i <= DeadlineLists.MAX_DURATIONS; i++)
        {
            timers.arm(conn, 0, i);
        }
        assertThrows(IllegalStateException.class, () -> timers.arm(conn, 0, 1_000));
        assertEquals(DeadlineLists.MAX_DURATIONS, conn.deadlineMs());
    }

    @Test
    void armingMovingCancellingAndExpiringAllocateNothing()
    {
        final com.sun.management.ThreadMXBean threads =
            (com.sun.management.ThreadMXBean)ManagementFactory.getThreadMXBean();
        final Conn[] c = conns(1_000);
        final long[] expiredCount = new long[1];
        final DeadlineLists.ExpiryHandler<Conn> count = (timer, nowMs) -> expiredCount[0]++;
        threads.getCurrentThreadAllocatedBytes();
        cycle(c, count, 0);
        final long before = threads.getCurrentThreadAllocatedBytes();
        for (int round = 1; round <= 100; round++)
        {
            cycle(c, count, round * 1_000L);
        }
        final long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        assertEquals(101 * (1_000 - 334), expiredCount[0]);
        assertTrue(allocated < 1_024, "allocated " + allocated + " B over ~250,000 operations");
    }

    /** Arms every timer, moves half of them to a shorter duration, cancels a third, expires the rest. */
    private void cycle(final Conn[] c, final DeadlineLists.ExpiryHandler<Conn> handler, final long nowMs)
    {
        for (final Conn conn : c)
        {
            timers.arm(conn, nowMs, 300);
        }
        for (int i = 0; i < c.length; i += 2)
        {
            timers.arm(c[i], nowMs + 1, 10);
        }
        for (int i = 0; i < c.length; i += 3)
        {
            timers.cancel(c[i]);
        }
        while (timers.poll(nowMs + 999, handler, 256) > 0)
        {
            // to the end
        }
        assertEquals(0, timers.size());
    }
}
