package dev.relay.bench.smtp;

import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import dev.relay.config.SmtpServerSettings;
import dev.relay.net.Connection;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.MessageSink;
import dev.relay.smtp.SessionContext;
import dev.relay.smtp.SessionEvents;
import dev.relay.smtp.SmtpSession;

/**
 * A whole inbound transaction in memory, no socket and no spool: a pipelined MAIL, three RCPT and DATA, a body of
 * {@code bodyBytes} and the end of data, through {@link SmtpSession} into a sink that commits at once (as
 * {@code queue.sync=none} would). Measures the protocol cost per message: parsing, state machine, replies,
 * Received header. Allocation per op comes from the per-transaction envelope copies and the Received header (the
 * commands and body bytes themselves allocate nothing).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
@State(Scope.Thread)
public class SmtpSessionBenchmark
{
    @Param({"1024", "65536"})
    public int bodyBytes;

    private final BenchConnection connection = new BenchConnection();
    private SmtpSession session;
    private ByteBuffer input;
    private int inputLength;

    @Setup
    public void setup()
    {
        final MessageSink sink = new MessageSink()
        {
            @Override
            public boolean begin(final InboundMessage message)
            {
                return true;
            }

            @Override
            public boolean append(final InboundMessage message, final ByteBuffer buffer, final int from, final int to)
            {
                return true;
            }

            @Override
            public boolean complete(final InboundMessage message, final CommitListener listener)
            {
                listener.onCommitted(message, true);
                return true;
            }

            @Override
            public void abort(final InboundMessage message)
            {
            }
        };
        session = new SmtpSession(
            new SessionContext(SmtpServerSettings.defaults("relay.bench"), sink, 0, SessionEvents.NONE), connection);
        session.onOpen();
        final ByteBuffer ehlo = ascii("EHLO client.example.org\r\n");
        session.onInput(ehlo, 0, ehlo.limit());

        final StringBuilder text = new StringBuilder();
        text.append("MAIL FROM:<sender@example.com> SIZE=").append(bodyBytes).append("\r\n")
            .append("RCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n")
            .append("From: sender@example.com\r\nTo: a@example.net\r\nSubject: benchmark\r\n\r\n");
        final String line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
        while (text.length() < bodyBytes)
        {
            text.append(line);
        }
        text.append(".\r\n");
        input = ascii(text.toString());
        inputLength = input.limit();
    }

    @Benchmark
    public int transaction()
    {
        connection.written = 0;
        return session.onInput(input, 0, inputLength) + connection.written;
    }

    private static ByteBuffer ascii(final String text)
    {
        final byte[] bytes = text.getBytes(StandardCharsets.US_ASCII);
        final ByteBuffer buffer = ByteBuffer.allocateDirect(bytes.length);
        buffer.put(bytes).flip();
        return buffer;
    }

    /** Swallows replies; input is never paused for long because the sink commits inside complete(). */
    private static final class BenchConnection implements Connection
    {
        private final InetSocketAddress remote = new InetSocketAddress("127.0.0.1", 40000);
        private final byte[] remoteBytes = {127, 0, 0, 1};
        int written;

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
            return 16 * 1024;
        }

        @Override
        public void write(final byte[] bytes, final int offset, final int length)
        {
            written += length;
        }

        @Override
        public int write(final dev.relay.net.OutputFiller filler, final int maxLength)
        {
            final java.nio.ByteBuffer sink = java.nio.ByteBuffer.allocate(Math.min(maxLength, outputSpace()));
            final int added = filler.fill(sink);
            written += Math.max(0, added);
            return added;
        }

        @Override
        public void pauseInput()
        {
        }

        @Override
        public void resumeInput()
        {
        }

        @Override
        public void closeAfterFlush()
        {
        }

        @Override
        public void closeNow()
        {
        }

        @Override
        public void idleTimeoutMs(final long timeoutMs)
        {
        }

        @Override
        public long nowMs()
        {
            return 1_700_000_000_000L;
        }

        @Override
        public int loopIndex()
        {
            return 0;
        }
    }
}
