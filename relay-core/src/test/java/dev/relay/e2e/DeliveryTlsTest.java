package dev.relay.e2e;

import dev.relay.Relay;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestCertificates;
import dev.relay.testing.TestCertificates.KeyType;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Outbound TLS through a real relay to {@link TestSmtpSink}s that offer STARTTLS with test certificates:
 * {@code delivery.tls.policy} per recipient domain (levels never share a connection), what the delivery log says
 * (Postfix's "Verified TLS connection established to ..." and {@code tls=} on each line), may's logged fallback to
 * plaintext, encrypt deferring 4.7.4 until the peer offers TLS, verify deferring 4.7.5 for a wrong-host and an
 * expired certificate, and bytes a server appends to its 220 never read as a reply. About 8 s.
 */
@Timeout(60)
class DeliveryTlsTest
{
    private static final Duration WAIT = Duration.ofSeconds(20);

    @TempDir
    Path dir;

    private final List<AutoCloseable> open = new ArrayList<>();
    private E2e.DeliveryLogCapture log;

    @AfterEach
    void closeAll()
    {
        for (int i = open.size() - 1; i >= 0; i--)
        {
            Await.closeQuietly(open.get(i));
        }
    }

    private TestSmtpSink tlsSink() throws Exception
    {
        final TestSmtpSink sink = TestSmtpSink.start().tls(TestCertificates.get().serverContext(KeyType.EC));
        open.add(sink);
        return sink;
    }

    private Relay relay(final String... keyValues) throws Exception
    {
        final List<String> all = new ArrayList<>(List.of(
            "delivery.tls.ca_file", TestCertificates.get().writeCa(dir.resolve("tls")).toString()));
        all.addAll(List.of(keyValues));
        log = new E2e.DeliveryLogCapture();
        open.add(log);
        final Relay relay = E2e.start(E2e.config(dir.resolve("spool"), all.toArray(new String[0])));
        open.add(relay);
        return relay;
    }

    private static void send(final Relay relay, final String... recipients) throws Exception
    {
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            for (final String to : recipients)
            {
                client.send("alice@client.test", List.of(to), E2e.message("alice@client.test", to, to));
            }
        }
    }

    private void awaitLog(final String... parts)
    {
        Await.until("a log line with " + List.of(parts), WAIT, () -> log.any(parts), () -> String.join("\n",
            log.lines()));
    }

    @Test
    void thePolicyPicksTheLevelPerDomainAndLevelsNeverShareAConnection() throws Exception
    {
        final TestSmtpSink sink = tlsSink();
        final Relay relay = relay("delivery.routes", "*=[127.0.0.1]:" + sink.port(),
            "delivery.tls.policy", "secure.test=verify,.plain.test=none");
        send(relay, "u@secure.test", "u@a.plain.test", "u@other.test", "v@other.test", "v@secure.test");

        final List<TestSmtpSink.Received> got = sink.awaitMessages(5, WAIT);
        final Map<Integer, String> tls = sink.tlsProtocols();
        for (final TestSmtpSink.Received message : got)
        {
            final String domain = message.recipients().get(0).substring(2);
            assertEquals(domain.equals("a.plain.test") ? null : "TLSv1.3", tls.get(message.connectionId()),
                message.recipients() + " on connection " + message.connectionId() + ", TLS " + tls);
            for (final TestSmtpSink.Received other : got)
            {
                if (other.connectionId() == message.connectionId())
                {
                    // verify (secure.test), none (.plain.test) and may (the rest) each on connections of their own
                    assertEquals(level(domain), level(other.recipients().get(0).substring(2)),
                        "one connection, two levels: " + message.recipients() + " " + other.recipients());
                }
            }
        }
        awaitLog("Verified TLS connection established to 127.0.0.1[127.0.0.1]:" + sink.port() + ": TLSv1.3 with " +
            "cipher TLS_");
        awaitLog("Trusted TLS connection established to 127.0.0.1[127.0.0.1]:" + sink.port());
        awaitLog("to=<u@secure.test>, relay=127.0.0.1[127.0.0.1]:" + sink.port() + ", tls=TLSv1.3, ", "status=sent");
        awaitLog("to=<u@other.test>, ", "tls=TLSv1.3, ", "status=sent");
        awaitLog("to=<u@a.plain.test>, ", "tls=none, ", "status=sent");
        // the counters agree with the sink: connections out, and those of them with TLS
        Await.until("connections counted", WAIT, () -> relay.metrics().connectionsOut() == sink.connectionsAccepted(),
            () -> relay.metrics().connectionsOut() + " out, the sink accepted " + sink.connectionsAccepted());
        assertEquals(sink.tlsProtocols().size(), relay.metrics().connectionsOutTls());
        assertTrue(sink.tlsProtocols().size() >= 2 && sink.connectionsAccepted() > sink.tlsProtocols().size());
    }

    private static String level(final String domain)
    {
        return domain.equals("secure.test") ? "verify" : domain.endsWith("plain.test") ? "none" : "may";
    }

    @Test
    void aFailedHandshakeAtMayIsLoggedAndTheMailGoesInPlaintextAtOnce() throws Exception
    {
        final TestSmtpSink sink = tlsSink().fault(TestSmtpSink.Step.STARTTLS, TestSmtpSink.Fault.TLS_BROKEN);
        final Relay relay = relay("delivery.routes", "*=[127.0.0.1]:" + sink.port());
        send(relay, "u@far.test");
        final TestSmtpSink.Received got = sink.awaitMessages(1, WAIT).get(0);
        assertNull(sink.tlsProtocols().get(got.connectionId()));
        awaitLog("[127.0.0.1]:" + sink.port() + ": 127.0.0.1[127.0.0.1]:" + sink.port() + ": Cannot start TLS: " +
            "handshake failure: ", "; delivering to it without TLS until ");
        awaitLog("to=<u@far.test>, ", "tls=none, ", "status=sent");
        assertFalse(log.any("status=deferred"), "not a deferral: " + log.lines());
        assertEquals(1, relay.metrics().tlsOutFailures());
        assertEquals(1, sink.tlsFailures());
    }

    @Test
    void encryptDefers474UntilThePeerOffersTls() throws Exception
    {
        final TestSmtpSink sink = TestSmtpSink.start();
        open.add(sink);
        final Relay relay = relay("delivery.routes", "*=[127.0.0.1]:" + sink.port(), "delivery.tls", "encrypt");
        send(relay, "u@far.test");
        awaitLog("to=<u@far.test>, ", "dsn=4.7.4, status=deferred (connect to 127.0.0.1[127.0.0.1]:" + sink.port() +
            ": TLS is required, but was not offered by host 127.0.0.1)");
        assertEquals(0, sink.messageCount());
        assertFalse(sink.commands().values().stream().anyMatch(lines -> lines.stream().anyMatch(
            line -> line.startsWith("MAIL"))), "no MAIL without TLS: " + sink.commands());
        assertEquals(1, relay.queuedMessages());

        sink.tls(TestCertificates.get().serverContext(KeyType.EC));
        final TestSmtpSink.Received got = sink.awaitMessages(1, WAIT).get(0);
        assertEquals("TLSv1.3", sink.tlsProtocols().get(got.connectionId()));
        awaitLog("to=<u@far.test>, ", "tls=TLSv1.3, ", "status=sent");
    }

    @Test
    void verifyDefers475ForAWrongHostOrAnExpiredCertificate() throws Exception
    {
        final TestCertificates certificates = TestCertificates.get();
        final TestSmtpSink wrong = TestSmtpSink.start().tls(certificates.serverContext(KeyType.EC,
            certificates.wrongHost(KeyType.EC)));
        open.add(wrong);
        final TestSmtpSink expired = TestSmtpSink.start().tls(certificates.serverContext(KeyType.RSA,
            certificates.expired(KeyType.RSA)));
        open.add(expired);
        final Relay relay = relay("delivery.routes", "wrong.test=[127.0.0.1]:" + wrong.port() +
            ",expired.test=[127.0.0.1]:" + expired.port(), "delivery.tls", "verify");
        send(relay, "u@wrong.test", "u@expired.test");
        awaitLog("to=<u@wrong.test>, ", "dsn=4.7.5, status=deferred (", "Cannot start TLS: handshake failure " +
            "(server certificate not verified");
        awaitLog("to=<u@expired.test>, ", "dsn=4.7.5, status=deferred (", "Cannot start TLS: handshake failure " +
            "(server certificate not verified");
        assertEquals(0, wrong.messageCount() + expired.messageCount());
        assertEquals(2, relay.queuedMessages());
        assertTrue(relay.metrics().tlsOutFailures() >= 2);
    }

    @Test
    void aCaFileWithoutCertificatesStopsTheStartNamingTheKey() throws Exception
    {
        final Path bad = java.nio.file.Files.writeString(dir.resolve("bad-ca.pem"), "not a certificate\n");
        final Relay.UnusableFileException refused = org.junit.jupiter.api.Assertions.assertThrows(
            Relay.UnusableFileException.class, () -> E2e.start(E2e.config(dir.resolve("spool"),
                "delivery.tls.ca_file", bad.toString())));
        assertTrue(refused.getMessage().startsWith("delivery.tls.ca_file: ") &&
            refused.getMessage().contains("no PEM CERTIFICATE block"), refused.getMessage());
    }

    @Test
    void bytesAServerAppendsToIts220AreNeverReadAsAReply() throws Exception
    {
        final TestSmtpSink sink = tlsSink().fault(TestSmtpSink.Step.STARTTLS, TestSmtpSink.Fault.TLS_INJECT);
        final Relay relay = relay("delivery.routes", "*=[127.0.0.1]:" + sink.port(), "delivery.tls", "encrypt");
        send(relay, "u@far.test");
        final TestSmtpSink.Received got = sink.awaitMessages(1, WAIT).get(0);
        assertEquals("TLSv1.3", sink.tlsProtocols().get(got.connectionId()));
        assertEquals("Subject: e2e u@far.test", got.text().lines().filter(l -> l.startsWith("Subject:"))
            .findFirst().orElse(""));
        awaitLog("to=<u@far.test>, ", "tls=TLSv1.3, ", "status=sent");
        assertFalse(log.any("protocol error"), String.join("\n", log.lines()));
    }
}
