package dev.relay.bench.e2e;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Shared by the {@link ClientLoop}s of one {@link LoadGenerator} run: the message counter, the schedule (message i
 * due at {@code start + i/R} in an open loop), the stop flag and the failure reasons.
 * <p>
 * Any thread: claims are a CAS on one counter; errors allocate per new reason only.
 */
final class RunControl
{
    static final long EXHAUSTED = -1;
    static final long NOT_DUE = -2;

    private final AtomicLong next = new AtomicLong();
    private final long total;
    private final long seqOffset;
    private final double periodNs;
    private final long startNs;
    /** Failure reasons and their counts, summed by the control thread at the end. */
    final Map<String, LongAdder> errors = new ConcurrentHashMap<>();
    private volatile boolean stopped;

    RunControl(final long total, final long seqOffset, final double rate, final long startNs)
    {
        this.total = total;
        this.seqOffset = seqOffset;
        this.periodNs = rate > 0 ? 1e9 / rate : 0;
        this.startNs = startNs;
    }

    /** Claims the next message if there is one and it is due; else {@link #EXHAUSTED} or {@link #NOT_DUE}. */
    long claim(final long nowNs)
    {
        while (true)
        {
            final long s = next.get();
            if (s >= total)
            {
                return EXHAUSTED;
            }
            if (periodNs > 0 && intendedNs(s, nowNs) - nowNs > 0)
            {
                return NOT_DUE;
            }
            if (next.compareAndSet(s, s + 1))
            {
                return s;
            }
        }
    }

    long intendedNs(final long seq, final long nowNs)
    {
        return periodNs > 0 ? startNs + (long)(seq * periodNs) : nowNs;
    }

    long nanosUntilNextDue(final long nowNs)
    {
        final long s = next.get();
        return s >= total ? Long.MAX_VALUE : Math.max(1, intendedNs(s, nowNs) - nowNs);
    }

    boolean exhausted()
    {
        return next.get() >= total;
    }

    long claimed()
    {
        return Math.min(next.get(), total);
    }

    long seqOffset()
    {
        return seqOffset;
    }

    boolean stopped()
    {
        return stopped;
    }

    void stop()
    {
        stopped = true;
    }

    void error(final String reason)
    {
        errors.computeIfAbsent(reason, r -> new LongAdder()).increment();
    }
}
