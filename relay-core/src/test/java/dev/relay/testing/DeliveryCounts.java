package dev.relay.testing;

import java.util.function.ToIntFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Lost and duplicated among the messages a test expects, from how many copies of each arrived: the two counts every
 * delivery test asserts (a 250 is a promise: lost must be 0; duplicates only from a crash between the remote 250 and
 * the journal).
 *
 * @param lost       expected messages that arrived no time.
 * @param duplicated copies beyond the first, summed over the expected messages.
 */
public record DeliveryCounts(long lost, long duplicated)
{
    /** Counts over {@code expected}, each id's copies given by {@code copiesOf}. */
    public static <K> DeliveryCounts of(final Iterable<K> expected, final ToIntFunction<K> copiesOf)
    {
        long lost = 0;
        long duplicated = 0;
        for (final K id : expected)
        {
            final int copies = copiesOf.applyAsInt(id);
            lost += copies == 0 ? 1 : 0;
            duplicated += Math.max(0, copies - 1);
        }
        return new DeliveryCounts(lost, duplicated);
    }

    /** None lost ({@code lostMessage} says what a loss means here) and none duplicated. */
    public void assertEachOnce(final String lostMessage)
    {
        assertEquals(0, lost, lostMessage);
        assertEquals(0, duplicated, "duplicated");
    }
}
