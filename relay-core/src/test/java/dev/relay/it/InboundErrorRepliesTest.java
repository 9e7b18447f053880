package dev.relay.it;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every error reply of the inbound server, over a real socket, and the session state after it. */
@Timeout(30)
class InboundErrorRepliesTest
{
    @TempDir
    Path tmp;
    private InProcessRelay relay;

    private InProcessRelay start(final String... overrides) throws Exception
    {
        relay = InProcessRelay.start(tmp.resolve("spool"), overrides);
        return relay;
    }

    @AfterEach
    void stop() throws Exception
    {
        if (relay != null)
        {
            relay.close();
        }
    }

    @Test
    void wrongOrderIs503() throws Exception
    {
        start();
        try (SmtpTestClient client = relay.connect())
        {
            client.command("MAIL FROM:<a@client.test>").expect(503, "5.5.1");
            client.command("EHLO client.test").expect(250);
            client.command("RCPT TO:<r@ours.test>").expect(503, "5.5.1");
            client.command("DATA").expect(503, "5.5.1");
            client.command("MAIL FROM:<a@client.test>").expect(250);
            client.command("DATA").expect(503, "5.5.1");
            client.command("MAIL FROM:<a@client.test>").expect(503, "5.5.1");
            // the transaction survived the errors
            client.command("RCPT TO:<r@ours.test>").expect(250);
            client.command("DATA").expect(354);
            client.write("x\r\n.\r\n");
            client.read().queueId();
        }
    }

    @Test
    void syntaxErrorsAre501() throws Exception
    {
        start();
        try (SmtpTestClient client = relay.connect())
        {
            client.command("EHLO").expect(501, "5.5.4");
            client.command("HELO").expect(501, "5.5.4");
            client.command("EHLO client.test").expect(250);
            client.command("MAIL TO:<a@client.test>").expect(501, "5.5.4");
            client.command("MAIL FROM:<a@client.test> SIZE=abc").expect(501, "5.5.4");
            client.command("RSET now").expect(501, "5.5.4");
            client.command("NOOP").expect(250);
            client.command("MAIL FROM:<a@client.test>").expect(250);
            client.command("RCPT FROM:<r@ours.test>").expect(501, "5.5.4");
            client.command("DATA now").expect(501, "5.5.4");
            client.command("BDAT x").expect(501, "5.5.4");
            client.command("RCPT TO:<r@ours.test>").expect(250);
        }
    }

    @Test
    void unknownCommandIs500() throws Exception
    {
        start();
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("FOO bar").expect(500, "5.5.1");
            client.command("MAILFROM:<a@client.test>").expect(500, "5.5.1");
            client.command("NOOP").expect(250);
        }
    }

    @Test
    void overlongCommandIs500AndNotExecuted() throws Exception
    {
        start();
        try (SmtpTestClient client = relay.connectEhlo())
        {
            final String longMail = "MAIL FROM:<" + "a".repeat(600) + "@client.test>";
            assertTrue(longMail.length() + 2 > 512);
            client.command(longMail).expect(500, "5.5.6");
            // not executed: there is no transaction to add a recipient to
            client.command("RCPT TO:<r@ours.test>").expect(503, "5.5.1");
            // and exactly 512 octets with CRLF is still a command
            final String noop = "NOOP " + "x".repeat(512 - 2 - 5);
            assertEquals(510, noop.length());
            client.command(noop).expect(250);
            client.command("MAIL FROM:<a@client.test>").expect(250);
        }
    }

    @Test
    void tooManyRecipientsIs452() throws Exception
    {
        start("smtp.max_recipients", "3");
        final String id;
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<a@client.test>").expect(250);
            for (int i = 1; i <= 3; i++)
            {
                client.command("RCPT TO:<r" + i + "@ours.test>").expect(250);
            }
            client.command("RCPT TO:<r4@ours.test>").expect(452, "4.5.3");
            client.command("RCPT TO:<r5@ours.test>").expect(452, "4.5.3");
            client.command("DATA").expect(354);
            client.write("Subject: three\r\n\r\nx\r\n.\r\n");
            id = client.read().queueId();
        }
        assertEquals(List.of("r1@ours.test", "r2@ours.test", "r3@ours.test"),
            SpoolContents.find(relay.spoolDir(), id).recipients());
    }

    @Test
    void declaredSizeOverLimitIs552AtMail() throws Exception
    {
        start("smtp.max_message_size", "65536");
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<a@client.test> SIZE=65537").expect(552, "5.3.4");
            client.command("MAIL FROM:<a@client.test> SIZE=65536").expect(250);
        }
    }

    @Test
    void bodyOverLimitIs552AfterTerminatorAndSessionGoesOn() throws Exception
    {
        start("smtp.max_message_size", "65536");
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<a@client.test>").expect(250);
            client.command("RCPT TO:<r@ours.test>").expect(250);
            client.command("DATA").expect(354);
            client.write(WireBodies.whole(3, (int)WireBodies.roundToLines(100_000)));
            client.write(".\r\n");
            client.read().expect(552, "5.3.4");
            final String id = client.sendMessage("a@client.test", List.of("r@ours.test"),
                "Subject: small\r\n\r\nfits\r\n".getBytes(StandardCharsets.US_ASCII));
            client.command("QUIT").expect(221);
            final List<SpoolContents.Stored> stored = relay.spooled();
            assertEquals(1, stored.size(), stored.toString());
            assertEquals(id, stored.get(0).queueId());
        }
    }

    @Test
    void maxErrorsGets421AndClose() throws Exception
    {
        start("smtp.max_errors", "5");
        try (SmtpTestClient client = relay.connectEhlo())
        {
            for (int i = 1; i <= 4; i++)
            {
                client.command("BOGUS " + i).expect(500, "5.5.1");
            }
            client.command("BOGUS 5").expect(500, "5.5.1");
            client.read().expect(421, "4.7.0");
            assertTrue(client.awaitClosedByServer(Duration.ofSeconds(5)), "server closes after 421");
        }
    }

    @Test
    void relayDeniedOutsideRelayNetworksExceptRelayDomains() throws Exception
    {
        start("relay.networks", "10.0.0.0/8", "relay.domains", "ours.test");
        final String id;
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<a@client.test>").expect(250);
            client.command("RCPT TO:<victim@elsewhere.test>").expect(554, "5.7.1");
            client.command("RCPT TO:<x@sub.ours.test>").expect(554, "5.7.1");
            client.command("RCPT TO:<user@OURS.test>").expect(250, "2.1.5");
            client.command("RCPT TO:<postmaster>").expect(250, "2.1.5");
            client.command("DATA").expect(354);
            client.write("Subject: to us\r\n\r\nx\r\n.\r\n");
            id = client.read().queueId();
        }
        assertEquals(List.of("user@OURS.test", "postmaster@relay.test"),
            SpoolContents.find(relay.spoolDir(), id).recipients());
    }

    @Test
    void relayAllowedFromRelayNetworks() throws Exception
    {
        start("relay.networks", "127.0.0.0/8", "relay.domains", "ours.test");
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<a@client.test>").expect(250);
            client.command("RCPT TO:<anyone@elsewhere.test>").expect(250, "2.1.5");
            client.command("RCPT TO:<user@ours.test>").expect(250, "2.1.5");
        }
    }
}
