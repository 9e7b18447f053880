package dev.relay.delivery;

import org.agrona.concurrent.IdleStrategy;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * Idles an agent's thread after a duty cycle that did nothing: it parks until another thread {@link #signal()}s new
 * work, or for at most {@code maxParkNs} (so time-driven work, retries and housekeeping, still runs). An idle relay
 * costs no CPU, and new work is seen at once — unlike a back-off strategy, which must choose between the two.
 * <p>
 * No wake-up is lost: a signal sets a flag before it unparks, and {@link #idle(int)} clears the flag instead of
 * parking when it is set; a producer that makes work visible and then signals is seen either by the cycle that
 * follows the signal or by the park it ends. Unparking a running thread only leaves a permit, so the next park
 * returns at once (one extra empty cycle, never a missed one). A signal while the flag is already set costs one
 * volatile read. Signalled from any thread; idled by the agent's thread only.
 */
final class SignalledIdleStrategy implements IdleStrategy
{
    private final long maxParkNs;
    private final AtomicBoolean signalled = new AtomicBoolean();
    private volatile Thread owner;

    SignalledIdleStrategy(final long maxParkMs)
    {
        this.maxParkNs = TimeUnit.MILLISECONDS.toNanos(maxParkMs);
    }

    /** There is new work for the agent; any thread. */
    void signal()
    {
        if (!signalled.get() && !signalled.getAndSet(true))
        {
            final Thread thread = owner;
            if (thread != null)
            {
                LockSupport.unpark(thread);
            }
        }
    }

    @Override
    public void idle(final int workCount)
    {
        if (workCount > 0)
        {
            return;
        }
        idle();
    }

    @Override
    public void idle()
    {
        if (owner == null)
        {
            owner = Thread.currentThread();
        }
        if (signalled.getAndSet(false))
        {
            return;
        }
        LockSupport.parkNanos(this, maxParkNs);
    }

    @Override
    public void reset()
    {
    }

    @Override
    public String alias()
    {
        return "signalled";
    }
}
