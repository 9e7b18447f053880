package dev.relay.it;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * 10k connect/disconnect cycles from 8 threads, in three styles (close at once, close after the greeting, reset
 * with SO_LINGER 0 after the greeting): no fd leak, no thread growth.
 */
@Tag("slow")
@Timeout(120)
class AdversarialChurnTest
{
    private static final int CYCLES = 10_000;
    private static final int THREADS = 8;

    @TempDir
    Path tmp;

    @Test
    void connectDisconnectLeaksNothing() throws Exception
    {
        try (AdversarialRelay relay = AdversarialRelay.start(tmp, AdversarialRelay.config(tmp.resolve("spool"),
            "smtp.max_connections_per_ip", "0"), 0))
        {
            final AdversarialRelay.Resources baseline = relay.warmBaseline();
            final AtomicInteger next = new AtomicInteger();
            final AtomicInteger greeted = new AtomicInteger();
            final long startNs = System.nanoTime();
            final ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            try
            {
                final List<Future<?>> done = new ArrayList<>();
                for (int t = 0; t < THREADS; t++)
                {
                    done.add(pool.submit(() ->
                    {
                        int i;
                        while ((i = next.getAndIncrement()) < CYCLES)
                        {
                            cycle(relay.port(), i % 3, greeted);
                        }
                        return null;
                    }));
                }
                for (final Future<?> f : done)
                {
                    f.get();
                }
            }
            finally
            {
                pool.shutdownNow();
            }
            final long ms = (System.nanoTime() - startNs) / 1_000_000;
            System.out.printf("[adversarial] churn: %d connect/disconnect cycles on %d threads in %d ms, %d greeted%n",
                CYCLES, THREADS, ms, greeted.get());
            assertEquals(CYCLES - (CYCLES + 2) / 3, greeted.get(), "every connection that waited was greeted");
            relay.assertRecovered(baseline, "churn");
        }
    }

    private static void cycle(final int port, final int style, final AtomicInteger greeted) throws IOException
    {
        try (Socket socket = new Socket())
        {
            socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
            socket.setSoTimeout(10_000);
            if (style == 0)
            {
                return;
            }
            final byte[] greeting = new byte[3];
            int n = 0;
            while (n < 3)
            {
                final int r = socket.getInputStream().read(greeting, n, 3 - n);
                if (r < 0)
                {
                    throw new IOException("closed before the greeting");
                }
                n += r;
            }
            if (greeting[0] == '2')
            {
                greeted.incrementAndGet();
            }
            if (style == 2)
            {
                socket.setSoLinger(true, 0);
            }
        }
    }
}
