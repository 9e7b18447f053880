package dev.relay.smtp;

import dev.relay.net.Connection;

import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;

/** The loop's side of a connection, in memory: records replies, flow control and close. */
final class TestConnection implements Connection
{
    final ByteArrayOutputStream output = new ByteArrayOutputStream();
    private final InetSocketAddress remote;
    private final byte[] remoteBytes;
    int outputCapacity = 16 * 1024;
    boolean paused;
    boolean resumeRequested;
    boolean closing;
    long idleTimeoutMs;
    long nowMs = 1_700_000_000_000L;

    TestConnection(final String ip)
    {
        try
        {
            final InetAddress address = InetAddress.getByName(ip);
            remote = new InetSocketAddress(address, 40000);
            remoteBytes = address.getAddress();
        }
        catch (final UnknownHostException ex)
        {
            throw new IllegalArgumentException(ex);
        }
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

    /** The test "client" reads everything written at once, so space is the whole buffer unless a test says not. */
    @Override
    public int outputSpace()
    {
        return closing ? 0 : outputCapacity;
    }

    @Override
    public void write(final byte[] bytes, final int offset, final int length)
    {
        if (length > outputCapacity)
        {
            throw new IllegalStateException("no room");
        }
        output.write(bytes, offset, length);
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

    long pausedForMs;

    @Override
    public void pauseInputFor(final long delayMs)
    {
        paused = true;
        pausedForMs = delayMs;
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
        output.reset();
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

    String takeOutput()
    {
        final String text = output.toString(StandardCharsets.ISO_8859_1);
        output.reset();
        return text;
    }
}
