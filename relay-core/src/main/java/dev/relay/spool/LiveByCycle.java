package dev.relay.spool;

import java.util.Map;
import java.util.TreeMap;

/**
 * The live {@link DeferredIndex} entries per spool cycle their records are in: how many and their body bytes. What
 * the queue manager needs to decide which cycle files deferred mail still pins (and whether to move it forward), and
 * what the checkpoint records, without reading the index. One small array per cycle with deferred mail.
 * <p>
 * Owned by the index's thread.
 */
public final class LiveByCycle
{
    private final TreeMap<Integer, long[]> usage = new TreeMap<>();

    /** Counts an entry of {@code bodyBytes} in {@code cycle} in ({@code sign} 1) or out (-1). */
    void count(final int cycle, final long bodyBytes, final int sign)
    {
        final long[] counts = usage.computeIfAbsent(cycle, ignored -> new long[2]);
        counts[0] += sign;
        counts[1] += sign * bodyBytes;
        if (counts[0] <= 0)
        {
            usage.remove(cycle);
        }
    }

    /** A cycle's counts as a checkpoint recorded them. */
    void restore(final int cycle, final long count, final long bytes)
    {
        if (count != 0 || bytes != 0)
        {
            usage.put(cycle, new long[] {count, bytes});
        }
    }

    void clear()
    {
        usage.clear();
    }

    /** The earliest cycle with a live entry; {@link Integer#MAX_VALUE} when none. */
    public int minCycle()
    {
        return usage.isEmpty() ? Integer.MAX_VALUE : usage.firstKey();
    }

    /** Live entries whose records are in {@code cycle}. */
    public long countIn(final int cycle)
    {
        final long[] counts = usage.get(cycle);
        return counts == null ? 0 : counts[0];
    }

    /** Body bytes of the live entries whose records are in {@code cycle}. */
    public long bytesIn(final int cycle)
    {
        final long[] counts = usage.get(cycle);
        return counts == null ? 0 : counts[1];
    }

    /** Every cycle with live entries: {count, body bytes}, read only. */
    public Map<Integer, long[]> byCycle()
    {
        return usage;
    }
}
