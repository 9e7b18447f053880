package dev.relay.it;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SMTP smuggling (CVE-2023-51764 and friends): only CRLF.CRLF ends DATA; a fake end followed by a second,
 * smuggled transaction never puts a second message into the spool. Bad bytes in commands; a client that vanishes
 * mid-DATA.
 */
@Timeout(30)
class InboundSmugglingTest
{
    @TempDir
    Path tmp;
    private InProcessRelay relay;

    @BeforeEach
    void start() throws Exception
    {
        relay = InProcessRelay.start(tmp.resolve("spool"));
    }

    @AfterEach
    void stop() throws Exception
    {
        if (relay != null)
        {
            relay.close();
        }
    }

    /** The fake terminators, written as Java escapes: \n.\n, \r\n.\n, \n.\r\n, \r.\r. */
    @ParameterizedTest(name = "fake end {0}")
    @ValueSource(strings = {"LF.LF", "CRLF.LF", "LF.CRLF", "CR.CR"})
    void smuggledSecondMessageNeverSpooled(final String variant) throws Exception
    {
        final String fakeEnd = variant.replace("CR", "\r").replace("LF", "\n");
        final String smuggled = "MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@ours.test>\r\nDATA\r\n" +
            "Subject: smuggled\r\n\r\nsmuggled body\r\n";
        final List<SmtpTestClient.Reply> replies = new ArrayList<>();
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<good@client.test>").expect(250);
            client.command("RCPT TO:<r@ours.test>").expect(250);
            client.command("DATA").expect(354);
            client.write("Subject: first\r\n\r\nfirst body" + fakeEnd + smuggled + ".\r\nQUIT\r\n");
            while (true)
            {
                final SmtpTestClient.Reply reply;
                try
                {
                    reply = client.read();
                }
                catch (final IOException closed)
                {
                    break;
                }
                replies.add(reply);
                if (reply.code() == 221)
                {
                    break;
                }
            }
        }
        final List<SpoolContents.Stored> stored = relay.spooled();
        assertTrue(stored.size() <= 1, () -> "a second message was smuggled in: " + stored + " replies " + replies);
        for (final SpoolContents.Stored s : stored)
        {
            assertFalse(s.from().contains("evil"), () -> "smuggled envelope spooled: " + s);
        }
        assertEquals(0, replies.stream().filter(r -> r.last().contains("queued as")).count() - stored.size(),
            () -> "every 250 queued is in the spool: " + replies);
        // this relay refuses the whole message (Postfix smtpd_forbid_bare_newline=reject)
        assertEquals(2, replies.size(), replies::toString);
        replies.get(0).expect(550, "5.6.0");
        replies.get(1).expect(221);
        assertEquals(0, stored.size());
    }

    @Test
    void nulAndBareCrInCommandsAre500() throws Exception
    {
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.write("NOOP\0\r\n");
            client.read().expect(500, "5.5.2");
            client.write("MAIL FROM:<a\0@client.test>\r\n");
            client.read().expect(500, "5.5.2");
            client.write("MAIL FROM:<a@client.test>\rRCPT TO:<r@ours.test>\r\n");
            client.read().expect(500, "5.5.2");
            client.write("NOOP\n");
            client.read().expect(500, "5.5.2");
            // none of them was executed
            client.command("RCPT TO:<r@ours.test>").expect(503, "5.5.1");
            client.command("NOOP").expect(250);
        }
    }

    @Test
    void disconnectMidDataLeavesNothingDeliverable() throws Exception
    {
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<gone@client.test>").expect(250);
            client.command("RCPT TO:<r@ours.test>").expect(250);
            client.command("DATA").expect(354);
            client.write(WireBodies.whole(4, (int)WireBodies.roundToLines(300_000)));
        }
        // another client afterwards proves the relay is fine and gives the spool a complete message to compare
        final String id;
        try (SmtpTestClient client = relay.connectEhlo())
        {
            id = client.sendMessage("ok@client.test", List.of("r@ours.test"),
                "Subject: ok\r\n\r\nok\r\n".getBytes(StandardCharsets.US_ASCII));
        }
        // the aborted body's chunks may be in the spool, but no END: the reader returns only the complete message
        final List<SpoolContents.Stored> stored = relay.spooled();
        assertEquals(1, stored.size(), stored::toString);
        assertEquals(id, stored.get(0).queueId());
    }
}
