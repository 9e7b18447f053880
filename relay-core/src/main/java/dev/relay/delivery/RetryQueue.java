package dev.relay.delivery;

import java.util.Arrays;

/**
 * Deferred messages ordered by their next attempt: a binary heap that knows each entry's position, so a message
 * can be rescheduled or removed in O(log n) without searching. Owned by the delivery thread; no allocation once
 * grown.
 */
final class RetryQueue
{
    private QueuedMessage[] heap = new QueuedMessage[64];
    private int size;

    int size()
    {
        return size;
    }

    /** Adds {@code message} due at {@code dueMs}, or moves it there if already queued. */
    void schedule(final QueuedMessage message, final long dueMs)
    {
        message.nextAttemptMs = dueMs;
        if (message.heapIndex >= 0)
        {
            siftUp(message.heapIndex);
            siftDown(message.heapIndex);
            return;
        }
        if (size == heap.length)
        {
            heap = Arrays.copyOf(heap, size * 2);
        }
        heap[size] = message;
        message.heapIndex = size;
        siftUp(size++);
    }

    void remove(final QueuedMessage message)
    {
        final int index = message.heapIndex;
        if (index < 0)
        {
            return;
        }
        message.heapIndex = -1;
        final QueuedMessage last = heap[--size];
        heap[size] = null;
        if (index < size)
        {
            heap[index] = last;
            last.heapIndex = index;
            siftUp(index);
            siftDown(last.heapIndex);
        }
    }

    /** The earliest message if it is due at {@code nowMs}, removed; else null. */
    QueuedMessage pollDue(final long nowMs)
    {
        if (size == 0 || heap[0].nextAttemptMs > nowMs)
        {
            return null;
        }
        final QueuedMessage first = heap[0];
        remove(first);
        return first;
    }

    private void siftUp(final int start)
    {
        int index = start;
        final QueuedMessage moving = heap[index];
        while (index > 0)
        {
            final int parent = (index - 1) >>> 1;
            if (heap[parent].nextAttemptMs <= moving.nextAttemptMs)
            {
                break;
            }
            heap[index] = heap[parent];
            heap[index].heapIndex = index;
            index = parent;
        }
        heap[index] = moving;
        moving.heapIndex = index;
    }

    private void siftDown(final int start)
    {
        int index = start;
        final QueuedMessage moving = heap[index];
        while (true)
        {
            int child = 2 * index + 1;
            if (child >= size)
            {
                break;
            }
            if (child + 1 < size && heap[child + 1].nextAttemptMs < heap[child].nextAttemptMs)
            {
                child++;
            }
            if (heap[child].nextAttemptMs >= moving.nextAttemptMs)
            {
                break;
            }
            heap[index] = heap[child];
            heap[index].heapIndex = index;
            index = child;
        }
        heap[index] = moving;
        moving.heapIndex = index;
    }
}
