package dev.relay.spool;

import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.MessageSink;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

final class SpoolTestSupport
{
    private SpoolTestSupport()
    {
    }

    static InboundMessage message(final long queueId, final String from, final String... recipients)
    {
        final InboundMessage message = new InboundMessage();
        message.queueId(queueId);
        message.receivedAtMs(System.currentTimeMillis());
        message.addFlags(InboundMessage.FLAG_8BITMIME);
        message.clientAddress(ascii("127.0.0.1"));
        message.heloName(ascii("client.example"));
        message.reversePath(ascii(from));
        for (final String rcpt : recipients)
        {
            message.recipients().add(ascii(rcpt));
        }
        message.receivedHeader(ascii("Received: from client.example ([127.0.0.1]) by relay; " + queueId + "\r\n"));
        return message;
    }

    static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    static byte[] body(final long seed, final int length)
    {
        final byte[] body = new byte[length];
        new Random(seed).nextBytes(body);
        return body;
    }

    static ByteBuffer direct(final byte[] bytes)
    {
        final ByteBuffer buffer = ByteBuffer.allocateDirect(bytes.length + 32);
        buffer.position(16);
        buffer.put(bytes);
        buffer.flip().position(5);
        return buffer;
    }

    /** Appends {@code body} in pieces of {@code piece} bytes through a direct buffer (offset 16). */
    static boolean appendAll(final MessageSink sink, final InboundMessage message, final byte[] body, final int piece)
    {
        final ByteBuffer buffer = direct(body);
        for (int from = 0; from < body.length; from += piece)
        {
            final int to = Math.min(body.length, from + piece);
            if (!sink.append(message, buffer, 16 + from, 16 + to))
            {
                return false;
            }
        }
        return true;
    }

    static void await(final BooleanSupplier condition, final long timeoutMs, final Runnable eachTry)
    {
        final long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() > deadline)
            {
                fail("condition not met within " + timeoutMs + " ms");
            }
            eachTry.run();
            Thread.onSpinWait();
        }
        assertTrue(condition.getAsBoolean());
    }

    static final class Commits implements MessageSink.CommitListener
    {
        final List<Long> ids = new ArrayList<>();
        final List<Thread> threads = new ArrayList<>();
        final List<Boolean> durable = new ArrayList<>();

        @Override
        public void onCommitted(final InboundMessage message, final boolean durable)
        {
            ids.add(message.queueId());
            threads.add(Thread.currentThread());
            this.durable.add(durable);
        }
    }
}
