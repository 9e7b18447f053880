package dev.relay.it;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.Selector;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Slowloris: 300 connections each sending one byte of a command every 2 s, against smtp.timeout.command=3s. A
 * command that trickles in must not keep its connection alive forever: the server closes every one of them with
 * 421 4.4.2 within ~10 s, while normal clients keep working.
 */
@Tag("slow")
@Timeout(90)
class AdversarialSlowlorisTest
{
    private static final int CONNECTIONS = 300;
    private static final long BYTE_EVERY_MS = 2_000;

    @TempDir
    Path tmp;

    @Test
    void trickledCommandsAreTimedOut() throws Exception
    {
        try (AdversarialRelay relay = AdversarialRelay.start(tmp,
            AdversarialRelay.config(tmp.resolve("spool"), "smtp.timeout.command", "3s", "smtp.max_connections_per_ip", "0"), 0))
        {
            final AdversarialRelay.Resources baseline = relay.warmBaseline();
            final byte[] command = "EHLO slowloris.example.com\r\n".getBytes(StandardCharsets.US_ASCII);
            final long start = System.nanoTime();
            final List<Attack.Conn> conns;
            final int normal;
            try (Selector selector = Selector.open(); Attack.NormalTraffic traffic = new Attack.NormalTraffic(relay))
            {
                conns = Attack.open(relay.port(), CONNECTIONS, selector);
                final ByteBuffer scratch = ByteBuffer.allocate(4096);
                int sent = 0;
                long nextByteNs = System.nanoTime();
                final long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
                while (conns.stream().anyMatch(c -> !c.closed()) && System.nanoTime() - deadline < 0)
                {
                    if (System.nanoTime() - nextByteNs >= 0)
                    {
                        final ByteBuffer one = ByteBuffer.wrap(command, sent % (command.length - 2), 1);
                        for (final Attack.Conn c : conns)
                        {
                            if (!c.closed())
                            {
                                try
                                {
                                    c.channel.write(one.duplicate());
                                }
                                catch (final java.io.IOException ex)
                                {
                                    Attack.closeConn(c, c.channel.keyFor(selector));
                                }
                            }
                        }
                        sent++;
                        nextByteNs += BYTE_EVERY_MS * 1_000_000;
                    }
                    Attack.pump(selector, 50, scratch);
                }
                normal = traffic.stop();
            }
            final long open = conns.stream().filter(c -> !c.closed()).count();
            final long with421 = conns.stream().filter(c -> c.received.toString().contains("421 4.4.2")).count();
            final Duration slowest = conns.stream().filter(Attack.Conn::closed).map(Attack.Conn::lifetime)
                .max(Duration::compareTo).orElse(Duration.ZERO);
            final Duration fastest = conns.stream().filter(Attack.Conn::closed).map(Attack.Conn::lifetime)
                .min(Duration::compareTo).orElse(Duration.ZERO);
            System.out.printf("[adversarial] slowloris: %d connections, %d still open after %d ms, %d got 421 4.4.2, " +
                    "closed after %d..%d ms, %d normal transactions meanwhile%n", CONNECTIONS, open,
                (System.nanoTime() - start) / 1_000_000, with421, fastest.toMillis(), slowest.toMillis(), normal);
            assertEquals(0, open, () -> open + " slowloris connections still open; example received: " +
                conns.get(0).received);
            assertTrue(slowest.compareTo(Duration.ofSeconds(10)) <= 0, () -> "slowest close after " + slowest);
            assertEquals(CONNECTIONS, with421, "every slowloris connection is told 421 4.4.2");
            assertTrue(normal >= 3, "normal clients got through during the attack: " + normal);
            relay.assertRecovered(baseline, "slowloris");
        }
    }
}
