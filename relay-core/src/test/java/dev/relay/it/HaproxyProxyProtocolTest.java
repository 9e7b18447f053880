package dev.relay.it;

import dev.relay.testing.Await;
import dev.relay.testing.HaproxyProcess;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Debian's HAProxy in front of an in-process relay with {@code smtp.proxy_protocol=true}, {@code send-proxy} (v1) on
 * one frontend and {@code send-proxy-v2} on another, health checks on {@code /health}: clients connecting from
 * 127.0.0.2, .3 and .7 reach the relay through HAProxy, and the relay sees each of them, not HAProxy, in
 * {@code Received:} and in its per-IP limit.
 */
@Timeout(60)
class HaproxyProxyProtocolTest
{
    private static final byte[] BODY = "Subject: via haproxy\r\n\r\nhello\r\n".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path tmp;

    private InProcessRelay relay;
    private HaproxyProcess haproxy;

    @AfterEach
    void stop() throws InterruptedException
    {
        if (haproxy != null)
        {
            haproxy.close();
        }
        if (relay != null)
        {
            relay.close();
        }
    }

    @Test
    void theRelaySeesTheClientsBehindHaproxyV1AndV2() throws Exception
    {
        final int metricsPort = freePort();
        relay = InProcessRelay.start(tmp.resolve("spool"), "smtp.proxy_protocol", "true",
            "metrics.listen", "127.0.0.1:" + metricsPort, "relay.domains", "ours.test",
            "smtp.max_connections_per_ip", "2", "smtp.limits_exempt_relay_networks", "false");
        final int stats = freePort();
        final int v1 = freePort();
        final int v2 = freePort();
        haproxy = HaproxyProcess.start(tmp.resolve("haproxy"), String.format(HaproxyProcess.DEFAULTS, stats) +
            frontend("smtp_v1", v1, "send-proxy", relay.port(), metricsPort) +
            frontend("smtp_v2", v2, "send-proxy-v2", relay.port(), metricsPort), stats, stats, v1, v2);
        Await.until(() -> "UP".equals(state("smtp_v1_relays")) && "UP".equals(state("smtp_v2_relays")),
            Duration.ofSeconds(15), () -> "health checks on /health pass\n" + haproxy.log());

        final String viaV1;
        try (SmtpTestClient client = SmtpTestClient.connectFrom("127.0.0.2", v1))
        {
            client.greeting().expect(220);
            client.command("EHLO two.test").expect(250);
            viaV1 = client.sendMessage("a@two.test", List.of("x@ours.test"), BODY);
        }
        final String viaV2;
        try (SmtpTestClient client = SmtpTestClient.connectFrom("127.0.0.3", v2))
        {
            client.greeting().expect(220);
            client.command("EHLO three.test").expect(250);
            viaV2 = client.sendMessage("a@three.test", List.of("x@ours.test"), BODY);
        }
        final String receivedV1 = SpoolContents.find(relay.spoolDir(), viaV1).receivedHeader();
        assertTrue(receivedV1.contains("from two.test ([127.0.0.2])"), receivedV1);
        final String receivedV2 = SpoolContents.find(relay.spoolDir(), viaV2).receivedHeader();
        assertTrue(receivedV2.contains("from three.test ([127.0.0.3])"), receivedV2);

        // smtp.max_connections_per_ip=2 counts 127.0.0.7, not HAProxy's 127.0.0.1 (which holds all of them)
        final List<SmtpTestClient> held = new ArrayList<>();
        try
        {
            for (int i = 0; i < 2; i++)
            {
                held.add(SmtpTestClient.connectFrom("127.0.0.7", i == 0 ? v1 : v2));
                held.get(i).greeting().expect(220);
            }
            try (SmtpTestClient third = SmtpTestClient.connectFrom("127.0.0.7", v2))
            {
                third.greeting().expect(421, "4.7.0");
            }
            try (SmtpTestClient other = SmtpTestClient.connectFrom("127.0.0.8", v2))
            {
                other.greeting().expect(220);
            }
            assertEquals(2, relay.relay().connectionLimiter().clientConnections(InetAddress.getByName("127.0.0.7")));
        }
        finally
        {
            for (final SmtpTestClient client : held)
            {
                client.close();
            }
        }
    }

    /** A frontend on {@code port} and its backend: the relay, sent the header {@code sendProxy}, checked on /health. */
    private static String frontend(final String name, final int port, final String sendProxy, final int relayPort,
        final int metricsPort)
    {
        return String.format("""
            frontend %1$s
                bind 127.0.0.1:%2$d
                default_backend %1$s_relays

            backend %1$s_relays
                option httpchk
                http-check send meth GET uri /health
                http-check expect status 200
                server relay 127.0.0.1:%3$d %4$s check port %5$d inter 200ms fall 2 rise 1

            """, name, port, relayPort, sendProxy, metricsPort);
    }

    private String state(final String backend)
    {
        try
        {
            final Map<String, String> states = haproxy.serverStates(backend);
            return states.get("relay");
        }
        catch (final IOException | InterruptedException ex)
        {
            return ex.toString();
        }
    }

    private static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress()))
        {
            return socket.getLocalPort();
        }
    }
}
