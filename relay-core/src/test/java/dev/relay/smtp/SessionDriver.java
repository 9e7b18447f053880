package dev.relay.smtp;

import dev.relay.Relay;
import dev.relay.config.ConfigKey;
import dev.relay.config.SmtpServerSettings;
import dev.relay.net.LoopDouble;
import dev.relay.net.LoopHook;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.function.Function;

/**
 * One {@link SmtpSession} on a {@link LoopDouble}, with a client (the double's peer) sending bytes and reading the
 * replies, and a {@link MemorySink} whose commits complete in a loop hook, as the spool writer's do. SMTP
 * conveniences only: the loop's part is the double's ({@code LoopContractTest} keeps it true to the real loop).
 */
final class SessionDriver
{
    /** The relay's inbound read buffer by default ({@code smtp.buffer_size}). */
    static final int READ_BUFFER_BYTES = Integer.parseInt(ConfigKey.SMTP_BUFFER_SIZE.defaultText());
    /** Loop time a drain may take before the loop closes what is left. */
    static final long DRAIN_MS = 60_000;

    final LoopDouble loop;
    final LoopDouble.Peer client;
    final MemorySink sink;
    SmtpSession session;

    SessionDriver(final SmtpServerSettings settings, final String clientIp)
    {
        this(settings, clientIp, new LoopDouble(READ_BUFFER_BYTES, Relay.WRITE_BUFFER_BYTES));
    }

    SessionDriver(final SmtpServerSettings settings, final String clientIp, final LoopDouble loop)
    {
        this(new MemorySink(), sink -> new SessionContext(settings, sink, 0, SessionEvents.NONE), clientIp, loop);
    }

    /** With the context {@code context} makes around the driver's sink (a tarpit, a limiter). */
    SessionDriver(
        final MemorySink sink, final Function<MemorySink, SessionContext> context,
        final String clientIp, final LoopDouble loop)
    {
        this(sink, context, clientIp, loop, SmtpSession.SMTP_LISTENER);
    }

    /** A client of the listener tagged {@code listenerTag} (submission, submissions). */
    SessionDriver(
        final MemorySink sink, final Function<MemorySink, SessionContext> context,
        final String clientIp, final LoopDouble loop, final int listenerTag)
    {
        this.sink = sink;
        this.loop = loop;
        final SessionContext shared = context.apply(sink);
        loop.addHook(new Commits(sink));
        loop.handlerFactory(connection -> session = new SmtpSession(shared, connection));
        client = loop.accept(new InetSocketAddress(clientIp, 40000), listenerTag);
        loop.runUntilIdle();
    }

    static SessionDriver local()
    {
        return new SessionDriver(SmtpServerSettings.defaults("relay.test"), "127.0.0.1");
    }

    /** The client sends bytes; returns the replies it has read once the loop is idle (commits done). */
    String send(final byte[] bytes)
    {
        client.send(bytes);
        return output();
    }

    String send(final String text)
    {
        return send(text.getBytes(StandardCharsets.ISO_8859_1));
    }

    /** Replies the client has read and not taken yet, once the loop is idle. */
    String output()
    {
        loop.runUntilIdle();
        return client.takeReceived();
    }

    /** Input read from the client that the session has not consumed. */
    int buffered()
    {
        return client.bufferedInput();
    }

    /** Lets loop time pass until the timeout in force expires; returns the replies. */
    String timeout()
    {
        final long deadlineMs = client.deadlineMs();
        if (deadlineMs == Long.MAX_VALUE)
        {
            throw new AssertionError("no timeout armed");
        }
        loop.advance(deadlineMs - loop.nowMs());
        return client.takeReceived();
    }

    /** The relay shuts down: the loop drains; returns the replies. */
    String drain()
    {
        loop.drain(DRAIN_MS);
        return output();
    }

    /** The client disconnects. */
    void close()
    {
        client.close();
        loop.runUntilIdle();
    }

    /** The spool writer's commit completions: a hook that runs the sink's pending commits each pass. */
    private record Commits(MemorySink sink) implements LoopHook
    {
        @Override
        public int doWork(final long nowMs)
        {
            if (!sink.hasPending())
            {
                return 0;
            }
            sink.commitAll();
            return 1;
        }

        @Override
        public boolean hasPendingWork()
        {
            return sink.hasPending();
        }
    }
}
