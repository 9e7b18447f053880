package dev.relay.it;

import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 5000 idle TLS connections (implicit TLS on submissions.listen: handshake done, greeting read, then silent): the
 * heap each one costs the relay, measured from outside as {@link AdversarialIdleConnectionsTest} measures plaintext
 * ones (heap after a full GC, RSS). An idle TLS connection keeps its engine (the session's keys) and no buffer: the
 * TLS buffers, like the plaintext ones, go back to their pool once empty. Also prints a handshake rate (client and
 * relay on the same two cores; EC P-256 certificate, or RSA 2048 with -Didle.tls.key=RSA; the JDK's engine, or
 * BoringSSL's with -Didle.tls.provider=openssl). About 35 s.
 */
@Tag("slow")
@Timeout(180)
class AdversarialIdleTlsConnectionsTest
{
    private static final int CONNECTIONS = 5000;
    private static final int CLIENT_THREADS = 8;
    /** Per idle TLS connection: a JDK SSLEngine and its session are a few KiB; buffers would be 34 KiB each. */
    private static final long MAX_HEAP_PER_CONNECTION = 24 * 1024;
    private static final Pattern SUBMISSIONS = Pattern.compile("submissions on \\[[^\\]]*?:(\\d+)[,\\]]");

    @TempDir
    Path tmp;

    @Test
    void idleTlsConnectionsHoldNoBuffers() throws Exception
    {
        final TestCertificates.KeyType keyType =
            TestCertificates.KeyType.valueOf(System.getProperty("idle.tls.key", "EC"));
        final TlsRelay tls = new TlsRelay(tmp, keyType);
        final String provider = System.getProperty("idle.tls.provider", "jdk");
        tls.provider = provider;
        final Map<String, String> config = AdversarialRelay.config(tmp.resolve("spool"), tls.overrides(
            "smtp.max_connections", "20000", "smtp.max_connections_per_ip", "0",
            "smtp.rate.connections_per_minute", "0"));
        final List<Socket> sockets = Collections.synchronizedList(new ArrayList<>());
        final ExecutorService clients = Executors.newFixedThreadPool(CLIENT_THREADS);
        try (AdversarialRelay relay = AdversarialRelay.start(tmp, config, 0))
        {
            final Matcher m = SUBMISSIONS.matcher(relay.stdout());
            assertTrue(m.find(), relay.output());
            final int port = Integer.parseInt(m.group(1));
            final AdversarialRelay.Resources baseline = relay.warmBaseline();
            final long cpuBefore = relay.cpuNanos();
            final SSLContext context = TestCertificates.get().clientContext();
            final long startNs = System.nanoTime();
            final List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < CLIENT_THREADS; t++)
            {
                done.add(clients.submit(() ->
                {
                    for (int i = 0; i < CONNECTIONS / CLIENT_THREADS; i++)
                    {
                        sockets.add(openIdle(context, port));
                    }
                    return null;
                }));
            }
            for (final Future<?> each : done)
            {
                each.get(120, TimeUnit.SECONDS);
            }
            final long tookMs = (System.nanoTime() - startNs) / 1_000_000;
            final long relayCpuMs = (relay.cpuNanos() - cpuBefore) / 1_000_000;
            final AdversarialRelay.Resources held = relay.resources();
            final long heapPer = (held.heapBytes() - baseline.heapBytes()) / CONNECTIONS;
            final long rssPer = (held.rssBytes() - baseline.rssBytes()) / CONNECTIONS;
            System.out.printf("[adversarial] idle TLS: %d connections handshaken and greeted in %d ms (%.0f " +
                    "handshakes/s, relay CPU %.2f ms per handshake, %s key, %s engine, %d client threads on the same cores); " +
                    "relay %s; per idle TLS connection: heap %d B, RSS %d B%n", CONNECTIONS, tookMs,
                CONNECTIONS * 1000.0 / tookMs, relayCpuMs / (double)CONNECTIONS, keyType, provider, CLIENT_THREADS, held,
                heapPer, rssPer);
            System.out.println("[adversarial] idle TLS: live objects\n" + relay.histogram(25));
            assertTrue(heapPer < MAX_HEAP_PER_CONNECTION, "heap per idle TLS connection " + heapPer + " B");
            relay.sendOneMessage(Duration.ofSeconds(5));
            for (final Socket socket : sockets)
            {
                socket.close();
            }
            sockets.clear();
            relay.assertRecovered(baseline, "idle TLS connections", 8L << 20);
            assertTrue(relay.liveInstances("dev.relay.net.TlsLayer") <= 2, "TlsLayer instances leaked");
        }
        finally
        {
            clients.shutdownNow();
            for (final Socket socket : sockets)
            {
                socket.close();
            }
        }
    }

    /** A client that does the handshake, reads the greeting and then says nothing. */
    private static Socket openIdle(final SSLContext context, final int port) throws IOException
    {
        final Socket plain = new Socket();
        plain.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
        plain.setSoTimeout(30_000);
        final SSLSocket socket = (SSLSocket)context.getSocketFactory().createSocket(plain, TestCertificates.HOST,
            port, true);
        socket.startHandshake();
        final InputStream in = socket.getInputStream();
        final StringBuilder greeting = new StringBuilder();
        int b;
        while ((b = in.read()) >= 0 && b != '\n')
        {
            greeting.append((char)b);
        }
        if (!greeting.toString().startsWith("220 "))
        {
            throw new IOException("no greeting: " + greeting);
        }
        return socket;
    }
}
