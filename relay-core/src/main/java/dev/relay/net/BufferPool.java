package dev.relay.net;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * Direct buffers of one size, owned by one loop thread (no synchronisation). A connection takes a read buffer only
 * while it has unconsumed input and gives it back at once, so idle connections hold none. Up to
 * {@code maxPooled} free buffers are kept; beyond that, returned buffers are left to the GC (a burst of
 * slow clients must not pin memory for ever).
 */
public final class BufferPool
{
    private final int bufferSize;
    private final int maxPooled;
    private final ArrayDeque<ByteBuffer> free;
    private long allocated;

    public BufferPool(final int bufferSize, final int maxPooled)
    {
        this.bufferSize = bufferSize;
        this.maxPooled = maxPooled;
        this.free = new ArrayDeque<>(Math.min(maxPooled, 1024));
    }

    public ByteBuffer acquire()
    {
        final ByteBuffer buffer = free.pollFirst();
        if (buffer != null)
        {
            return buffer;
        }
        allocated++;
        return ByteBuffer.allocateDirect(bufferSize);
    }

    public void release(final ByteBuffer buffer)
    {
        buffer.clear();
        if (free.size() < maxPooled)
        {
            free.addFirst(buffer);
        }
    }

    public int bufferSize()
    {
        return bufferSize;
    }

    public int freeCount()
    {
        return free.size();
    }

    /** Buffers allocated since the start (pool misses). */
    public long allocatedCount()
    {
        return allocated;
    }
}
