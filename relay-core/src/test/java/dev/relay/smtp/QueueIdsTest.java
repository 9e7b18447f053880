package dev.relay.smtp;

import dev.relay.config.ConfigException;
import dev.relay.config.RelayConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Queue ids are unique for every configuration the relay accepts: every inbound loop {@code smtp.io_threads}
 * allows and the DSN generator each have a generator of their own, and no generator repeats an id, even in a burst
 * beyond its per-millisecond sequence or when the clock steps back.
 */
@Timeout(60)
class QueueIdsTest
{
    @Test
    void everyAllowedLoopAndTheDsnGeneratorHaveDistinctGenerators()
    {
        final int maxLoops = maxIoThreadsTheConfigAccepts();
        assertEquals(QueueIds.MAX_INBOUND_LOOPS, maxLoops, "smtp.io_threads and the id layout must agree");
        final Set<Integer> seen = new HashSet<>();
        for (int loop = 0; loop < maxLoops; loop++)
        {
            assertTrue(seen.add(QueueIds.generatorOf(new QueueIds(loop).next(1_700_000_000_000L))));
        }
        assertTrue(seen.add(QueueIds.generatorOf(new QueueIds(QueueIds.DSN_GENERATOR).next(1_700_000_000_000L))),
            "the DSN generator shares an inbound loop's bits");
    }

    @Test
    void idsOfAllGeneratorsInTheSameMillisecondsNeverCollide()
    {
        final Set<Long> ids = new HashSet<>();
        final QueueIds[] generators = new QueueIds[QueueIds.MAX_INBOUND_LOOPS + 1];
        for (int i = 0; i < QueueIds.MAX_INBOUND_LOOPS; i++)
        {
            generators[i] = new QueueIds(i);
        }
        generators[QueueIds.MAX_INBOUND_LOOPS] = new QueueIds(QueueIds.DSN_GENERATOR);
        final long nowMs = 1_700_000_000_000L;
        int made = 0;
        for (int ms = 0; ms < 3; ms++)
        {
            for (final QueueIds generator : generators)
            {
                for (int n = 0; n < 1000; n++)
                {
                    assertTrue(ids.add(generator.next(nowMs + ms)), "duplicate id");
                    made++;
                }
            }
        }
        assertEquals(made, ids.size());
    }

    @Test
    void aBurstBeyondTheSequenceBorrowsTheNextMillisecondWithoutRepeating()
    {
        final QueueIds generator = new QueueIds(63);
        final Set<Long> ids = new HashSet<>();
        final long nowMs = 1_700_000_000_000L;
        long previous = -1;
        for (int n = 0; n < 200_000; n++)
        {
            final long id = generator.next(nowMs);
            assertTrue(ids.add(id));
            assertTrue(id > previous, "ids of one generator increase");
            assertEquals(63, QueueIds.generatorOf(id));
            previous = id;
        }
        // the clock catching up with the borrowed milliseconds, or stepping back, never repeats an id either
        for (int ms = -5; ms < 10; ms++)
        {
            final long id = generator.next(nowMs + ms);
            assertTrue(ids.add(id));
            assertTrue(id > previous);
            previous = id;
        }
    }

    @Test
    void generatorsOutsideTheFieldAreRefusedNotWrapped()
    {
        assertThrows(IllegalArgumentException.class, () -> new QueueIds(-1));
        assertThrows(IllegalArgumentException.class, () -> new QueueIds(QueueIds.GENERATORS));
        new QueueIds(QueueIds.GENERATORS - 1);
    }

    @Test
    void idsSortByTimeAndSurviveTheirTextForm()
    {
        final QueueIds a = new QueueIds(5);
        final QueueIds b = new QueueIds(QueueIds.DSN_GENERATOR);
        final long first = b.next(1_700_000_000_000L);
        final long second = a.next(1_700_000_000_001L);
        assertTrue(first < second);
        assertTrue(QueueIds.format(first).compareTo(QueueIds.format(second)) < 0);
        assertEquals(first, QueueIds.parse(QueueIds.format(first)));
        assertEquals(second, QueueIds.parse(QueueIds.format(second).toLowerCase()));
        assertEquals(1_700_000_000_001L, QueueIds.timestampMs(second));
    }

    @Test
    void idsWrittenWithTheOldLayoutKeepTheirTimestamp()
    {
        // before: 42 bits of millis, 4 of loop, 18 of sequence
        final long old = (1_700_000_000_000L << 22) | (15L << 18) | 7;
        assertEquals(1_700_000_000_000L, QueueIds.timestampMs(old));
        assertTrue(old < new QueueIds(0).next(1_700_000_000_001L));
    }

    private static int maxIoThreadsTheConfigAccepts()
    {
        int max = 0;
        for (int n = 1; n <= QueueIds.GENERATORS; n++)
        {
            try
            {
                RelayConfig.fromMap(Map.of("smtp.io_threads", Integer.toString(n), "metrics.listen", "off"));
                max = n;
            }
            catch (final ConfigException ex)
            {
                break;
            }
        }
        return max;
    }
}
