package dev.relay.it;

import dev.relay.testing.Await;
import dev.relay.testing.TestCertificates;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A few rungs of the size ladder ({@link MessageSizesTest}'s {@link SizedBody}) over TLS in both directions: sent to
 * the relay by STARTTLS as DATA and by implicit TLS with AUTH as BDAT, each delivered by the relay over STARTTLS
 * ({@code delivery.tls=verify} against the test CA) to a {@link TestSmtpSink} that offers it, byte-exact: 0 octets,
 * both sides of the 64 KiB read buffer, 1 MiB and 20 MiB. Records and the read and write buffers' boundaries cross
 * everywhere; with the JDK's engine and BoringSSL's (inbound and outbound alike). About 10 s.
 */
@Timeout(180)
class InboundTlsSizesTest
{
    @TempDir
    Path tmp;

    @ParameterizedTest(name = "smtp.tls.provider={0}")
    @ValueSource(strings = {"jdk", "openssl"})
    void sizesOverTlsArriveByteExact(final String provider) throws Exception
    {
        final TlsRelay tls = new TlsRelay(tmp.resolve(provider), TestCertificates.KeyType.EC);
        tls.provider = provider;
        try (TestSmtpSink sink = TestSmtpSink.start().tls(TestCertificates.get().serverContext(
                 TestCertificates.KeyType.RSA));
             InProcessRelay relay = InProcessRelay.start(tmp.resolve(provider).resolve("spool"), tls.overrides(
                 "delivery.routes", "*=[127.0.0.1]:" + sink.port(), "delivery.retry.schedule", "1s",
                 "delivery.tls", "verify", "delivery.tls.ca_file", tls.ca.toString())))
        {
            final int submissions = relay.relay().submissionsAddresses().get(0).getPort();
            final int[] sizes = {0, 65_535, 65_536, 65_537, 1 << 20, 20 << 20};
            int sent = 0;
            for (final boolean bdat : new boolean[]{false, true})
            {
                for (final int size : sizes)
                {
                    final LadderMessage m = new LadderMessage(bdat, size, "tls " + size, List.of("far.test"));
                    m.dotFiller = !bdat;
                    final SizedBody body = m.makeBody("tls" + size + (bdat ? "b" : "d") + "@client.test");
                    try (SmtpTestClient client = bdat ?
                        SmtpTestClient.connectTls(submissions, TestCertificates.get().clientContext()) :
                        SmtpTestClient.connectEhlo(relay.port()))
                    {
                        if (bdat)
                        {
                            client.greeting().expect(220);
                            client.command("EHLO client.test").expect(250);
                            client.command("AUTH PLAIN " + java.util.Base64.getEncoder().encodeToString(
                                ("\0" + TlsRelay.BOB + "\0" + TlsRelay.BOB_PASSWORD)
                                    .getBytes(StandardCharsets.UTF_8))).expect(235);
                        }
                        else
                        {
                            client.command("STARTTLS").expect(220);
                            client.startTls(TestCertificates.get().clientContext());
                            client.command("EHLO client.test").expect(250);
                        }
                        LadderClient.send(client, m, body, List.of("far.test")).expect(250);
                        client.command("QUIT").expect(221);
                    }
                    sent++;
                    final TestSmtpSink.Received received =
                        sink.awaitMessages(1, Duration.ofSeconds(60)).get(0);
                    sink.takeMessages();
                    assertEquals(body.contentSha256, sha256AfterReceived(received.content()),
                        (bdat ? "BDAT " : "DATA ") + size + " octets differ at the sink");
                    assertEquals("TLSv1.3", sink.tlsProtocols().get(received.connectionId()),
                        "delivered over TLS: " + sink.tlsProtocols());
                }
            }
            assertEquals(12, sent);
            Await.until(() -> relay.relay().metrics().connectionsInTls() == 12, Duration.ofSeconds(10),
                () -> "inbound TLS connections counted: " + relay.relay().metrics().connectionsInTls());
            assertEquals(0, relay.relay().metrics().tlsOutFailures());
            assertTrue(relay.relay().metrics().connectionsOutTls() >= 1);
        }
    }

    /** The SHA-256 of what follows the relay's own (folded) Received: header. */
    private static String sha256AfterReceived(final byte[] content) throws Exception
    {
        final String start = new String(content, 0, Math.min(content.length, 10), StandardCharsets.US_ASCII);
        assertTrue(start.startsWith("Received: "), start);
        int at = 0;
        while (true)
        {
            final int crlf = indexOfCrlf(content, at);
            at = crlf + 2;
            if (at >= content.length || content[at] != ' ' && content[at] != '\t')
            {
                break;
            }
        }
        final MessageDigest sha = MessageDigest.getInstance("SHA-256");
        sha.update(content, at, content.length - at);
        return HexFormat.of().formatHex(sha.digest());
    }

    private static int indexOfCrlf(final byte[] bytes, final int from)
    {
        for (int i = from; i + 1 < bytes.length; i++)
        {
            if (bytes[i] == '\r' && bytes[i + 1] == '\n')
            {
                return i;
            }
        }
        throw new AssertionError("no end of the Received: header");
    }
}
