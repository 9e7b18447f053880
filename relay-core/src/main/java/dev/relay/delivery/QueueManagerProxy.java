package dev.relay.delivery;

import org.jctools.queues.MessagePassingQueue;
import org.jctools.queues.MpscArrayQueue;

import dev.relay.config.QueueSettings;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * How other threads reach the {@link QueueManager} (as Aeron's DriverConductorProxy reaches the conductor): the
 * delivery loops hand finished jobs back over one bounded MPSC queue, the control thread asks for a flush or a
 * drain, the spool says new mail is committed; each then signals the queue manager's idle strategy, which wakes its
 * thread only if it is parked.
 * <p>
 * Operators' queue commands ({@link #submit}: hold, release, delete, requeue) come the same way, over a small MPSC
 * queue the queue manager drains in its duty cycle; it completes each command's reply.
 * <p>
 * Threads: {@link #offerResult}, {@link #flush}, {@link #submit}, {@link #drain}, {@link #reconfigure} and {@link #newMail} from any
 * thread; the rest on the queue manager's thread.
 */
public final class QueueManagerProxy
{
    /** Finished jobs not yet taken by the queue manager; a loop keeps what does not fit and offers it again. */
    static final int RESULT_QUEUE_CAPACITY = 16 * 1024;
    /** Operators' commands waiting: more at once are refused (the admin endpoint answers 503). */
    static final int COMMAND_QUEUE_CAPACITY = 64;

    private final MpscArrayQueue<DeliveryJob> results = new MpscArrayQueue<>(RESULT_QUEUE_CAPACITY);
    private final SignalledIdleStrategy idle;
    private final MpscArrayQueue<QueueCommand> commands = new MpscArrayQueue<>(COMMAND_QUEUE_CAPACITY);
    private final AtomicBoolean flushRequested = new AtomicBoolean();
    private volatile boolean drainRequested;
    /** A reload's configuration, until the queue manager takes it (the newest wins). */
    private final AtomicReference<QueueSettings> reconfiguration = new AtomicReference<>();

    QueueManagerProxy(final SignalledIdleStrategy idle)
    {
        this.idle = idle;
    }

    /** A new proxy with the idle strategy the queue manager's thread should run with ({@link #idleStrategy()}). */
    public static QueueManagerProxy create()
    {
        return new QueueManagerProxy(new SignalledIdleStrategy(QueueManager.MAX_IDLE_MS));
    }

    /** The idle strategy for the queue manager's agent runner: parked until signalled here. */
    public org.agrona.concurrent.IdleStrategy idleStrategy()
    {
        return idle;
    }

    /** A delivery loop hands a finished job back; false when the queue is full (the loop keeps it). */
    boolean offerResult(final DeliveryJob job)
    {
        if (!results.offer(job))
        {
            return false;
        }
        idle.signal();
        return true;
    }

    /** Makes every deferred message due now and every back-off end ({@code ops/relay spool flush}). */
    public void flush()
    {
        flushRequested.set(true);
        idle.signal();
    }

    /**
     * An operator's queue command, run on the queue manager's thread, which completes its reply.
     *
     * @return false when too many wait already (nothing is done).
     */
    public boolean submit(final QueueCommand command)
    {
        if (!commands.offer(command))
        {
            return false;
        }
        idle.signal();
        return true;
    }

    /** Shutting down: no new rounds start; the delivery loops finish what is in flight and QUIT. */
    public void drain()
    {
        drainRequested = true;
        idle.signal();
    }

    /**
     * A reload: routes ({@code delivery.routes}) and the retry schedule ({@code delivery.retry.schedule}) of
     * {@code settings} are used from the queue manager's next duty cycle on.
     */
    public void reconfigure(final QueueSettings settings)
    {
        reconfiguration.set(settings);
        idle.signal();
    }

    /** Whether the queue manager has yet to take the last {@link #reconfigure}'s configuration. Any thread. */
    public boolean reconfigurationPending()
    {
        return reconfiguration.get() != null;
    }

    /** The spool committed new mail (its new-mail listener). */
    public void newMail()
    {
        idle.signal();
    }

    // ---- the queue manager's side

    int drainResults(final MessagePassingQueue.Consumer<DeliveryJob> onResult, final int limit)
    {
        return results.drain(onResult, limit);
    }

    /** The next operator's command; null when none waits. */
    QueueCommand pollCommand()
    {
        return commands.poll();
    }

    /** True once per flush request. */
    boolean takeFlushRequest()
    {
        return flushRequested.get() && flushRequested.getAndSet(false);
    }

    boolean drainRequested()
    {
        return drainRequested;
    }

    /** The configuration a reload handed over, once; null when there is none (a volatile read). */
    QueueSettings takeReconfiguration()
    {
        return reconfiguration.get() == null ? null : reconfiguration.getAndSet(null);
    }
}
