package dev.relay.it;

import dev.relay.testing.Await;
import dev.relay.testing.DigestingSink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fifty 5 MiB messages sent at once to the relay as a child process (256 MiB heap, as the tests run it), relayed
 * to a sink that digests what it gets: all arrive once, byte-exact, and the relay's memory stays bounded — a body
 * streams into the spool and out of it a buffer at a time, so 250 MiB of mail in flight never sits on the heap.
 * Prints the relay's peak RSS (file-backed spool pages included) and its peak anonymous RSS (heap, direct
 * buffers, code).
 */
@Timeout(180)
class ConcurrentBigMessagesTest
{
    private static final int MESSAGES = 50;
    private static final int SIZE = 5 << 20;
    private static final long ANON_BOUND_KIB = 300 * 1024;

    @TempDir
    Path tmp;

    @Test
    void fiftyFiveMebibyteMessagesAtOnceArriveOnceWithBoundedMemory() throws Exception
    {
        try (DigestingSink sink = DigestingSink.start())
        {
            final Map<String, String> config = new LinkedHashMap<>();
            config.put("smtp.listen", "127.0.0.1:0");
            config.put("smtp.hostname", "relay.test");
            config.put("queue.dir", tmp.resolve("spool").toString());
            config.put("metrics.listen", "off");
            config.put("delivery.routes", "*=[127.0.0.1]:" + sink.port());
            config.put("delivery.max_connections_per_hop", "50");
            try (ChildRelay relay = ChildRelay.start(tmp, config))
            {
                final AtomicBoolean sampling = new AtomicBoolean(true);
                final AtomicLong peakRss = new AtomicLong();
                final AtomicLong peakAnon = new AtomicLong();
                final Thread sampler = new Thread(() ->
                {
                    while (sampling.get())
                    {
                        peakRss.accumulateAndGet(status(relay.pid(), "VmRSS:"), Math::max);
                        peakAnon.accumulateAndGet(status(relay.pid(), "RssAnon:"), Math::max);
                        Await.pause();
                    }
                }, "rss-sampler");
                sampler.start();

                final Map<String, String> sent = new LinkedHashMap<>();
                final List<byte[]> bodies = new ArrayList<>();
                for (int i = 0; i < MESSAGES; i++)
                {
                    final String id = "big5-" + i;
                    final byte[] wire = body(id, i);
                    bodies.add(wire);
                    sent.put(id, DigestingSink.sha256(unstuffed(wire)));
                }
                final long started = System.nanoTime();
                final ExecutorService senders = Executors.newFixedThreadPool(MESSAGES);
                try
                {
                    final List<Future<String>> replies = new ArrayList<>();
                    for (int i = 0; i < MESSAGES; i++)
                    {
                        final byte[] wire = bodies.get(i);
                        replies.add(senders.submit(() ->
                        {
                            try (SmtpTestClient client = SmtpTestClient.connectEhlo(relay.port()))
                            {
                                return client.sendMessage("s@client.test", List.of("r@dest.test"), wire);
                            }
                        }));
                    }
                    for (final Future<String> reply : replies)
                    {
                        reply.get(120, TimeUnit.SECONDS);
                    }
                }
                finally
                {
                    senders.shutdownNow();
                }
                bodies.clear();
                Await.until(() -> sink.messageCount() >= MESSAGES, Duration.ofSeconds(120),
                    () -> "50 messages at the sink; it has " + sink.messageCount());
                final long tookMs = (System.nanoTime() - started) / 1_000_000;
                sampling.set(false);
                sampler.join();

                int lost = 0;
                int duplicated = 0;
                for (final Map.Entry<String, String> entry : sent.entrySet())
                {
                    final List<DigestingSink.Digest> copies = sink.received(entry.getKey());
                    if (copies.isEmpty())
                    {
                        lost++;
                        continue;
                    }
                    duplicated += copies.size() - 1;
                    for (final DigestingSink.Digest copy : copies)
                    {
                        assertEquals(entry.getValue(), copy.sha256(), "content of " + entry.getKey());
                    }
                }
                System.out.printf("50 x 5 MiB at once: %d ms end to end, %d concurrent connections at the sink, " +
                    "relay peak RSS %d MiB (anonymous %d MiB)%n", tookMs, sink.maxConcurrentConnections(),
                    peakRss.get() >> 10, peakAnon.get() >> 10);
                assertEquals(0, lost, "lost");
                assertEquals(0, duplicated, "duplicated");
                assertTrue(peakAnon.get() < ANON_BOUND_KIB,
                    "anonymous memory peaked at " + (peakAnon.get() >> 10) + " MiB with 250 MiB of mail in flight");
                assertTrue(relay.isAlive(), relay.output());
            }
        }
    }

    /** A distinct body of {@link #SIZE} bytes in wire form, with stuffed dot lines. */
    private static byte[] body(final String id, final int seed)
    {
        final StringBuilder text = new StringBuilder(SIZE + 200)
            .append("From: <s@client.test>\r\nSubject: ").append(id).append("\r\nMessage-ID: <").append(id)
            .append("@client.test>\r\n\r\n");
        int line = 0;
        while (text.length() < SIZE)
        {
            text.append(line % 11 == 0 ? ".." : "").append(seed).append(':').append(line++).append(' ')
                .append("abcdefghijklmnopqrstuvwxyz0123456789".repeat(2)).append("\r\n");
        }
        return text.toString().getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] unstuffed(final byte[] wire)
    {
        final java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(wire.length);
        boolean lineStart = true;
        for (final byte b : wire)
        {
            if (!(lineStart && b == '.'))
            {
                out.write(b);
                lineStart = b == '\n';
            }
            else
            {
                lineStart = false;
            }
        }
        return out.toByteArray();
    }

    /** A {@code /proc/PID/status} field in KiB, 0 when unreadable. */
    private static long status(final long pid, final String field)
    {
        try
        {
            for (final String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")))
            {
                if (line.startsWith(field))
                {
                    return Long.parseLong(line.substring(field.length()).trim().split("\\s+")[0]);
                }
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            return 0;
        }
        return 0;
    }
}
