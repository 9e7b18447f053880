package dev.relay.it;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.Selector;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 5000 idle connections opened in one burst (greeted, then silent): the cost per idle connection, measured from
 * outside as heap after GC and RSS, stays small (idle connections hold no read buffer), a normal client still works,
 * and once they are gone the heap after GC is back within a few MiB of its baseline.
 */
@Tag("slow")
@Timeout(120)
class AdversarialIdleConnectionsTest
{
    private static final int CONNECTIONS = 5000;
    private static final long MAX_HEAP_PER_CONNECTION = 10 * 1024;
    private static final long MAX_HEAP_RETAINED = 4L << 20;

    @TempDir
    Path tmp;

    @Test
    void idleConnectionsAreCheap() throws Exception
    {
        try (AdversarialRelay relay = AdversarialRelay.start(tmp, AdversarialRelay.config(tmp.resolve("spool"),
            "smtp.max_connections", "20000", "smtp.max_connections_per_ip", "0"), 0))
        {
            final String limits = java.nio.file.Files.readString(Path.of("/proc", Long.toString(relay.pid()), "limits"));
            final String nofile = limits.lines().filter(l -> l.startsWith("Max open files")).findFirst().orElse("?");
            System.out.println("[adversarial] idle: child " + nofile.replaceAll("\\s+", " "));
            final AdversarialRelay.Resources baseline = relay.warmBaseline();
            final long startNs = System.nanoTime();
            try (Selector selector = Selector.open())
            {
                // one burst, as an attacker would open them: the loops see thousands of new connections (and their
                // timeouts) within a few milliseconds
                final List<Attack.Conn> conns = Attack.open(relay.port(), CONNECTIONS, selector);
                final ByteBuffer scratch = ByteBuffer.allocate(4096);
                final long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                while (conns.stream().anyMatch(c -> c.received.indexOf("\r\n") < 0))
                {
                    assertTrue(System.nanoTime() - deadline < 0, "not all idle connections greeted in 30 s");
                    Attack.pump(selector, 20, scratch);
                }
                final long openMs = (System.nanoTime() - startNs) / 1_000_000;
                assertTrue(conns.stream().allMatch(c -> c.received.toString().startsWith("220 ") && !c.closed()),
                    "every idle connection greeted with 220 and open");
                final AdversarialRelay.Resources held = relay.resources();
                final long heapPer = (held.heapBytes() - baseline.heapBytes()) / CONNECTIONS;
                final long rssPer = (held.rssBytes() - baseline.rssBytes()) / CONNECTIONS;
                System.out.printf("[adversarial] idle: %d connections open and greeted in %d ms; relay %s; per idle " +
                        "connection: heap %d B, RSS %d B, fds %.2f%n", CONNECTIONS, openMs, held, heapPer, rssPer,
                    (held.fds() - baseline.fds()) / (double)CONNECTIONS);
                relay.sendOneMessage(Duration.ofSeconds(5));
                assertTrue(heapPer < MAX_HEAP_PER_CONNECTION, "heap per idle connection " + heapPer + " B");
                assertTrue(rssPer < 64 * 1024, "RSS per idle connection " + rssPer + " B");
                for (final Attack.Conn c : conns)
                {
                    c.channel.close();
                }
            }
            // once they are closed the relay returns to its baseline: nothing sized for the burst is kept (the timeouts
            // once lived in a timer wheel that kept 10-15 MiB of grown tick arrays after such a burst)
            final AdversarialRelay.Resources after = relay.assertRecovered(baseline, "idle connections",
                MAX_HEAP_RETAINED);
            System.out.printf("[adversarial] idle: heap retained after all closed: %d KiB%n",
                (after.heapBytes() - baseline.heapBytes()) >> 10);
            assertTrue(relay.liveInstances("dev.relay.smtp.SmtpSession") <= 2, "SmtpSession instances leaked");
            assertTrue(relay.liveInstances("dev.relay.net.NioConnection") <= 2, "NioConnection instances leaked");
        }
    }
}
