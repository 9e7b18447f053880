package dev.relay.e2e;

import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestDnsServer;
import dev.relay.Relay;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Unrouted domains go through an MX lookup against {@code TestDnsServer} ({@code delivery.dns.servers}); every MX
 * host is 127.0.0.1 and {@code delivery.smtp_port} is the sink's port. MX → delivered; no MX but an A record →
 * delivered to the domain's address; null MX → bounced 5.1.10; NXDOMAIN → bounced 5.1.2. Bounces go to the sender
 * at {@code client.test}, which is routed to a second sink.
 */
@Timeout(30)
class DeliveryMxTest
{
    private static final Duration WAIT = Duration.ofSeconds(15);
    private static final String SENDER = "alice@client.test";

    @TempDir
    Path spool;

    private TestDnsServer dns;
    private TestSmtpSink mx;
    private TestSmtpSink senderSink;
    private Relay relay;
    private E2e.DeliveryLogCapture log;

    @BeforeEach
    void setUp() throws Exception
    {
        dns = new TestDnsServer();
        dns.addMx("mx.test", 10, "smtp1.mx.test").addA("smtp1.mx.test", "127.0.0.1")
            .addA("a-only.test", "127.0.0.1")
            .nullMx("nullmx.test")
            .nxdomain("nx.test");
        log = new E2e.DeliveryLogCapture();
        mx = TestSmtpSink.start();
        senderSink = TestSmtpSink.start();
        final InetSocketAddress dnsAddress = dns.address();
        relay = E2e.start(E2e.config(spool,
            "delivery.routes", "client.test=127.0.0.1:" + senderSink.port(),
            "delivery.dns.servers", "127.0.0.1:" + dnsAddress.getPort(),
            "delivery.smtp_port", Integer.toString(mx.port())));
    }

    @AfterEach
    void closeAll()
    {
        try
        {
            Await.closeQuietly(relay);
        }
        finally
        {
            Await.closeQuietly(mx);
            Await.closeQuietly(senderSink);
            Await.closeQuietly(dns);
            Await.closeQuietly(log);
        }
    }

    private String send(final String to, final String id) throws Exception
    {
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            return client.send(SENDER, List.of(to), E2e.message(SENDER, to, id));
        }
    }

    private String state()
    {
        return "queued " + relay.queuedMessages() + ", delivered " + relay.metrics().messagesDelivered() +
            ", bounced " + relay.metrics().messagesBounced() + "; log " + log.lines();
    }

    @Test
    void mxHostReceivesTheMail() throws Exception
    {
        send("bob@mx.test", "mx-1");
        final TestSmtpSink.Received got = mx.awaitMessages(1, WAIT).get(0);
        assertEquals(List.of("bob@mx.test"), got.recipients());
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertTrue(dns.queries("mx.test") > 0, "the MX was looked up");
        assertEquals(0, senderSink.messageCount(), "no bounce");
    }

    @Test
    void withoutMxTheDomainsAddressIsUsed() throws Exception
    {
        send("bob@a-only.test", "a-1");
        final TestSmtpSink.Received got = mx.awaitMessages(1, WAIT).get(0);
        assertEquals(List.of("bob@a-only.test"), got.recipients());
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(0, senderSink.messageCount(), "no bounce");
    }

    @Test
    void nullMxBouncesWith5110() throws Exception
    {
        final String queueId = send("bob@nullmx.test", "nullmx-1");
        final String dsn = senderSink.awaitMessages(1, WAIT).get(0).text();
        assertTrue(dsn.contains("Final-Recipient: rfc822; bob@nullmx.test"), dsn);
        assertTrue(dsn.contains("Status: 5.1.10"), dsn);
        assertTrue(log.any(queueId, "to=<bob@nullmx.test>", "dsn=5.1.10", "status=bounced"), this::state);
        assertEquals(0, mx.messageCount());
    }

    @Test
    void nxdomainBouncesWith512() throws Exception
    {
        final String queueId = send("bob@nx.test", "nx-1");
        final String dsn = senderSink.awaitMessages(1, WAIT).get(0).text();
        assertTrue(dsn.contains("Final-Recipient: rfc822; bob@nx.test"), dsn);
        assertTrue(dsn.contains("Status: 5.1.2"), dsn);
        assertTrue(log.any(queueId, "to=<bob@nx.test>", "dsn=5.1.2", "status=bounced"), this::state);
        assertEquals(0, mx.messageCount());
    }
}
