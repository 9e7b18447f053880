package dev.relay.it;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 10 s of random bytes from 20 connections that read their replies and, at the same time, 20 that never read: the
 * relay answers errors, disconnects each after smtp.max_errors, logs no exception, and recovers. A connection the
 * server dropped is replaced at once, so the attack keeps its 40 connections for the whole window.
 */
@Tag("slow")
@Timeout(90)
class AdversarialGarbageTest
{
    private static final int READING = 20;
    private static final int NOT_READING = 20;
    private static final long WINDOW_MS = 10_000;

    @TempDir
    Path tmp;

    private final AtomicLong connections = new AtomicLong();
    private final AtomicLong bytesSent = new AtomicLong();
    private final AtomicLong errorReplies = new AtomicLong();
    private final AtomicLong tooManyErrors = new AtomicLong();
    private final AtomicLong readerCloses = new AtomicLong();
    private final AtomicLong nonReaderCloses = new AtomicLong();
    private final AtomicLong otherReplies = new AtomicLong();

    @Test
    void randomBytesGetErrorsAndNothingElse() throws Exception
    {
        try (AdversarialRelay relay = AdversarialRelay.start(tmp, AdversarialRelay.config(tmp.resolve("spool"),
            "smtp.max_connections_per_ip", "0"), 0))
        {
            final AdversarialRelay.Resources baseline = relay.warmBaseline();
            final long endNs = System.nanoTime() + WINDOW_MS * 1_000_000;
            final List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < READING + NOT_READING; i++)
            {
                final boolean reads = i < READING;
                final long seed = 0x5eed0000L + i;
                final Thread t = new Thread(() -> attack(relay.port(), reads, seed, endNs), "garbage-" + i);
                t.setDaemon(true);
                t.start();
                threads.add(t);
            }
            final int normal;
            try (Attack.NormalTraffic traffic = new Attack.NormalTraffic(relay))
            {
                for (final Thread t : threads)
                {
                    t.join(WINDOW_MS + 20_000);
                    assertTrue(!t.isAlive(), t.getName() + " still running");
                }
                normal = traffic.stop();
            }
            System.out.printf("[adversarial] garbage: %d connections in %d s (%d reading, %d not reading at a time), " +
                    "%d MiB sent, %d error replies, %d x 421 too many errors, closed by server: %d reading, " +
                    "%d not reading; other replies %d; %d normal transactions meanwhile%n", connections.get(),
                WINDOW_MS / 1000, READING, NOT_READING, bytesSent.get() >> 20, errorReplies.get(), tooManyErrors.get(),
                readerCloses.get(), nonReaderCloses.get(), otherReplies.get(), normal);
            assertTrue(relay.isAlive(), relay::output);
            assertTrue(errorReplies.get() > 0, "errors were answered");
            assertTrue(tooManyErrors.get() > 0, "clients were disconnected after max_errors");
            assertTrue(nonReaderCloses.get() > 0, "clients that never read were disconnected too");
            assertEquals(0, otherReplies.get(), "no reply but errors, greetings and 421");
            relay.assertRecovered(baseline, "garbage");
        }
    }

    private void attack(final int port, final boolean reads, final long seed, final long endNs)
    {
        final SplittableRandom random = new SplittableRandom(seed);
        final byte[] chunk = new byte[4096];
        while (System.nanoTime() - endNs < 0)
        {
            try (Socket socket = new Socket())
            {
                socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
                socket.setSoTimeout(15_000);
                connections.incrementAndGet();
                final Thread reader = reads ? startReader(socket) : null;
                final OutputStream out = socket.getOutputStream();
                try
                {
                    while (System.nanoTime() - endNs < 0)
                    {
                        random.nextBytes(chunk);
                        out.write(chunk, 0, 1 + random.nextInt(chunk.length));
                        bytesSent.addAndGet(chunk.length);
                    }
                }
                catch (final IOException closedByServer)
                {
                    if (!reads)
                    {
                        nonReaderCloses.incrementAndGet();
                    }
                }
                if (reader != null)
                {
                    socket.shutdownOutput();
                    reader.join(15_000);
                }
            }
            catch (final IOException | InterruptedException ex)
            {
                // connect refused or reset: try again
            }
        }
    }

    private Thread startReader(final Socket socket) throws IOException
    {
        final InputStream in = socket.getInputStream();
        final Thread t = new Thread(() ->
        {
            final StringBuilder line = new StringBuilder();
            try
            {
                int b;
                while ((b = in.read()) >= 0)
                {
                    if (b != '\n')
                    {
                        line.append((char)b);
                        continue;
                    }
                    final String text = line.toString();
                    line.setLength(0);
                    if (text.startsWith("5"))
                    {
                        errorReplies.incrementAndGet();
                    }
                    else if (text.startsWith("421 4.7.0"))
                    {
                        tooManyErrors.incrementAndGet();
                    }
                    else if (!text.startsWith("220 "))
                    {
                        otherReplies.incrementAndGet();
                        System.out.println("[adversarial] garbage: unexpected reply " +
                            new String(text.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.ISO_8859_1));
                    }
                }
                readerCloses.incrementAndGet();
            }
            catch (final IOException reset)
            {
                readerCloses.incrementAndGet();
            }
        }, "garbage-reader");
        t.setDaemon(true);
        t.start();
        return t;
    }
}
