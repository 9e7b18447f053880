package dev.relay.smtp;

import dev.relay.Relay;
import dev.relay.auth.PasswordHashes;
import dev.relay.config.SmtpServerSettings;
import dev.relay.net.ClientRates;
import dev.relay.net.ConnectionLimiter;
import dev.relay.net.LoopDouble;
import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * STARTTLS (RFC 3207), the submission listeners (RFC 6409, RFC 8314) and AUTH PLAIN/LOGIN (RFC 4954) of
 * {@link SmtpSession}, on the {@link LoopDouble} with a real JDK engine at both ends (test certificates) and
 * passwords checked by {@link PasswordHashes} (cheap rounds), the answer coming back in a later pass as the real
 * verifier's does. A second or two.
 */
@Timeout(60)
class SmtpSessionTlsTest
{
    private static final String ALICE_PASSWORD = "correct horse";
    /** Users with cheap hashes (the scheme's cost is the verifier's business, tested in PasswordHashesTest). */
    private static final Map<String, String> USERS = Map.of(
        "alice", PasswordHashes.hash(ALICE_PASSWORD.getBytes(StandardCharsets.UTF_8), 1_000),
        "bob", "{PLAIN}hunter2");
    private static final String EXTERNAL_CLIENT = "192.0.2.10";

    private final List<String> events = new ArrayList<>();

    /** Options of one driver. */
    private static final class Setup
    {
        int listener = SmtpSession.SMTP_LISTENER;
        boolean tls = true;
        boolean tlsRequired;
        boolean auth = true;
        boolean allowPlaintext;
        int authFailuresPerMinute;
        String clientIp = EXTERNAL_CLIENT;
    }

    private SessionDriver driver(final Setup setup)
    {
        final LoopDouble loop = new LoopDouble(SessionDriver.READ_BUFFER_BYTES, Relay.WRITE_BUFFER_BYTES);
        final SessionEvents recorder = new SessionEvents()
        {
            @Override
            public void onMessageAccepted(final InboundMessage message, final String client, final long latencyNs)
            {
                events.add("accepted " + message.authMechanism() + " " + message.authUser());
            }

            @Override
            public void onMessageRejected(final InboundMessage message, final String client, final String reason)
            {
            }

            @Override
            public void onDisconnect(final String client, final String summary, final boolean timedOut,
                final boolean tls)
            {
                events.add("disconnect " + summary);
            }

            @Override
            public void onTlsEstablished(final String client, final String protocol, final String cipher)
            {
                events.add("tls " + protocol);
            }

            @Override
            public void onTlsFailed(final String client, final String reason)
            {
                events.add("tls failed " + reason);
            }

            @Override
            public void onAuthenticated(final String client, final String mechanism, final String user)
            {
                events.add("auth " + mechanism + " " + user);
            }

            @Override
            public void onAuthFailed(final String client, final String mechanism, final String user,
                final String reason)
            {
                events.add("auth failed " + mechanism + " " + user);
            }
        };
        final Authenticator checker = (user, password, listener) ->
        {
            final String stored = USERS.get(user);
            final int result = stored != null && PasswordHashes.verify(password, stored) ? Authenticator.OK :
                Authenticator.FAILED;
            // the answer comes back later on the loop, as PasswordVerifier's does
            loop.execute(() -> listener.onAuthResult(result));
        };
        final SmtpServerSettings settings = SmtpServerSettings.defaults("relay.test");
        return new SessionDriver(new MemorySink(), sink ->
        {
            final SessionContext context = new SessionContext(settings, sink, 0, recorder);
            if (setup.tls)
            {
                context.tls(() -> TestCertificates.get().serverEngine(TestCertificates.KeyType.EC), 5_000,
                    setup.tlsRequired);
            }
            if (setup.auth)
            {
                context.auth(checker, setup.allowPlaintext);
            }
            context.limiter(new ConnectionLimiter(1000, 0, address -> false,
                new ClientRates(0, 0, setup.authFailuresPerMinute)));
            return context;
        }, setup.clientIp, loop, setup.listener);
    }

    /** The client's side of the handshake, after the 220 to STARTTLS (or at once for implicit TLS). */
    private static void handshake(final SessionDriver driver)
    {
        driver.client.startTls(TestCertificates.get().clientEngine());
        assertTrue(driver.loop.runUntil(() -> driver.client.tls().isEstablished(), 5_000),
            "handshake: " + driver.client.tls().failure());
    }

    private static String plain(final String user, final String password)
    {
        return Base64.getEncoder().encodeToString(("\0" + user + "\0" + password).getBytes(StandardCharsets.UTF_8));
    }

    private static String base64(final String text)
    {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void ehloOffersStartTlsThenAuthOnlyUnderTlsAndReceivedSaysEsmtpsa()
    {
        final SessionDriver driver = driver(new Setup());
        driver.output();
        final String before = driver.send("EHLO client.test\r\n");
        assertTrue(before.contains("250-STARTTLS\r\n"), before);
        assertFalse(before.contains("AUTH"), "AUTH offered without TLS: " + before);
        assertEquals("538 5.7.11 Encryption required for requested authentication mechanism\r\n",
            driver.send("AUTH PLAIN " + plain("alice", ALICE_PASSWORD) + "\r\n"));
        assertEquals("220 2.0.0 Ready to start TLS\r\n", driver.send("STARTTLS\r\n"));
        handshake(driver);
        final String after = driver.send("EHLO client.test\r\n");
        assertFalse(after.contains("STARTTLS"), after);
        assertTrue(after.contains("250-AUTH PLAIN LOGIN\r\n"), after);
        assertEquals("235 2.7.0 Authentication successful\r\n",
            driver.send("AUTH PLAIN " + plain("alice", ALICE_PASSWORD) + "\r\n"));
        assertFalse(driver.send("EHLO client.test\r\n").contains("AUTH"), "AUTH offered once authenticated");
        // authenticated: may relay anywhere, although the client is outside relay.networks
        assertEquals("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
            driver.send("MAIL FROM:<alice@client.test>\r\nRCPT TO:<r@elsewhere.test>\r\nDATA\r\n"));
        assertTrue(driver.send("Subject: t\r\n\r\nhi\r\n.\r\n").startsWith("250 2.0.0 Ok: queued as "));
        final String received = new String(driver.sink.committed.get(0).receivedHeader, StandardCharsets.US_ASCII);
        assertTrue(received.contains("(using TLSv1.3 with cipher TLS_"), received);
        assertTrue(received.contains(" with ESMTPSA id "), received);
        assertTrue(events.contains("accepted PLAIN alice"), events.toString());
        driver.send("QUIT\r\n");
        assertTrue(events.stream().anyMatch(e -> e.startsWith("disconnect") && e.contains("starttls=1") &&
            e.contains("auth=2")), events.toString());
    }

    @Test
    void plaintextPipelinedAfterStartTlsIsDiscardedNotExecuted()
    {
        final SessionDriver driver = driver(new Setup());
        driver.output();
        // CVE-2011-0411: commands injected behind STARTTLS in the same packet must not run after the handshake
        assertEquals("250-relay.test", driver.send("EHLO client.test\r\nSTARTTLS\r\nMAIL FROM:<evil@x.test>\r\n" +
            "RCPT TO:<victim@y.test>\r\n").lines().findFirst().orElse(""));
        handshake(driver);
        assertEquals("", driver.output(), "a reply to an injected command");
        assertEquals("503 5.5.1 Error: send HELO/EHLO first\r\n", driver.send("RCPT TO:<b@y.test>\r\n"));
        driver.send("EHLO client.test\r\n");
        assertEquals("503 5.5.1 Error: need MAIL command\r\n", driver.send("RCPT TO:<b@y.test>\r\n"));
    }

    @Test
    void startTlsForgetsEhloAuthAndTheTransaction()
    {
        final Setup setup = new Setup();
        setup.allowPlaintext = true;
        setup.clientIp = "127.0.0.1";
        final SessionDriver driver = driver(setup);
        driver.output();
        final String ehlo = driver.send("EHLO client.test\r\n");
        assertTrue(ehlo.contains("250-STARTTLS") && ehlo.contains("250-AUTH PLAIN LOGIN"), ehlo);
        assertEquals("235 2.7.0 Authentication successful\r\n",
            driver.send("AUTH PLAIN " + plain("bob", "hunter2") + "\r\n"));
        assertEquals("250 2.1.0 Ok\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
        assertEquals("220 2.0.0 Ready to start TLS\r\n", driver.send("STARTTLS\r\n"));
        handshake(driver);
        assertEquals("503 5.5.1 Error: send HELO/EHLO first\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
        final String again = driver.send("EHLO client.test\r\n");
        assertTrue(again.contains("250-AUTH PLAIN LOGIN"), "AUTH kept across STARTTLS: " + again);
        assertEquals("503 5.5.1 Error: need MAIL command\r\n", driver.send("RCPT TO:<b@y.test>\r\n"));
        assertEquals("554 5.5.1 Error: TLS already active\r\n", driver.send("STARTTLS\r\n"));
    }

    @Test
    void tlsRequiredRefusesMailBeforeStartTls()
    {
        final Setup setup = new Setup();
        setup.tlsRequired = true;
        setup.clientIp = "127.0.0.1";
        final SessionDriver driver = driver(setup);
        driver.output();
        assertTrue(driver.send("EHLO client.test\r\n").startsWith("250-relay.test"));
        assertEquals("250 2.0.0 Ok\r\n", driver.send("NOOP\r\n"));
        assertEquals("530 5.7.0 Must issue a STARTTLS command first\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
        assertEquals("530 5.7.0 Must issue a STARTTLS command first\r\n", driver.send("RSET\r\n"));
        driver.send("STARTTLS\r\n");
        handshake(driver);
        driver.send("EHLO client.test\r\n");
        assertEquals("250 2.1.0 Ok\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
    }

    @Test
    void submissionWantsStartTlsThenAuthBeforeMail()
    {
        final Setup setup = new Setup();
        setup.listener = SmtpSession.SUBMISSION_LISTENER;
        setup.allowPlaintext = true;
        final SessionDriver driver = driver(setup);
        driver.output();
        final String ehlo = driver.send("EHLO laptop\r\n");
        assertTrue(ehlo.contains("250-STARTTLS"), ehlo);
        assertEquals("530 5.7.0 Must issue a STARTTLS command first\r\n",
            driver.send("AUTH PLAIN " + plain("alice", ALICE_PASSWORD) + "\r\n"));
        assertEquals("530 5.7.0 Must issue a STARTTLS command first\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
        driver.send("STARTTLS\r\n");
        handshake(driver);
        driver.send("EHLO laptop\r\n");
        assertEquals("530 5.7.0 Authentication required\r\n", driver.send("MAIL FROM:<alice@x.test>\r\n"));
        assertEquals("334 VXNlcm5hbWU6\r\n", driver.send("AUTH LOGIN\r\n"));
        assertEquals("334 UGFzc3dvcmQ6\r\n", driver.send(base64("alice") + "\r\n"));
        assertEquals("235 2.7.0 Authentication successful\r\n", driver.send(base64(ALICE_PASSWORD) + "\r\n"));
        assertEquals("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n",
            driver.send("MAIL FROM:<alice@x.test>\r\nRCPT TO:<anyone@anywhere.test>\r\n"));
    }

    @Test
    void submissionsSpeaksTlsFromTheFirstByte()
    {
        final Setup setup = new Setup();
        setup.listener = SmtpSession.SUBMISSIONS_LISTENER;
        final SessionDriver driver = driver(setup);
        assertEquals("", driver.output(), "greeting in plaintext");
        handshake(driver);
        assertEquals("220 relay.test ESMTP relay\r\n", driver.output());
        final String ehlo = driver.send("EHLO laptop\r\n");
        assertTrue(ehlo.contains("250-AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"), ehlo);
        assertEquals("502 5.5.1 Error: command not implemented\r\n", driver.send("STARTTLS\r\n"));
        assertEquals("530 5.7.0 Authentication required\r\n", driver.send("MAIL FROM:<alice@x.test>\r\n"));
        assertEquals("334 \r\n", driver.send("AUTH PLAIN\r\n"));
        assertEquals("235 2.7.0 Authentication successful\r\n", driver.send(plain("alice", ALICE_PASSWORD) + "\r\n"));
        assertEquals("250 2.1.0 Ok\r\n", driver.send("MAIL FROM:<alice@x.test>\r\n"));
    }

    @Test
    void badCredentialsGet535AndCountAsErrorsCancelAndGarbageGet501()
    {
        final Setup setup = new Setup();
        setup.allowPlaintext = true;
        final SessionDriver driver = driver(setup);
        driver.output();
        driver.send("EHLO client.test\r\n");
        assertEquals("535 5.7.8 Authentication credentials invalid\r\n",
            driver.send("AUTH PLAIN " + plain("alice", "wrong") + "\r\n"));
        assertEquals("535 5.7.8 Authentication credentials invalid\r\n",
            driver.send("AUTH PLAIN " + plain("mallory", ALICE_PASSWORD) + "\r\n"));
        assertEquals("334 VXNlcm5hbWU6\r\n", driver.send("AUTH LOGIN\r\n"));
        assertEquals("501 5.7.0 Authentication aborted\r\n", driver.send("*\r\n"));
        assertEquals("501 5.5.2 Cannot decode response\r\n", driver.send("AUTH PLAIN !!!notbase64\r\n"));
        assertEquals("504 5.5.4 Unrecognized authentication type\r\n", driver.send("AUTH CRAM-MD5\r\n"));
        assertEquals("535 5.7.8 Authentication credentials invalid\r\n",
            driver.send("AUTH PLAIN " + Base64.getEncoder().encodeToString(
                ("bob\0alice\0" + ALICE_PASSWORD).getBytes(StandardCharsets.UTF_8)) + "\r\n"));
        // a user name that would forge a log line is logged with its control characters replaced
        assertEquals("535 5.7.8 Authentication credentials invalid\r\n",
            driver.send("AUTH PLAIN " + plain("x\r\nforged", "pw") + "\r\n"));
        assertEquals(List.of("auth failed PLAIN alice", "auth failed PLAIN mallory", "auth failed PLAIN alice",
            "auth failed PLAIN x??forged"), events.stream().filter(e -> e.startsWith("auth")).toList());
        assertEquals("250 2.0.0 Ok\r\n", driver.send("NOOP\r\n"), "the session goes on after failures");
    }

    @Test
    void authFailuresPastThePerAddressRateAreRefusedWithoutACheck()
    {
        final Setup setup = new Setup();
        setup.allowPlaintext = true;
        setup.authFailuresPerMinute = 3;
        final SessionDriver driver = driver(setup);
        driver.output();
        driver.send("EHLO client.test\r\n");
        for (int i = 0; i < 3; i++)
        {
            assertEquals("535 5.7.8 Authentication credentials invalid\r\n",
                driver.send("AUTH PLAIN " + plain("alice", "guess" + i) + "\r\n"));
        }
        // even the right password is not checked now: guessing is stopped, not slowed
        assertEquals("454 4.7.0 Error: too many failed authentications from your address, try again later\r\n",
            driver.send("AUTH PLAIN " + plain("alice", ALICE_PASSWORD) + "\r\n"));
    }

    @Test
    void aClientThatNeverStartsTheHandshakeIsClosedAtTheHandshakeTimeout()
    {
        final SessionDriver driver = driver(new Setup());
        driver.output();
        driver.send("EHLO client.test\r\n");
        assertEquals("220 2.0.0 Ready to start TLS\r\n", driver.send("STARTTLS\r\n"));
        driver.loop.advance(6_000);
        assertTrue(driver.client.isClosed(), "still open after the handshake timeout");
        assertTrue(events.contains("tls failed handshake timeout"), events.toString());
    }

    @Test
    void withoutTlsConfiguredStartTlsIsNotImplementedAndNotOffered()
    {
        final Setup setup = new Setup();
        setup.tls = false;
        setup.auth = false;
        final SessionDriver driver = driver(setup);
        driver.output();
        final String ehlo = driver.send("EHLO client.test\r\n");
        assertFalse(ehlo.contains("STARTTLS") || ehlo.contains("AUTH"), ehlo);
        assertEquals("502 5.5.1 Error: command not implemented\r\n", driver.send("STARTTLS\r\n"));
        assertEquals("503 5.5.1 Error: authentication not enabled\r\n", driver.send("AUTH PLAIN\r\n"));
    }
}
