package dev.relay.it;

import dev.relay.testing.Await;
import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.SSLContext;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Inbound TLS and AUTH against a relay in this JVM, with real clients: swaks (--tls, --tlsc, --auth), Python's
 * smtplib (starttls() and SMTP_SSL, verifying the certificate against the test CA) and the JDK's SSLSocket;
 * STARTTLS injection, the handshake deadline, smtp.tls.required, plaintext AUTH refused, the AUTH failure rate,
 * and a certificate renewed under an open connection. About 15 s.
 */
@Timeout(120)
class InboundTlsTest
{
    private static final Pattern QUEUED = Pattern.compile("250 2\\.0\\.0 Ok: queued as ([0-9A-Za-z]+)");

    @TempDir
    Path tmp;

    private InProcessRelay relay;
    private TlsRelay tls;

    @Test
    void theEngineIsTheConfiguredProvidersOne() throws Exception
    {
        start();
        assertEquals("openssl".equals(provider()), relay.relay().tls().isOpenSsl());
    }

    /** smtp.tls.provider: the JDK's engine here, BoringSSL in {@link InboundTlsOpenSslTest}. */
    String provider()
    {
        return "jdk";
    }

    private InProcessRelay start(final String... more) throws IOException
    {
        tls = new TlsRelay(tmp, TestCertificates.KeyType.RSA);
        tls.provider = provider();
        relay = InProcessRelay.start(tmp.resolve("spool"), tls.overrides(more));
        return relay;
    }

    @AfterEach
    void stop() throws InterruptedException
    {
        if (relay != null)
        {
            relay.close();
        }
    }

    private int submissionPort()
    {
        return relay.relay().submissionAddresses().get(0).getPort();
    }

    private int submissionsPort()
    {
        return relay.relay().submissionsAddresses().get(0).getPort();
    }

    private static SSLContext trustingTheTestCa()
    {
        return TestCertificates.get().clientContext();
    }

    private SpoolContents.Stored queued(final String output) throws IOException
    {
        final Matcher m = QUEUED.matcher(output);
        assertTrue(m.find(), output);
        return SpoolContents.find(relay.spoolDir(), m.group(1));
    }

    @Test
    void swaksStartTlsOnTheSmtpListener() throws Exception
    {
        start();
        final Path swaks = ExternalTool.require("swaks");
        final ExternalTool.Result result = ExternalTool.run(List.of(swaks.toString(),
            "--server", "127.0.0.1", "--port", String.valueOf(relay.port()), "--tls",
            "--helo", "swaks.test", "--from", "sw@client.test", "--to", "dest@ours.test",
            "--body", "over TLS"), tmp, Duration.ofSeconds(30));
        assertEquals(0, result.exitCode(), result.toString());
        assertTrue(result.stdout().contains("220 2.0.0 Ready to start TLS"), result.toString());
        final SpoolContents.Stored stored = queued(result.stdout());
        assertTrue(stored.receivedHeader().contains("(using TLSv1.3 with cipher TLS_"), stored.receivedHeader());
        assertTrue(stored.receivedHeader().contains(" with ESMTPS id "), stored.receivedHeader());
        assertTrue(stored.bodyText().contains("over TLS"), stored.bodyText());
    }

    @Test
    void swaksAuthOnSubmissionAndTlsOnConnectOnSubmissions() throws Exception
    {
        start();
        final Path swaks = ExternalTool.require("swaks");
        final ExternalTool.Result submission = ExternalTool.run(List.of(swaks.toString(),
            "--server", "127.0.0.1", "--port", String.valueOf(submissionPort()), "--tls",
            "--auth", "PLAIN", "--auth-user", TlsRelay.ALICE, "--auth-password", TlsRelay.ALICE_PASSWORD,
            "--helo", "laptop.test", "--from", "alice@client.test", "--to", "friend@far-away.test"),
            tmp, Duration.ofSeconds(30));
        assertEquals(0, submission.exitCode(), submission.toString());
        assertTrue(submission.stdout().contains("235 2.7.0 Authentication successful"), submission.toString());
        final SpoolContents.Stored first = queued(submission.stdout());
        assertTrue(first.receivedHeader().contains(" with ESMTPSA id "), first.receivedHeader());
        assertEquals(List.of("friend@far-away.test"), first.recipients());

        final ExternalTool.Result submissions = ExternalTool.run(List.of(swaks.toString(),
            "--server", "127.0.0.1", "--port", String.valueOf(submissionsPort()), "--tlsc",
            "--auth", "LOGIN", "--auth-user", TlsRelay.BOB, "--auth-password", TlsRelay.BOB_PASSWORD,
            "--helo", "phone.test", "--from", "bob@client.test", "--to", "someone@far-away.test"),
            tmp, Duration.ofSeconds(30));
        assertEquals(0, submissions.exitCode(), submissions.toString());
        final SpoolContents.Stored second = queued(submissions.stdout());
        assertTrue(second.receivedHeader().contains(" with ESMTPSA id "), second.receivedHeader());

        final ExternalTool.Result wrong = ExternalTool.run(List.of(swaks.toString(),
            "--server", "127.0.0.1", "--port", String.valueOf(submissionPort()), "--tls",
            "--auth", "PLAIN", "--auth-user", TlsRelay.ALICE, "--auth-password", "not it",
            "--from", "alice@client.test", "--to", "friend@far-away.test"), tmp, Duration.ofSeconds(30));
        assertTrue(wrong.stdout().contains("535 5.7.8 Authentication credentials invalid"), wrong.toString());
        assertFalse(QUEUED.matcher(wrong.stdout()).find(), wrong.toString());
    }

    @Test
    void pythonStartTlsAndSmtpSslVerifyTheCertificate() throws Exception
    {
        start();
        final Path python = ExternalTool.require("python3");
        final String script = String.join("\n",
            "import smtplib, ssl, sys",
            "ctx = ssl.create_default_context(cafile=sys.argv[1])",
            "s = smtplib.SMTP('127.0.0.1', int(sys.argv[2]), local_hostname='py.test', timeout=20)",
            "s.starttls(context=ctx)",
            "print('version', s.sock.version())",
            "s.ehlo('py.test')",
            "assert not s.has_extn('starttls'), s.esmtp_features",
            "s.sendmail('py@client.test', ['r@ours.test'], b'Subject: starttls\\r\\n\\r\\nvia starttls\\r\\n')",
            "s.quit()",
            "t = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[3]), local_hostname='py.test', context=ctx, timeout=20)",
            "t.login(sys.argv[4], sys.argv[5])",
            "code, text = t.mail('alice@client.test')",
            "assert code == 250, (code, text)",
            "t.rcpt('x@far-away.test')",
            "code, text = t.data(b'Subject: smtp_ssl\\r\\n\\r\\nvia SMTP_SSL\\r\\n')",
            "print(code, text.decode())",
            "t.quit()",
            "old = ssl.create_default_context(cafile=sys.argv[1])",
            "old.maximum_version = ssl.TLSVersion.TLSv1_2",
            "u = smtplib.SMTP('127.0.0.1', int(sys.argv[2]), local_hostname='py.test', timeout=20)",
            "u.starttls(context=old)",
            "print('version', u.sock.version(), u.sock.cipher()[0])",
            "u.quit()",
            "");
        final ExternalTool.Result result = ExternalTool.run(List.of(python.toString(), "-c", script,
            tls.ca.toString(), String.valueOf(relay.port()), String.valueOf(submissionsPort()), TlsRelay.ALICE,
            TlsRelay.ALICE_PASSWORD), tmp, Duration.ofSeconds(30));
        assertEquals(0, result.exitCode(), result.toString());
        assertTrue(result.stdout().contains("version TLSv1.3"), result.toString());
        assertTrue(result.stdout().contains("version TLSv1.2 ECDHE-RSA-"), result.toString());
        final SpoolContents.Stored stored = queued(result.stdout());
        assertTrue(stored.receivedHeader().contains(" with ESMTPSA id "), stored.receivedHeader());
        assertEquals(2, relay.spooled().size());
    }

    @Test
    void commandsPipelinedAfterStartTlsAreNeverExecuted() throws Exception
    {
        start();
        try (SmtpTestClient client = SmtpTestClient.connect(relay.port()))
        {
            client.greeting().expect(220);
            // CVE-2011-0411: a man in the middle appends commands to the client's STARTTLS in the same packet
            client.write("EHLO client.test\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<evil@x.test>\r\n");
            client.read().expect(250);
            client.read().expect(220);
            client.startTls(trustingTheTestCa());
            // had MAIL run, this would be 250 (or 503 nested MAIL); the state is fresh: no EHLO yet
            client.command("RCPT TO:<victim@ours.test>").expect(503, "5.5.1");
            client.command("EHLO client.test").expect(250);
            client.command("RCPT TO:<victim@ours.test>").expect(503, "5.5.1");
            client.command("QUIT").expect(221);
        }
        assertEquals(0, relay.spooled().size());
    }

    @Test
    void aHandshakeThatStallsIsClosedAtTheHandshakeTimeout() throws Exception
    {
        start("smtp.tls.handshake_timeout", "1s");
        try (Socket socket = new Socket())
        {
            socket.connect(new InetSocketAddress("127.0.0.1", relay.port()), 5_000);
            socket.setSoTimeout(15_000);
            final InputStream in = socket.getInputStream();
            socket.getOutputStream().write("EHLO slow.test\r\nSTARTTLS\r\n".getBytes(StandardCharsets.US_ASCII));
            final String replies = readUntil(in, "220 2.0.0 Ready to start TLS\r\n");
            assertTrue(replies.endsWith("220 2.0.0 Ready to start TLS\r\n"), replies);
            // the first bytes of a ClientHello record, then nothing more: a slowloris of the handshake
            final long start = System.nanoTime();
            socket.getOutputStream().write(new byte[]{0x16, 0x03, 0x01, 0x02, 0x00, 0x01});
            int read;
            do
            {
                read = in.read();
            }
            while (read >= 0);
            final long waitedMs = (System.nanoTime() - start) / 1_000_000;
            assertTrue(waitedMs >= 900 && waitedMs < 10_000, "closed after " + waitedMs + " ms");
        }
        Await.until(() -> relay.relay().metrics().tlsFailures() == 1, Duration.ofSeconds(5), () -> "TLS failure counted");
    }

    private static String readUntil(final InputStream in, final String end) throws IOException
    {
        final StringBuilder text = new StringBuilder();
        while (!text.toString().endsWith(end))
        {
            final int b = in.read();
            if (b < 0)
            {
                break;
            }
            text.append((char)b);
        }
        return text.toString();
    }

    @Test
    void tlsRequiredRefusesMailBeforeStartTls() throws Exception
    {
        start("smtp.tls.required", "true");
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(relay.port()))
        {
            client.command("MAIL FROM:<a@client.test>").expect(530, "5.7.0");
            client.command("STARTTLS").expect(220);
            client.startTls(trustingTheTestCa());
            client.command("EHLO client.test").expect(250);
            client.sendMessage("a@client.test", List.of("r@ours.test"),
                "Subject: required\r\n\r\nok\r\n".getBytes(StandardCharsets.US_ASCII));
        }
    }

    @Test
    void authIsNotOfferedOrAcceptedWithoutTls() throws Exception
    {
        start();
        try (SmtpTestClient client = SmtpTestClient.connect(relay.port()))
        {
            client.greeting().expect(220);
            final String ehlo = client.command("EHLO client.test").expect(250).toString();
            assertTrue(ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"), ehlo);
            client.command("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==").expect(538, "5.7.11");
        }
        try (SmtpTestClient client = SmtpTestClient.connect(submissionPort()))
        {
            client.greeting().expect(220);
            client.command("EHLO client.test").expect(250);
            client.command("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2UgYmF0dGVyeQ==").expect(530, "5.7.0");
            client.command("MAIL FROM:<alice@client.test>").expect(530, "5.7.0");
        }
    }

    @Test
    void passwordGuessingIsStoppedPerAddress() throws Exception
    {
        start("smtp.limits_exempt_relay_networks", "false", "smtp.rate.auth_failures_per_minute", "3",
            "smtp.max_errors", "50", "smtp.error_delay", "0");
        try (SmtpTestClient client = SmtpTestClient.connectTls(submissionsPort(), trustingTheTestCa()))
        {
            client.greeting().expect(220);
            client.command("EHLO guesser.test").expect(250);
            for (final String guess : List.of("a", "b", "c"))
            {
                client.command("AUTH PLAIN " + plain(TlsRelay.ALICE, guess)).expect(535, "5.7.8");
            }
            client.command("AUTH PLAIN " + plain(TlsRelay.ALICE, TlsRelay.ALICE_PASSWORD)).expect(454, "4.7.0");
        }
        // another connection from the same address is limited too
        try (SmtpTestClient client = SmtpTestClient.connectTls(submissionsPort(), trustingTheTestCa()))
        {
            client.greeting().expect(220);
            client.command("EHLO guesser.test").expect(250);
            client.command("AUTH PLAIN " + plain(TlsRelay.ALICE, TlsRelay.ALICE_PASSWORD)).expect(454, "4.7.0");
        }
    }

    private static String plain(final String user, final String password)
    {
        return java.util.Base64.getEncoder().encodeToString(("\0" + user + "\0" + password)
            .getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void aRenewedCertificateServesNewHandshakesAndDropsNoOpenConnection() throws Exception
    {
        start("smtp.tls.reload_interval", "100ms");
        try (SmtpTestClient before = SmtpTestClient.connectEhlo(relay.port()))
        {
            before.command("STARTTLS").expect(220);
            before.startTls(trustingTheTestCa());
            final X509Certificate old = (X509Certificate)before.tlsSession().getPeerCertificates()[0];
            before.command("EHLO client.test").expect(250);

            // the renewal: a new certificate and key (EC now) written over the files
            final X509Certificate renewed = TestCertificates.get().issue(TestCertificates.KeyType.EC);
            TestCertificates.get().write(tls.pair.cert().getParent(), "server-rsa", TestCertificates.KeyType.EC,
                renewed);
            Await.until(() -> relay.relay().tls().certificate().getSerialNumber().equals(renewed.getSerialNumber()),
                Duration.ofSeconds(10), () -> "renewed certificate loaded");

            try (SmtpTestClient after = SmtpTestClient.connectEhlo(relay.port()))
            {
                after.command("STARTTLS").expect(220);
                after.startTls(trustingTheTestCa());
                final X509Certificate served = (X509Certificate)after.tlsSession().getPeerCertificates()[0];
                assertEquals(renewed.getSerialNumber(), served.getSerialNumber());
                after.command("QUIT").expect(221);
            }
            // the connection opened before goes on, on its old session
            before.sendMessage("a@client.test", List.of("r@ours.test"),
                "Subject: across a renewal\r\n\r\nstill here\r\n".getBytes(StandardCharsets.US_ASCII));
            assertEquals(old.getSerialNumber(),
                ((X509Certificate)before.tlsSession().getPeerCertificates()[0]).getSerialNumber());
        }
    }

    @Test
    void anExpiredOrWrongHostCertificateIsServedButVerifyingClientsRefuseIt() throws Exception
    {
        start("smtp.tls.reload_interval", "100ms");
        for (final java.security.cert.X509Certificate bad : List.of(
            TestCertificates.get().expired(TestCertificates.KeyType.RSA),
            TestCertificates.get().wrongHost(TestCertificates.KeyType.RSA)))
        {
            // an operator's mistake is logged (expired) and served as it is: a relay does not refuse to start on it
            TestCertificates.get().write(tls.pair.cert().getParent(), "server-rsa", TestCertificates.KeyType.RSA, bad);
            Await.until(() -> relay.relay().tls().certificate().getSerialNumber().equals(bad.getSerialNumber()),
                Duration.ofSeconds(10), () -> "certificate " + bad.getSerialNumber() + " loaded");
            try (SmtpTestClient client = SmtpTestClient.connectEhlo(relay.port()))
            {
                client.command("STARTTLS").expect(220);
                final javax.net.ssl.SSLHandshakeException refused = org.junit.jupiter.api.Assertions.assertThrows(
                    javax.net.ssl.SSLHandshakeException.class, () -> client.startTls(trustingTheTestCa()));
                assertTrue(refused.getMessage().contains("validity check failed") ||
                    refused.getMessage().contains("No subject alternative DNS name matching relay.test"),
                    refused.getMessage());
            }
        }
        Await.until(() -> relay.relay().metrics().tlsFailures() == 2, Duration.ofSeconds(5),
            () -> "both refusals counted as TLS failures: " + relay.relay().metrics().tlsFailures());
    }

    @Test
    void aBrokenRenewalKeepsTheCertificateInForce() throws Exception
    {
        start("smtp.tls.reload_interval", "100ms");
        final java.math.BigInteger serial = relay.relay().tls().certificate().getSerialNumber();
        // a key that is not the certificate's (the EC key under the RSA certificate)
        java.nio.file.Files.writeString(tls.pair.key(), TestCertificates.pem("PRIVATE KEY",
            TestCertificates.get().privateKey(TestCertificates.KeyType.EC).getEncoded()));
        // whether the watcher saw it first or this call does, the pair in force stays
        assertFalse(relay.relay().tls().reloadIfChanged());
        assertEquals(serial, relay.relay().tls().certificate().getSerialNumber());
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(relay.port()))
        {
            client.command("STARTTLS").expect(220);
            client.startTls(trustingTheTestCa());
            client.command("EHLO client.test").expect(250);
        }
    }
}
