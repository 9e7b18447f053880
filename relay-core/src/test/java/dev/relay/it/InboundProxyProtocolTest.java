package dev.relay.it;

import dev.relay.testing.ProxyHeaders;
import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code smtp.proxy_protocol} on an in-process relay, with a JDK socket playing the load balancer: the client the
 * header names decides relaying (relay.networks), is the one per-IP limits count and is the address in
 * {@code Received:}; a peer that sends no header, a late one, or an untrusted proxy gets no greeting; STARTTLS
 * follows the header; submission listeners take clients directly.
 */
@Timeout(60)
class InboundProxyProtocolTest
{
    private static final byte[] BODY = "Subject: proxied\r\n\r\nhello\r\n".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path tmp;

    private InProcessRelay relay;

    @AfterEach
    void stop() throws InterruptedException
    {
        if (relay != null)
        {
            relay.close();
        }
    }

    private void start(final String... overrides) throws IOException
    {
        final String[] all = new String[overrides.length + 4];
        all[0] = "smtp.proxy_protocol";
        all[1] = "true";
        all[2] = "relay.domains";
        all[3] = "ours.test";
        System.arraycopy(overrides, 0, all, 4, overrides.length);
        relay = InProcessRelay.start(tmp.resolve("spool"), all);
    }

    @Test
    void theHeadersClientDecidesRelayingAndIsTheAddressInReceived() throws Exception
    {
        // relay.networks is the default 127.0.0.0/8: the proxy (127.0.0.1) may relay, its clients only when in it
        start();
        final String inside;
        try (SmtpTestClient client = SmtpTestClient.connectProxied(relay.port(), ProxyHeaders.v1("127.0.0.9", 5000)))
        {
            client.greeting().expect(220);
            client.command("EHLO inside.test").expect(250);
            inside = client.sendMessage("a@inside.test", List.of("x@elsewhere.test"), BODY);
        }
        final String outside;
        try (SmtpTestClient client = SmtpTestClient.connectProxied(relay.port(),
            ProxyHeaders.v2("198.51.100.7", 40000)))
        {
            client.greeting().expect(220);
            client.command("EHLO outside.test").expect(250);
            client.command("MAIL FROM:<b@outside.test>").expect(250);
            client.command("RCPT TO:<x@elsewhere.test>").expect(554, "5.7.1");
            client.command("RSET").expect(250);
            outside = client.sendMessage("b@outside.test", List.of("y@ours.test"), BODY);
        }
        final String insideReceived = SpoolContents.find(relay.spoolDir(), inside).receivedHeader();
        assertTrue(insideReceived.contains("from inside.test ([127.0.0.9])"), insideReceived);
        final String outsideReceived = SpoolContents.find(relay.spoolDir(), outside).receivedHeader();
        assertTrue(outsideReceived.contains("[198.51.100.7]"), outsideReceived);
    }

    @Test
    void perClientLimitsCountTheHeadersClientNotTheProxy() throws Exception
    {
        start("smtp.max_connections_per_ip", "2");
        try (SmtpTestClient first = SmtpTestClient.connectProxied(relay.port(), ProxyHeaders.v1("198.51.100.7", 1));
             SmtpTestClient second = SmtpTestClient.connectProxied(relay.port(), ProxyHeaders.v2("198.51.100.7", 2));
             SmtpTestClient third = SmtpTestClient.connectProxied(relay.port(), ProxyHeaders.v1("198.51.100.7", 3));
             SmtpTestClient otherClient = SmtpTestClient.connectProxied(relay.port(),
                 ProxyHeaders.v1("198.51.100.8", 4)))
        {
            first.greeting().expect(220);
            second.greeting().expect(220);
            third.greeting().expect(421, "4.7.0");
            assertTrue(third.awaitClosedByServer(Duration.ofSeconds(10)), "closed after the 421");
            // four connections from the proxy's one address: it is not the client, and it is not limited
            otherClient.greeting().expect(220);
            first.command("QUIT").expect(221);
        }
    }

    @Test
    void noHeaderALateOneOrAnUntrustedProxyGetNoGreeting() throws Exception
    {
        start("smtp.proxy_timeout", "1s");
        try (Socket direct = connect())
        {
            direct.getOutputStream().write("EHLO direct.test\r\n".getBytes(StandardCharsets.US_ASCII));
            assertEquals("", readToEnd(direct.getInputStream()), "a client without a header: closed, no greeting");
        }
        final long start = System.nanoTime();
        try (Socket silent = connect())
        {
            assertEquals("", readToEnd(silent.getInputStream()), "nothing sent: closed at smtp.proxy_timeout");
            assertTrue(System.nanoTime() - start >= 900_000_000L, "closed before smtp.proxy_timeout");
        }
        assertEquals(2, relay.relay().metrics().proxyRefused(), "relay_proxy_refused_total: no header, no header in time");
        relay.close();
        relay = null;
        start("smtp.proxy_networks", "10.0.0.0/8");
        try (Socket untrusted = connect())
        {
            untrusted.getOutputStream().write(ProxyHeaders.v1("198.51.100.7", 1));
            assertEquals("", readToEnd(untrusted.getInputStream()), "127.0.0.1 is no trusted proxy here");
        }
        assertEquals(1, relay.relay().metrics().proxyRefused(), "relay_proxy_refused_total: an untrusted proxy");
    }

    @Test
    void startTlsFollowsTheHeaderAndSubmissionTakesClientsDirectly() throws Exception
    {
        final TlsRelay tls = new TlsRelay(tmp, TestCertificates.KeyType.EC);
        start(tls.overrides());
        final String queueId;
        try (SmtpTestClient client = SmtpTestClient.connectProxied(relay.port(),
            ProxyHeaders.v2("198.51.100.20", 2525)))
        {
            client.greeting().expect(220);
            client.command("EHLO tls.test").expect(250);
            client.command("STARTTLS").expect(220);
            client.startTls(TestCertificates.get().clientContext());
            client.command("EHLO tls.test").expect(250);
            queueId = client.sendMessage("c@tls.test", List.of("z@ours.test"), BODY);
        }
        final String received = SpoolContents.find(relay.spoolDir(), queueId).receivedHeader();
        assertTrue(received.contains("[198.51.100.20]") && received.contains(" with ESMTPS id "), received);
        try (SmtpTestClient submission = SmtpTestClient.connect(relay.relay().submissionAddresses().get(0).getPort()))
        {
            submission.greeting().expect(220);
        }
    }

    private Socket connect() throws IOException
    {
        final Socket socket = new Socket();
        socket.setSoTimeout(15_000);
        socket.connect(new InetSocketAddress("127.0.0.1", relay.port()), 5_000);
        return socket;
    }

    /** Everything the relay sends until it closes (a reset counts as the end). */
    private static String readToEnd(final InputStream in) throws IOException
    {
        final StringBuilder text = new StringBuilder();
        try
        {
            int c;
            while ((c = in.read()) >= 0)
            {
                text.append((char)c);
            }
        }
        catch (final SocketException reset)
        {
            // closed with our bytes unread: a reset
        }
        return text.toString();
    }
}
