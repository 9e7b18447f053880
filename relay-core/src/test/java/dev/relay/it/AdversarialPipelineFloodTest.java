package dev.relay.it;

import dev.relay.testing.Await;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 100k pipelined NOOPs written without reading a reply: the relay stops reading the client while its replies are
 * unsent, so its memory stays bounded (RSS growth < 64 MiB); then the client reads: 100k replies in order, and the
 * session still carries a transaction.
 */
@Tag("slow")
@Timeout(120)
class AdversarialPipelineFloodTest
{
    private static final int COMMANDS = 100_000;

    @TempDir
    Path tmp;

    @Test
    void unreadRepliesStopTheReadingNotTheMemory() throws Exception
    {
        try (AdversarialRelay relay = AdversarialRelay.start(tmp, AdversarialRelay.config(tmp.resolve("spool")), 0))
        {
            final AdversarialRelay.Resources baseline = relay.warmBaseline();
            final byte[] noop = "NOOP\r\n".getBytes(StandardCharsets.US_ASCII);
            final byte[] flood = new byte[noop.length * COMMANDS];
            for (int i = 0; i < COMMANDS; i++)
            {
                System.arraycopy(noop, 0, flood, i * noop.length, noop.length);
            }
            try (SmtpTestClient client = SmtpTestClient.connectEhlo(relay.port()))
            {
                final AtomicLong written = new AtomicLong();
                final AtomicReference<Throwable> writeFailure = new AtomicReference<>();
                final Thread writer = new Thread(() ->
                {
                    try
                    {
                        for (int at = 0; at < flood.length; at += 8192)
                        {
                            final int n = Math.min(8192, flood.length - at);
                            client.write(flood, at, n);
                            written.addAndGet(n);
                        }
                    }
                    catch (final Throwable ex)
                    {
                        writeFailure.set(ex);
                    }
                }, "flood-writer");
                writer.setDaemon(true);
                writer.start();
                // wait until the writer is done or blocked (no progress for 1 s): the relay stopped reading
                long last = -1;
                long stableSinceNs = System.nanoTime();
                while (writer.isAlive() && System.nanoTime() - stableSinceNs < 1_000_000_000L)
                {
                    if (written.get() != last)
                    {
                        last = written.get();
                        stableSinceNs = System.nanoTime();
                    }
                    Await.pause();
                }
                final boolean blocked = writer.isAlive();
                final long rssDuring = relay.rssBytes();
                final long heapDuring = relay.heapAfterGcBytes();
                final long growth = rssDuring - baseline.rssBytes();
                System.out.printf("[adversarial] pipeline flood: %d NOOPs (%d KiB); writer %s after %d KiB; relay RSS " +
                        "%+d KiB (%d -> %d KiB), heap after GC %d -> %d KiB%n", COMMANDS, flood.length >> 10,
                    blocked ? "blocked (relay stopped reading)" : "finished", written.get() >> 10, growth >> 10,
                    baseline.rssBytes() >> 10, rssDuring >> 10, baseline.heapBytes() >> 10, heapDuring >> 10);
                assertTrue(growth < 64L << 20, "RSS grew by " + (growth >> 10) + " KiB");
                assertTrue(heapDuring < baseline.heapBytes() + (16L << 20), "heap after GC " + heapDuring);
                final long startNs = System.nanoTime();
                final List<SmtpTestClient.Reply> replies = client.read(COMMANDS);
                for (int i = 0; i < COMMANDS; i++)
                {
                    final int index = i;
                    assertEquals(250, replies.get(i).code(), () -> "reply " + index + ": " + replies.get(index));
                }
                writer.join(10_000);
                assertTrue(writeFailure.get() == null, () -> "writer failed: " + writeFailure.get());
                assertEquals(flood.length, written.get());
                client.sendMessage("flood@client.test", List.of("r@ours.test"),
                    "Subject: after the flood\r\n\r\nstill usable\r\n".getBytes(StandardCharsets.US_ASCII));
                client.command("QUIT").expect(221);
                System.out.printf("[adversarial] pipeline flood: %d replies read in order in %d ms, session usable%n",
                    COMMANDS, (System.nanoTime() - startNs) / 1_000_000);
            }
            relay.assertRecovered(baseline, "pipeline flood");
        }
    }
}
