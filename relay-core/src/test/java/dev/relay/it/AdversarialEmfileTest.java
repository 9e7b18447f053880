package dev.relay.it;

import dev.relay.testing.Await;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * EMFILE: the relay runs under {@code ulimit -n 256}; connections are opened until it cannot accept any more
 * (a connection gets no greeting), held ~3 s while the relay's CPU is sampled (a loop spinning on a ready listener
 * would burn a core), then closed: a normal client works again.
 */
@Tag("slow")
@Timeout(120)
class AdversarialEmfileTest
{
    private static final int FD_LIMIT = 256;
    private static final long HOLD_MS = 3_000;

    @TempDir
    Path tmp;

    @Test
    void outOfFdsDoesNotSpinAndRecovers() throws Exception
    {
        try (AdversarialRelay relay = AdversarialRelay.start(tmp, AdversarialRelay.config(tmp.resolve("spool"),
            "smtp.max_connections_per_ip", "0"), FD_LIMIT))
        {
            final AdversarialRelay.Resources baseline = relay.warmBaseline();
            final List<Socket> held = new ArrayList<>();
            int greeted = 0;
            int ungreeted = 0;
            try
            {
                for (int i = 0; i < FD_LIMIT * 2 && ungreeted < 5; i++)
                {
                    final Socket s = new Socket();
                    held.add(s);
                    try
                    {
                        s.connect(new InetSocketAddress("127.0.0.1", relay.port()), 1_000);
                        s.setSoTimeout(500);
                        final InputStream in = s.getInputStream();
                        if (in.read() == '2')
                        {
                            greeted++;
                            ungreeted = 0;
                        }
                        else
                        {
                            ungreeted++;
                        }
                    }
                    catch (final IOException noAccept)
                    {
                        ungreeted++;
                    }
                }
                final int relayFds = relay.fds();
                assertTrue(ungreeted >= 5, "the relay kept accepting: " + greeted + " greeted, fds " + relayFds);
                Await.until(() -> relay.stdout().contains("accept failed"), Duration.ofSeconds(5),
                    () -> "an 'accept failed' line in the relay's log");
                final long cpu0 = relay.cpuNanos();
                final long t0 = System.nanoTime();
                while (System.nanoTime() - t0 < HOLD_MS * 1_000_000)
                {
                    Await.pause();
                    assertTrue(relay.isAlive(), "the relay died at EMFILE");
                }
                final double cpuShare = (relay.cpuNanos() - cpu0) / (double)(System.nanoTime() - t0);
                final long acceptFailures = relay.stdout().lines().filter(l -> l.contains("accept failed")).count();
                System.out.printf("[adversarial] EMFILE: ulimit -n %d, %d connections greeted, relay at %d fds, then " +
                        "%d not accepted; relay CPU over %d ms at EMFILE: %.1f%% of one core; %d 'accept failed' " +
                        "log lines so far%n", FD_LIMIT, greeted, relayFds, held.size() - greeted, HOLD_MS,
                    cpuShare * 100, acceptFailures);
                assertTrue(cpuShare < 0.5, "the relay spins at EMFILE: " + cpuShare * 100 + "% of a core");
            }
            finally
            {
                for (final Socket s : held)
                {
                    s.close();
                }
            }
            final long recoverNs = System.nanoTime();
            Await.until(() -> relay.fds() <= baseline.fds() + 4, Duration.ofSeconds(15), () -> "fds back to baseline");
            // a checkpoint due while out of descriptors cannot be written (a WARN naming the FileSystemException):
            // it is written at the next one
            relay.assertRecovered(baseline, "EMFILE", 8L * 1024 * 1024, "Too many open files");
            System.out.printf("[adversarial] EMFILE: recovered %d ms after the connections closed%n",
                (System.nanoTime() - recoverNs) / 1_000_000);
        }
    }
}
