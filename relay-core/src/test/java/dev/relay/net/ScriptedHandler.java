package dev.relay.net;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.LongSupplier;

/**
 * A {@link ConnectionHandler} for the contract tests: records every callback (with the loop pass and the loop's
 * clock), reacts as the scenario scripts it, and can stream a known byte pattern through
 * {@link Connection#write(OutputFiller, int)}, one buffer's worth per {@code onOutputDrained}. Called on the loop
 * thread; the scenario reads the events from its own thread (the list is thread safe) and changes the script only
 * before the connection opens or from the loop thread.
 */
final class ScriptedHandler implements ConnectionHandler
{
    record Event(String kind, String detail, long pass, long nowMs)
    {
    }

    @FunctionalInterface
    interface Step
    {
        void run(ScriptedHandler handler);
    }

    /** Reacts to offered input; returns how many of its characters (bytes) were consumed. */
    @FunctionalInterface
    interface InputStep
    {
        int consume(ScriptedHandler handler, String offered);
    }

    static final InputStep CONSUME_ALL = (handler, offered) -> offered.length();
    static final InputStep CONSUME_LINES = (handler, offered) -> offered.lastIndexOf('\n') + 1;

    final List<Event> events = new CopyOnWriteArrayList<>();
    volatile Connection connection;
    volatile LongSupplier passes = () -> 0;
    volatile Step onOpen = handler -> { };
    volatile InputStep onInput = CONSUME_ALL;
    volatile Step onTimeout = handler -> { };
    volatile Step onDrain = handler -> { };
    volatile Step onTlsEstablished = handler -> { };

    private final OutputFiller filler = this::fill;
    private volatile long streamTotal;
    private volatile long streamWritten;
    private volatile boolean closeWhenStreamed;
    private volatile String fillerProblem;

    /** The byte at {@code offset} of a stream: no short period, so a lost or repeated buffer shows. */
    static byte pattern(final long offset)
    {
        return (byte)(offset * 31 + (offset >>> 12) + (offset >>> 20));
    }

    /** The handler of {@code connection}, for a {@link ConnectionHandlerFactory}. */
    ScriptedHandler attach(final Connection connection)
    {
        this.connection = connection;
        return this;
    }

    void record(final String kind)
    {
        record(kind, "");
    }

    void record(final String kind, final String detail)
    {
        final Connection c = connection;
        events.add(new Event(kind, detail, passes.getAsLong(), c == null ? 0 : c.nowMs()));
    }

    int count(final String kind)
    {
        int count = 0;
        for (final Event event : events)
        {
            if (event.kind().equals(kind))
            {
                count++;
            }
        }
        return count;
    }

    boolean has(final String kind)
    {
        return count(kind) > 0;
    }

    Event first(final String kind)
    {
        for (final Event event : events)
        {
            if (event.kind().equals(kind))
            {
                return event;
            }
        }
        throw new AssertionError("no " + kind + " in " + kinds());
    }

    Event last(final String kind)
    {
        Event last = null;
        for (final Event event : events)
        {
            if (event.kind().equals(kind))
            {
                last = event;
            }
        }
        if (last == null)
        {
            throw new AssertionError("no " + kind + " in " + kinds());
        }
        return last;
    }

    List<String> details(final String kind)
    {
        final List<String> details = new ArrayList<>();
        for (final Event event : events)
        {
            if (event.kind().equals(kind))
            {
                details.add(event.detail());
            }
        }
        return details;
    }

    /** The callbacks and marks in order, without details (for messages and order checks). */
    List<String> kinds()
    {
        final List<String> kinds = new ArrayList<>();
        for (final Event event : events)
        {
            kinds.add(event.kind());
        }
        return kinds;
    }

    /** Index of the first {@code kind} in {@link #events}, or -1. */
    int indexOf(final String kind)
    {
        return kinds().indexOf(kind);
    }

    /**
     * Streams {@code total} bytes of {@link #pattern}: what fits now, the rest on each {@code onOutputDrained};
     * then {@code closeAfterFlush} if asked. Loop thread.
     */
    void stream(final long total, final boolean closeAtEnd)
    {
        streamTotal = total;
        streamWritten = 0;
        closeWhenStreamed = closeAtEnd;
        streamMore();
    }

    long streamWritten()
    {
        return streamWritten;
    }

    /** Null unless a filler was given something else than a direct buffer with room, or more room than asked. */
    String fillerProblem()
    {
        return fillerProblem;
    }

    /** Writes more of the stream, as far as the output space allows. Loop thread. */
    void streamMore()
    {
        final Connection c = connection;
        while (streamWritten < streamTotal)
        {
            final int space = c.outputSpace();
            if (space == 0)
            {
                return;
            }
            final int added = c.write(filler, (int)Math.min(space, streamTotal - streamWritten));
            if (added <= 0)
            {
                return;
            }
        }
        if (closeWhenStreamed && streamTotal > 0)
        {
            closeWhenStreamed = false;
            c.closeAfterFlush();
            record("closeAfterFlush");
        }
    }

    private int fill(final ByteBuffer dst)
    {
        final int count = dst.remaining();
        if (!dst.isDirect() || count <= 0 || count > streamTotal - streamWritten)
        {
            fillerProblem = "direct " + dst.isDirect() + ", room " + count + ", left " + (streamTotal - streamWritten);
        }
        long offset = streamWritten;
        for (int i = 0; i < count; i++)
        {
            dst.put(pattern(offset++));
        }
        streamWritten = offset;
        return count;
    }

    @Override
    public void onOpen()
    {
        record("open");
        onOpen.run(this);
    }

    @Override
    public int onInput(final ByteBuffer buffer, final int from, final int to)
    {
        final byte[] bytes = new byte[to - from];
        for (int i = from; i < to; i++)
        {
            bytes[i - from] = buffer.get(i);
        }
        final String offered = new String(bytes, StandardCharsets.ISO_8859_1);
        record("input", offered);
        return from + onInput.consume(this, offered);
    }

    @Override
    public void onOutputDrained()
    {
        record("drained");
        streamMore();
    }

    @Override
    public void onTlsEstablished()
    {
        record("tlsEstablished", connection.tlsProtocol() + " " + connection.tlsCipher());
        onTlsEstablished.run(this);
    }

    @Override
    public void onTlsFailed(final String reason)
    {
        record("tlsFailed", reason);
    }

    @Override
    public void onConnectFailed(final String reason)
    {
        record("connectFailed", reason);
    }

    @Override
    public void onTimeout()
    {
        record("timeout", Integer.toString(connection.outputSpace()));
        onTimeout.run(this);
    }

    @Override
    public void onDrain()
    {
        record("drain");
        onDrain.run(this);
    }

    @Override
    public void onClose()
    {
        record("close");
    }
}
