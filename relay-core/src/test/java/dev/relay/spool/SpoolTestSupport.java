package dev.relay.spool;

import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.MessageSink;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * What the spool tests share: messages and bodies, appending a body in pieces, polling with a deadline, reading a
 * reader to its end, writer threads started together, and damaging a cycle file where a body's bytes are.
 */
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

    /** What one writer thread of {@link #onWriterThreads} does, with its index and its own writer. */
    interface WriterWork
    {
        void run(int loop, SpoolWriter writer) throws Exception;
    }

    /**
     * Makes {@code writers} writers of {@code spool} on this thread (the n-th writes lane n), runs {@code work} with
     * each on a thread of its own named {@code loop-n}, all released at once, and joins them all; then fails with
     * the first failure a thread met.
     */
    static void onWriterThreads(final Spool spool, final int writers, final WriterWork work) throws InterruptedException
    {
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final CountDownLatch start = new CountDownLatch(1);
        final List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < writers; t++)
        {
            final int loop = t;
            final SpoolWriter writer = spool.newWriter(() -> { });
            threads.add(new Thread(() ->
            {
                try
                {
                    start.await();
                    work.run(loop, writer);
                }
                catch (final Throwable ex)
                {
                    failure.compareAndSet(null, ex);
                }
            }, "loop-" + t));
        }
        threads.forEach(Thread::start);
        start.countDown();
        for (final Thread thread : threads)
        {
            thread.join();
        }
        if (failure.get() != null)
        {
            throw new AssertionError("a writer thread failed", failure.get());
        }
    }

    /** Polls {@code reader} until it returns nothing more. */
    static List<SpooledMessage> readAll(final SpoolReader reader)
    {
        final List<SpooledMessage> messages = new ArrayList<>();
        while (reader.poll(messages::add, 100) > 0)
        {
            // keep reading
        }
        return messages;
    }

    /** The newest cycle file of the queue in {@code queueDir} (the spool's directory, or a lane's). */
    static Path cycleFile(final Path queueDir) throws IOException
    {
        try (Stream<Path> files = Files.list(queueDir))
        {
            return files.filter(path -> path.toString().endsWith(".cq4")).max(Path::compareTo).orElseThrow();
        }
    }

    /** Flips one byte of {@code file} where 16 bytes of {@code body} from {@code at} are found. */
    static void flipByteOf(final Path file, final byte[] body, final int at) throws IOException
    {
        final byte[] needle = Arrays.copyOfRange(body, at, at + 16);
        final byte[] content = Files.readAllBytes(file);
        for (int i = 0; i + needle.length <= content.length; i++)
        {
            if (Arrays.equals(content, i, i + needle.length, needle, 0, needle.length))
            {
                try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw"))
                {
                    raf.seek(i + 3);
                    raf.write(content[i + 3] ^ 0x40);
                }
                return;
            }
        }
        throw new AssertionError("body bytes not found in " + file);
    }
}
