package dev.relay.smtp;

import dev.relay.net.Connection;

import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

/**
 * The loop's side of an outbound connection, in memory, with a bounded output buffer that only empties when the
 * driver flushes it (as the loop does at the end of a pass): {@link #outputSpace()} shrinks as the session writes,
 * which {@link TestConnection} (constant space) cannot show. Counts {@code write} calls per pass.
 */
final class ClientTestConnection implements Connection
{
    private final ByteArrayOutputStream buffered = new ByteArrayOutputStream();
    private final InetSocketAddress remote = new InetSocketAddress("127.0.0.1", 25);
    private final byte[] remoteBytes = {127, 0, 0, 1};
    final int capacity;
    int writesThisPass;
    boolean paused;
    boolean resumeRequested;
    boolean closing;
    long idleTimeoutMs;
    long nowMs = 1_700_000_000_000L;

    ClientTestConnection(final int capacity)
    {
        this.capacity = capacity;
    }

    @Override
    public InetSocketAddress remoteAddress()
    {
        return remote;
    }

    @Override
    public byte[] remoteAddressBytes()
    {
        return remoteBytes;
    }

    @Override
    public int outputSpace()
    {
        return closing ? 0 : capacity - buffered.size();
    }

    @Override
    public void write(final byte[] bytes, final int offset, final int length)
    {
        if (length > outputSpace())
        {
            throw new IllegalStateException("no room: " + length + " > " + outputSpace());
        }
        buffered.write(bytes, offset, length);
        writesThisPass++;
    }

    @Override
    public int write(final dev.relay.net.OutputFiller filler, final int maxLength)
    {
        final int room = Math.min(maxLength, outputSpace());
        if (room <= 0)
        {
            return 0;
        }
        final java.nio.ByteBuffer direct = java.nio.ByteBuffer.allocateDirect(room);
        final int added = filler.fill(direct);
        direct.flip();
        final byte[] bytes = new byte[direct.remaining()];
        direct.get(bytes);
        write(bytes, 0, bytes.length);
        return added;
    }

    @Override
    public void pauseInput()
    {
        paused = true;
    }

    @Override
    public void resumeInput()
    {
        paused = false;
        resumeRequested = true;
    }

    @Override
    public void closeAfterFlush()
    {
        closing = true;
    }

    @Override
    public void closeNow()
    {
        closing = true;
        buffered.reset();
    }

    @Override
    public void idleTimeoutMs(final long timeoutMs)
    {
        idleTimeoutMs = timeoutMs;
    }

    @Override
    public long nowMs()
    {
        return nowMs;
    }

    @Override
    public int loopIndex()
    {
        return 0;
    }

    /** Empties the output buffer as the socket write at the end of a pass does; returns what left. */
    String flush()
    {
        final String text = buffered.toString(StandardCharsets.ISO_8859_1);
        buffered.reset();
        writesThisPass = 0;
        return text;
    }
}
