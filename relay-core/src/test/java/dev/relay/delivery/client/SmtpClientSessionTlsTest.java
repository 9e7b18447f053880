package dev.relay.delivery.client;

import dev.relay.config.TlsLevel;
import dev.relay.net.ServerTlsContext;
import dev.relay.testing.TestCertificates;
import dev.relay.testing.TestCertificates.KeyType;
import io.netty.handler.ssl.OpenSsl;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.SSLEngine;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * STARTTLS on the client side (RFC 3207) on the {@link dev.relay.net.LoopDouble}, the peer a scripted server that
 * speaks TLS with a test certificate: EHLO again under TLS with only the new capabilities, plaintext sent after the
 * 220 never read as a reply, each level's answer to a peer without STARTTLS, to a refusal and to a failed
 * handshake, and verify's certificate checks (chain, name, expiry).
 */
@Timeout(60)
class SmtpClientSessionTlsTest
{
    private static final String EHLO = "EHLO relay.test\r\n";
    private static final String OFFERS_TLS = "250-mx.test\r\n250-SIZE 1000\r\n250 STARTTLS\r\n";

    @TempDir
    static Path dir;

    private static ClientTlsContext trustingTestCa;
    private static ClientTlsContext trustingJdkDefaults;

    @BeforeAll
    static void contexts() throws Exception
    {
        final Path ca = TestCertificates.get().writeCa(dir);
        trustingTestCa = ClientTlsContext.load(ca, ServerTlsContext.Provider.JDK);
        trustingJdkDefaults = ClientTlsContext.load(null, ServerTlsContext.Provider.JDK);
    }

    private static ClientDriver driver(final TlsLevel level, final ClientTlsContext context, final String peerName)
    {
        return new ClientDriver(ClientDriver.settings(), new ClientTls(level, context, peerName, 25));
    }

    /** Greets, has EHLO answered with {@code ehloReply}; returns what the client sent next. */
    private static String greet(final ClientDriver driver, final String ehloReply)
    {
        assertEquals(EHLO, driver.peer("220 mx.test ESMTP\r\n"));
        return driver.peer(ehloReply);
    }

    private static SSLEngine serverEngine()
    {
        return TestCertificates.get().serverEngine(KeyType.EC);
    }

    /** STARTTLS, 220, the handshake with {@code server}; returns what the client sent under TLS. */
    private static String startTls(final ClientDriver driver, final String reply, final SSLEngine server)
    {
        assertEquals("STARTTLS\r\n", greet(driver, OFFERS_TLS));
        driver.server.send(reply.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        driver.server.startTls(server);
        driver.loop.runUntilIdle();
        return driver.server.takeReceived();
    }

    @Test
    void startTlsThenEhloAgainAndOnlyTheNewCapabilitiesCount()
    {
        final ClientDriver driver = driver(TlsLevel.MAY, trustingTestCa, "mx.test");
        assertEquals(EHLO, startTls(driver, "220 2.0.0 Ready to start TLS\r\n", serverEngine()));
        assertTrue(driver.server.connection().isTls());
        assertEquals(List.of("tls TLSv1.3 Trusted"), driver.events);
        assertEquals("", driver.peer("250-mx.test\r\n250 PIPELINING\r\n"));
        assertEquals(List.of("tls TLSv1.3 Trusted", "ready"), driver.events);
        final PeerCapabilities peer = driver.session.capabilities();
        assertTrue(peer.pipelining());
        assertFalse(peer.size(), "SIZE was offered before TLS only (RFC 3207 §4.2)");
        assertFalse(peer.startTls());
        assertEquals("TLSv1.3", driver.session.tlsProtocol());
        assertTrue(driver.session.tlsCipher().startsWith("TLS_"), driver.session.tlsCipher());

        // a message goes out encrypted, the body from its source into the write buffer and on through the engine
        final TestMessage message = TestMessage.to("b@y");
        assertEquals("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", driver.send(message));
        assertEquals(message.wire() + ".\r\n", driver.peer("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"));
        assertEquals("", driver.peer("250 2.0.0 Ok: queued\r\n"));
        assertEquals(RecipientResult.Status.DELIVERED, driver.lastResult().get(0).status());
    }

    @Test
    void bytesAfterThe220AreDiscardedNeverTakenForAReply()
    {
        // CVE-2011-0411 from the server's side: a man in the middle appends a reply to the 220
        final ClientDriver driver = driver(TlsLevel.MAY, trustingTestCa, "mx.test");
        assertEquals(EHLO, startTls(driver, "220 Ready to start TLS\r\n250-injected\r\n250 PIPELINING\r\n",
            serverEngine()));
        assertEquals(List.of("tls TLSv1.3 Trusted"), driver.events, "no reply read before the handshake");
        assertEquals("", driver.peer("250 mx.test\r\n"));
        assertEquals(List.of("tls TLSv1.3 Trusted", "ready"), driver.events);
        assertFalse(driver.session.capabilities().pipelining(), "the injected PIPELINING was not read");
        assertTrue(driver.session.isIdle());
    }

    @Test
    void plaintextArrivingAfterThe220FailsTheHandshakeAndIsNeverAReply()
    {
        final ClientDriver driver = driver(TlsLevel.MAY, trustingTestCa, "mx.test");
        assertEquals("STARTTLS\r\n", greet(driver, OFFERS_TLS));
        driver.peer("220 Ready to start TLS\r\n");
        // the injected line comes in a later segment: the engine reads it as a record, and it is not one
        driver.server.sendRaw("250 2.0.0 injected\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        driver.loop.runUntilIdle();
        assertTrue(driver.closed());
        assertTrue(driver.session.tlsHandshakeFailed());
        assertNull(driver.session.failureCode(), "may: the pool falls back to plaintext");
        assertTrue(driver.closedReason.startsWith("Cannot start TLS: handshake failure"), driver.closedReason);
        assertFalse(driver.events.contains("ready"));
    }

    @Test
    void noneNeverSendsStartTlsAndMayGoesOnInPlaintextWithoutIt()
    {
        final ClientDriver none = driver(TlsLevel.NONE, null, "mx.test");
        assertEquals("", greet(none, OFFERS_TLS));
        assertEquals(List.of("ready"), none.events);
        assertFalse(none.server.connection().isTls());

        final ClientDriver may = driver(TlsLevel.MAY, trustingTestCa, "mx.test");
        assertEquals("", greet(may, "250-mx.test\r\n250 PIPELINING\r\n"));
        assertEquals(List.of("ready"), may.events);
        assertNull(may.session.tlsProtocol());

        final ClientDriver refused = driver(TlsLevel.MAY, trustingTestCa, "mx.test");
        assertEquals("STARTTLS\r\n", greet(refused, OFFERS_TLS));
        assertEquals("", refused.peer("454 4.7.0 TLS not available due to local problem\r\n"));
        assertEquals(List.of("ready"), refused.events);
        assertEquals(1000, refused.session.capabilities().maxSize(), "the first EHLO's capabilities stand");
    }

    @Test
    void encryptDefersWhenThePeerOffersNoTlsOrRefusesIt()
    {
        final ClientDriver absent = driver(TlsLevel.ENCRYPT, trustingTestCa, "mx.test");
        assertEquals("QUIT\r\n", greet(absent, "250-mx.test\r\n250 PIPELINING\r\n"));
        assertEquals("4.7.4", absent.session.failureCode());
        assertEquals("TLS is required, but was not offered by host mx.test", absent.closedReason);
        assertFalse(absent.events.contains("ready"));

        final ClientDriver helo = driver(TlsLevel.ENCRYPT, trustingTestCa, "mx.test");
        assertEquals("HELO relay.test\r\n", greet(helo, "502 5.5.1 EHLO not implemented\r\n"));
        assertEquals("QUIT\r\n", helo.peer("250 mx.test\r\n"));
        assertEquals("4.7.4", helo.session.failureCode());

        final ClientDriver refused = driver(TlsLevel.ENCRYPT, trustingTestCa, "mx.test");
        assertEquals("STARTTLS\r\n", greet(refused, OFFERS_TLS));
        assertEquals("QUIT\r\n", refused.peer("454 4.7.0 TLS not available\r\n"));
        assertEquals("4.7.4", refused.session.failureCode());
        assertEquals("TLS is required, but host mx.test refused to start TLS: 454 4.7.0 TLS not available",
            refused.closedReason);

        final ClientDriver encrypted = driver(TlsLevel.ENCRYPT, trustingJdkDefaults, "mx.test");
        assertEquals(EHLO, startTls(encrypted, "220 go ahead\r\n", serverEngine()));
        assertEquals(List.of("tls TLSv1.3 Untrusted"), encrypted.events, "encrypt takes any certificate");
    }

    @Test
    void verifyChecksTheChainAndTheNextHopsName()
    {
        final ClientDriver right = driver(TlsLevel.VERIFY, trustingTestCa, TestCertificates.HOST);
        assertEquals(EHLO, startTls(right, "220 go ahead\r\n", serverEngine()));
        assertEquals(List.of("tls TLSv1.3 Verified"), right.events);

        final ClientDriver literal = driver(TlsLevel.VERIFY, trustingTestCa, "127.0.0.1");
        assertEquals(EHLO, startTls(literal, "220 go ahead\r\n", serverEngine()), "an IP literal against IP SANs");

        final TestCertificates certificates = TestCertificates.get();
        assertVerifyFails(driver(TlsLevel.VERIFY, trustingTestCa, "mx.other.test"), serverEngine());
        assertVerifyFails(driver(TlsLevel.VERIFY, trustingTestCa, "127.0.0.2"), serverEngine());
        assertVerifyFails(driver(TlsLevel.VERIFY, trustingTestCa, TestCertificates.HOST),
            certificates.serverEngine(KeyType.EC, certificates.expired(KeyType.EC)));
        assertVerifyFails(driver(TlsLevel.VERIFY, trustingTestCa, TestCertificates.HOST),
            certificates.serverEngine(KeyType.RSA, certificates.wrongHost(KeyType.RSA)));
        assertVerifyFails(driver(TlsLevel.VERIFY, trustingJdkDefaults, TestCertificates.HOST), serverEngine());
    }

    private static void assertVerifyFails(final ClientDriver driver, final SSLEngine server)
    {
        startTls(driver, "220 go ahead\r\n", server);
        assertTrue(driver.closed(), driver.events + " in " + driver.session.state());
        assertTrue(driver.session.tlsHandshakeFailed());
        assertEquals("4.7.5", driver.session.failureCode());
        assertTrue(driver.closedReason.startsWith("Cannot start TLS: handshake failure (server certificate not " +
            "verified"), driver.closedReason);
        assertFalse(driver.events.contains("ready"));
    }

    @Test
    void aHandshakeThatNeverEndsTimesOut()
    {
        final ClientDriver driver = driver(TlsLevel.ENCRYPT, trustingTestCa, "mx.test");
        assertEquals("STARTTLS\r\n", greet(driver, OFFERS_TLS));
        driver.peer("220 go ahead\r\n");
        assertEquals(300_000, driver.server.deadlineMs() - driver.loop.nowMs(), "the command timeout, in all");
        driver.timeout();
        assertTrue(driver.closed());
        assertEquals("4.7.5", driver.session.failureCode());
        assertTrue(driver.closedReason.endsWith("handshake timeout"), driver.closedReason);
    }

    @Test
    void theServerGoingAwayMidHandshakeIsAHandshakeFailure()
    {
        final ClientDriver driver = driver(TlsLevel.MAY, trustingTestCa, "mx.test");
        assertEquals("STARTTLS\r\n", greet(driver, OFFERS_TLS));
        driver.peer("220 go ahead\r\n");
        driver.lose();
        assertTrue(driver.session.tlsHandshakeFailed());
        assertEquals("Cannot start TLS: handshake failure: connection lost during the TLS handshake",
            driver.closedReason);
    }

    @Test
    void boringSslEnginesTooWhereTheyLoad() throws Exception
    {
        Assumptions.assumeTrue(OpenSsl.isAvailable(), "BoringSSL does not load here");
        final ClientTlsContext openssl =
            ClientTlsContext.load(TestCertificates.get().writeCa(dir), ServerTlsContext.Provider.OPENSSL);
        assertTrue(openssl.isOpenSsl());
        final ClientDriver verified = driver(TlsLevel.VERIFY, openssl, TestCertificates.HOST);
        assertEquals(EHLO, startTls(verified, "220 go ahead\r\n", serverEngine()));
        assertEquals(List.of("tls TLSv1.3 Verified"), verified.events);
        assertEquals("", verified.peer("250 mx.test\r\n"));
        final TestMessage message = TestMessage.to("b@y");
        assertEquals("MAIL FROM:<a@x>\r\n", verified.send(message));

        final ClientDriver may = driver(TlsLevel.MAY, openssl, "mx.test");
        assertEquals(EHLO, startTls(may, "220 go ahead\r\n", serverEngine()));
        assertEquals(List.of("tls TLSv1.3 Trusted"), may.events);

        assertVerifyFails(driver(TlsLevel.VERIFY, openssl, "mx.other.test"), serverEngine());
    }
}
