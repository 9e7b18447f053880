package dev.relay.smtp;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Plays the loop for one {@link SmtpSession} without a socket: appends input to a buffer, offers it as the loop
 * does (keeping what is not consumed), honours pause/resume and runs the sink's commits between reads.
 */
final class SessionDriver
{
    final TestConnection connection;
    final MemorySink sink = new MemorySink();
    final SmtpSession session;
    private final ByteBuffer buffer;
    private int start;

    SessionDriver(final SmtpSettings settings, final String clientIp, final boolean direct)
    {
        this(settings, clientIp, direct, 64 * 1024 * 1024);
    }

    /** With an input buffer of {@code capacity} bytes (the fuzz tests use small ones: one per input). */
    SessionDriver(final SmtpSettings settings, final String clientIp, final boolean direct, final int capacity)
    {
        connection = new TestConnection(clientIp);
        session = new SmtpSession(new SessionContext(settings, sink, 0, SessionEvents.NONE), connection);
        buffer = direct ? ByteBuffer.allocateDirect(capacity) : ByteBuffer.allocate(capacity);
        session.onOpen();
    }

    static SessionDriver local()
    {
        return new SessionDriver(SmtpSettings.defaults("relay.test"), "127.0.0.1", false);
    }

    /** Sends bytes as one read; returns what the server replied (after any commits). */
    String send(final byte[] bytes)
    {
        if (buffer.remaining() < bytes.length)
        {
            compact();
        }
        buffer.put(bytes);
        deliver();
        return connection.takeOutput();
    }

    String send(final String text)
    {
        return send(text.getBytes(StandardCharsets.ISO_8859_1));
    }

    String output()
    {
        return connection.takeOutput();
    }

    void deliver()
    {
        while (true)
        {
            while (!connection.paused && !connection.closing && start < buffer.position())
            {
                final int consumed = session.onInput(buffer, start, buffer.position());
                if (consumed <= start)
                {
                    break;
                }
                start = consumed;
            }
            if (sink.hasPending())
            {
                connection.resumeRequested = false;
                sink.commitAll();
                if (connection.resumeRequested)
                {
                    continue;
                }
            }
            break;
        }
        if (start == buffer.position())
        {
            buffer.clear();
            start = 0;
        }
    }

    private void compact()
    {
        buffer.limit(buffer.position());
        buffer.position(start);
        buffer.compact();
        start = 0;
    }

    int buffered()
    {
        return buffer.position() - start;
    }

    void close()
    {
        session.onClose();
    }
}
