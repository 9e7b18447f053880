package dev.relay.delivery;

import org.jctools.queues.MessagePassingQueue;
import org.jctools.queues.SpscArrayQueue;

import java.util.ArrayDeque;

/**
 * The queue manager's side of one {@link DeliveryLoop} (as Aeron's ReceiverProxy is the conductor's side of the
 * receiver): jobs go over a bounded SPSC queue, flush and drain requests over single-writer volatile fields, and the
 * loop is woken only when it is parked. A job the queue cannot take now waits in a backlog here, in order, and is
 * offered again every pass ({@link #sendBacklog()}), so the queue manager never blocks on a busy loop.
 * <p>
 * Threads: {@link #send}, {@link #sendBacklog}, {@link #flush} and {@link #drain} on the queue manager's thread
 * only; {@link #drainJobs}, {@link #flushRequests}, {@link #drainRequested} and {@link #hasJobs} on the loop's.
 */
final class DeliveryLoopProxy
{
    /** Jobs offered and not yet taken by the loop. */
    static final int JOB_QUEUE_CAPACITY = 4096;

    private final SpscArrayQueue<DeliveryJob> jobs = new SpscArrayQueue<>(JOB_QUEUE_CAPACITY);
    private final ArrayDeque<DeliveryJob> backlog = new ArrayDeque<>();
    private final Runnable loopWaker;
    private volatile long flushRequests;
    private volatile boolean drainRequested;

    /** @param loopWaker wakes the loop if it is parked ({@code SelectorLoop::wakeup}); any thread. */
    DeliveryLoopProxy(final Runnable loopWaker)
    {
        this.loopWaker = loopWaker;
    }

    /** Hands {@code job} to the loop now, or after the jobs already waiting for room. */
    void send(final DeliveryJob job)
    {
        if (!backlog.isEmpty() || !jobs.offer(job))
        {
            backlog.addLast(job);
            return;
        }
        loopWaker.run();
    }

    /** Offers the waiting jobs again; returns how many the loop's queue took. */
    int sendBacklog()
    {
        int sent = 0;
        DeliveryJob job;
        while ((job = backlog.peekFirst()) != null && jobs.offer(job))
        {
            backlog.pollFirst();
            sent++;
        }
        if (sent > 0)
        {
            loopWaker.run();
        }
        return sent;
    }

    /** Jobs waiting here for room in the loop's queue. */
    int backlogSize()
    {
        return backlog.size();
    }

    /**
     * Every hop of the loop ends its back-offs. Jobs sent after this call find it done: the loop reads the request
     * after taking jobs and before dispatching them.
     */
    void flush()
    {
        flushRequests = flushRequests + 1;
        loopWaker.run();
    }

    /** The loop starts no more transactions; idle connections QUIT. */
    void drain()
    {
        drainRequested = true;
        loopWaker.run();
    }

    // ---- the loop's side

    int drainJobs(final MessagePassingQueue.Consumer<DeliveryJob> onJob, final int limit)
    {
        return jobs.drain(onJob, limit);
    }

    boolean hasJobs()
    {
        return !jobs.isEmpty();
    }

    long flushRequests()
    {
        return flushRequests;
    }

    boolean drainRequested()
    {
        return drainRequested;
    }

    /** The next job offered, or null: for tests that play the loop. */
    DeliveryJob pollJob()
    {
        return jobs.poll();
    }
}
