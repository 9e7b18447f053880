package dev.relay.e2e;

import dev.relay.Relay;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.CapturedMail;
import dev.relay.testing.PostfixInstance;
import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Postfix as a TLS server receiving from the relay: a private instance ({@link PostfixInstance}) offering STARTTLS
 * with a test certificate for 127.0.0.1, the relay delivering at {@code delivery.tls=verify} against the test CA, on
 * the JDK's engine and on BoringSSL's. Postfix's own Received: header must say the message came over TLS
 * ({@code using TLSv1.3}, {@code ESMTPS}) and its log that the handshake happened; the message (one of 1 MiB) arrives
 * whole. Needs root and Postfix (skipped without, failed under CI=true). About 5 s.
 */
@Timeout(120)
class DeliveryTlsPostfixTest
{
    private static final Duration WAIT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    @ParameterizedTest(name = "smtp.tls.provider={0}")
    @ValueSource(strings = {"jdk", "openssl"})
    void postfixReceivesOverTls(final String provider) throws Exception
    {
        // Postfix's daemons (user postfix) pass through the test's directories to their own
        Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        final Path work = Files.createDirectories(dir.resolve(provider));
        final TestCertificates certificates = TestCertificates.get();
        final TestCertificates.PemPair pair = certificates.writeServer(work.resolve("tls"),
            TestCertificates.KeyType.EC);
        try (PostfixInstance postfix = PostfixInstance.start(work, "far.test", 50L << 20, pair);
             E2e.DeliveryLogCapture log = new E2e.DeliveryLogCapture();
             Relay relay = E2e.start(E2e.config(work.resolve("spool"),
                 "delivery.routes", "far.test=[127.0.0.1]:" + postfix.port(),
                 "delivery.tls", "verify",
                 "delivery.tls.ca_file", certificates.writeCa(work.resolve("tls")).toString(),
                 "smtp.tls.provider", provider)))
        {
            final StringBuilder big = new StringBuilder();
            while (big.length() < 1 << 20)
            {
                big.append("line ").append(big.length()).append(" of a long message over TLS\r\n");
            }
            final List<String> bodies = List.of("short one\r\n", big.toString());
            try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
            {
                for (int i = 0; i < bodies.size(); i++)
                {
                    final byte[] wire = ("From: <alice@client.test>\r\nTo: <bob@far.test>\r\nSubject: tls " + i +
                        "\r\nMessage-ID: <tls-" + i + "@client.test>\r\n\r\n" + bodies.get(i))
                        .getBytes(StandardCharsets.US_ASCII);
                    client.send("alice" + i + "@client.test", List.of("bob@far.test"), wire);
                }
            }
            Await.until("two messages at Postfix", WAIT, () -> filesOf(postfix).size() == 2,
                () -> postfix.log() + "\n" + String.join("\n", log.lines()));
            for (final Path file : filesOf(postfix))
            {
                final String delivered = Files.readString(file, StandardCharsets.ISO_8859_1);
                final String postfixHeader = delivered.substring(0, delivered.indexOf("\nReceived: "));
                assertTrue(postfixHeader.contains("(using TLSv1.3 with cipher") &&
                    postfixHeader.contains("with ESMTPS id"), postfixHeader);
                final CapturedMail mail = postfix.read(file);
                final String text = new String(mail.data(), StandardCharsets.ISO_8859_1);
                final int i = text.contains("Subject: tls 0") ? 0 : 1;
                assertTrue(text.endsWith(bodies.get(i).replace("\r\n", "\n")), "body of message " + i + " whole");
            }
            assertTrue(postfix.log().contains("TLS connection established from"), postfix.log());
            assertTrue(log.any("Verified TLS connection established to 127.0.0.1[127.0.0.1]:" + postfix.port() +
                ": TLSv1.3 with cipher"), String.join("\n", log.lines()));
            Await.until("delivered", WAIT, () -> relay.queuedMessages() == 0 && log.any("status=sent"),
                () -> String.join("\n", log.lines()));
            assertEquals(0, relay.metrics().tlsOutFailures());
            assertTrue(relay.metrics().connectionsOutTls() >= 1);
        }
    }

    private static List<Path> filesOf(final PostfixInstance postfix)
    {
        try
        {
            return new ArrayList<>(postfix.files());
        }
        catch (final java.io.IOException ex)
        {
            throw new java.io.UncheckedIOException(ex);
        }
    }
}
