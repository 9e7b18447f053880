package dev.relay.it;

import dev.relay.testing.Await;
import dev.relay.testing.PostfixInstance;
import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * More real TLS clients of the relay's STARTTLS (with the default engine), beside {@link InboundTlsTest}'s swaks and
 * smtplib: {@code openssl s_client -starttls smtp} verifying the chain and the name, {@code curl --ssl-reqd}, and
 * Postfix as a TLS client relaying to us with {@code smtp_tls_security_level = encrypt} (a private instance the test
 * starts, root only, as {@link PostfixInstance} says). Each message is checked in the spool: its Received: header
 * says ESMTPS and names the TLS version and cipher (RFC 3848). About 10 s.
 */
@Timeout(120)
class InboundTlsClientsTest
{
    private static final Pattern QUEUED = Pattern.compile("250 2\\.0\\.0 Ok: queued as ([0-9A-Za-z]+)");

    @TempDir
    Path tmp;

    private InProcessRelay relay;
    private TlsRelay tls;

    private void start() throws IOException
    {
        tls = new TlsRelay(tmp, TestCertificates.KeyType.RSA);
        relay = InProcessRelay.start(tmp.resolve("spool"), tls.overrides("relay.domains", "ours.test"));
    }

    @AfterEach
    void stop() throws InterruptedException
    {
        if (relay != null)
        {
            relay.close();
        }
    }

    @Test
    void opensslSClientStartTlsVerifiesTheChainAndTheName() throws Exception
    {
        start();
        final Path openssl = ExternalTool.require("openssl");
        // the whole session at once: s_client forwards stdin once STARTTLS is done; -ign_eof waits for the 221
        final Path session = Files.writeString(tmp.resolve("session.txt"), String.join("\r\n",
            "EHLO s-client.test", "MAIL FROM:<ossl@client.test>", "RCPT TO:<r@ours.test>", "DATA",
            "Subject: s_client", "", "through openssl s_client", ".", "QUIT", ""), StandardCharsets.US_ASCII);
        final ExternalTool.Result result = ExternalTool.run(List.of("/bin/sh", "-c",
            "exec \"$0\" s_client -starttls smtp -connect 127.0.0.1:\"$1\" -CAfile \"$2\" -verify_return_error " +
                "-verify_hostname " + TestCertificates.HOST + " -ign_eof -quiet < \"$3\"",
            openssl.toString(), String.valueOf(relay.port()), tls.ca.toString(), session.toString()),
            tmp, Duration.ofSeconds(30));
        assertEquals(0, result.exitCode(), result.toString());
        final SpoolContents.Stored stored = queued(result.stdout());
        assertTrue(stored.receivedHeader().contains(" with ESMTPS id "), stored.receivedHeader());
        assertTrue(stored.receivedHeader().contains("(using TLSv1.3 with cipher TLS_"), stored.receivedHeader());
        assertTrue(stored.bodyText().contains("through openssl s_client"), stored.bodyText());
    }

    @Test
    void curlWithSslReqdSendsOverStartTls() throws Exception
    {
        start();
        final Path curl = ExternalTool.require("curl");
        final Path message = Files.writeString(tmp.resolve("message.txt"),
            "Subject: curl\r\nFrom: <curl@client.test>\r\n\r\nthrough curl --ssl-reqd\r\n", StandardCharsets.US_ASCII);
        final String host = TestCertificates.HOST + ":" + relay.port();
        final ExternalTool.Result result = ExternalTool.run(List.of(curl.toString(), "--silent", "--show-error",
            "--verbose", "--ssl-reqd", "--cacert", tls.ca.toString(), "--resolve", host + ":127.0.0.1",
            "--url", "smtp://" + host, "--mail-from", "curl@client.test", "--mail-rcpt", "r@ours.test",
            "--upload-file", message.toString()), tmp, Duration.ofSeconds(30));
        assertEquals(0, result.exitCode(), result.toString());
        // curl --verbose writes the dialogue to stderr ("< 250 2.0.0 Ok: queued as ...")
        assertTrue(result.stderr().contains("STARTTLS"), result.toString());
        final SpoolContents.Stored stored = queued(result.stderr());
        assertTrue(stored.receivedHeader().contains(" with ESMTPS id "), stored.receivedHeader());
        assertTrue(stored.bodyText().contains("through curl --ssl-reqd"), stored.bodyText());
    }

    @Test
    void postfixRelaysToUsWithTlsAtEncrypt() throws Exception
    {
        start();
        try (PostfixInstance postfix = PostfixInstance.startRelayingTo(tmp, "ours.test",
            new InetSocketAddress("127.0.0.1", relay.port()), tls.ca))
        {
            try (Socket socket = new Socket())
            {
                socket.connect(new InetSocketAddress("127.0.0.1", postfix.port()), 10_000);
                socket.setSoTimeout(30_000);
                final OutputStream out = socket.getOutputStream();
                final InputStream in = socket.getInputStream();
                expect(in, "220");
                for (final String[] step : new String[][] {
                    {"EHLO mua.test", "250 "}, {"MAIL FROM:<pf@client.test>", "250"}, {"RCPT TO:<r@ours.test>", "250"},
                    {"DATA", "354"}, {"Subject: via postfix\r\n\r\nrelayed by Postfix over TLS\r\n.", "250"},
                    {"QUIT", "221"}})
                {
                    out.write((step[0] + "\r\n").getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                    expect(in, step[1]);
                }
            }
            final long deadline = System.nanoTime() + 30_000_000_000L;
            List<SpoolContents.Stored> spooled = relay.spooled();
            while (spooled.isEmpty() && System.nanoTime() < deadline)
            {
                Thread.sleep(100);
                spooled = relay.spooled();
            }
            assertEquals(1, spooled.size(), () -> "Postfix's log:\n" + postfix.log());
            final SpoolContents.Stored stored = spooled.get(0);
            assertEquals(List.of("r@ours.test"), stored.recipients());
            assertTrue(stored.receivedHeader().contains(" with ESMTPS id "), stored.receivedHeader());
            assertTrue(stored.bodyText().contains("relayed by Postfix over TLS"), stored.bodyText());
            // the relay spools before its 250; Postfix logs status=sent after reading it
            Await.until(() -> postfix.log().contains("status=sent"), Duration.ofSeconds(30), postfix::log);
            final String log = postfix.log();
            assertTrue(log.contains("Verified TLS connection established to 127.0.0.1") ||
                log.contains("Trusted TLS connection established to 127.0.0.1"), log);
            assertTrue(log.contains("status=sent"), log);
        }
    }

    private SpoolContents.Stored queued(final String dialogue) throws IOException
    {
        final Matcher m = QUEUED.matcher(dialogue);
        assertTrue(m.find(), dialogue);
        return SpoolContents.find(relay.spoolDir(), m.group(1));
    }

    /** Reads reply lines until the last line of one reply; it must start with {@code code}. */
    private static void expect(final InputStream in, final String code) throws IOException
    {
        while (true)
        {
            final StringBuilder line = new StringBuilder();
            int b;
            while ((b = in.read()) != -1 && b != '\n')
            {
                line.append((char)b);
            }
            if (b == -1)
            {
                throw new IOException("closed while waiting for " + code + ": " + line);
            }
            if (line.length() < 4 || line.charAt(3) != '-')
            {
                assertTrue(line.toString().startsWith(code), () -> "expected " + code + ", got " + line);
                return;
            }
        }
    }
}
