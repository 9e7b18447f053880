package dev.relay.it;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every SMTP smuggling variant we know, in DATA and in BDAT, each on its own connection, everything written in
 * one go (as a smuggling client pipelines it). In DATA, any fake end (bare LF, bare CR, NUL, mixed) makes the
 * message refused and nothing after it is a command. In BDAT, {@code <CRLF>.<CRLF>} is content: one message,
 * with the would-be smuggled commands inside its body. The spool holds exactly the expected messages and no
 * smuggled envelope.
 */
@Tag("slow")
@Timeout(120)
class AdversarialSmugglingTest
{
    private static final String SMUGGLED = "MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@ours.test>\r\nDATA\r\n" +
        "Subject: smuggled\r\n\r\nsmuggled body\r\n";

    @TempDir
    Path tmp;

    @Test
    void noVariantSmugglesAMessage() throws Exception
    {
        final Map<String, String> fakeEnds = new LinkedHashMap<>();
        fakeEnds.put("<LF>.<LF>", "\n.\n");
        fakeEnds.put("<CR><LF>.<LF>", "\r\n.\n");
        fakeEnds.put("<LF>.<CR><LF>", "\n.\r\n");
        fakeEnds.put("<CR>.<CR>", "\r.\r");
        fakeEnds.put("<CR><LF>.<CR>", "\r\n.\r");
        fakeEnds.put("<CR>.<CR><LF>", "\r.\r\n");
        fakeEnds.put("<CR><LF>.<CR><CR><LF>", "\r\n.\r\r\n");
        fakeEnds.put("<CR><LF>.<NUL><CR><LF>", "\r\n.\0\r\n");
        fakeEnds.put("<CR><LF><NUL>.<CR><LF>", "\r\n\0.\r\n");
        fakeEnds.put("bare LF line", "\nbare LF line\r\n");
        fakeEnds.put("bare CR line", "\rbare CR line\r\n");
        fakeEnds.put("mixed <LF>.<LF><CR><LF>.<LF>", "\n.\n\r\n.\n");
        fakeEnds.put("<CR><LF>..<CR><LF> then <LF>.<CR><LF>", "\r\n..\r\n\n.\r\n");
        final List<String> report = new ArrayList<>();
        final AdversarialRelay relay = AdversarialRelay.start(tmp, AdversarialRelay.config(tmp.resolve("spool")), 0);
        int queued = 0;
        try (relay)
        {
            final AdversarialRelay.Resources baseline = relay.warmBaseline();
            for (final Map.Entry<String, String> v : fakeEnds.entrySet())
            {
                final List<SmtpTestClient.Reply> replies = data(relay.port(), "Subject: data\r\n\r\nfirst" + v.getValue() +
                    SMUGGLED + ".\r\nQUIT\r\n");
                report.add("DATA " + v.getKey() + " -> " + replies);
                assertEquals(2, replies.size(), () -> v.getKey() + ": " + replies);
                assertEquals(550, replies.get(0).code(), () -> v.getKey() + ": " + replies);
                replies.get(1).expect(221);
            }
            // BDAT: <CRLF>.<CRLF> and the commands after it are content of one chunk
            final String inChunk = "Subject: bdat\r\n\r\nfirst\r\n.\r\n" + SMUGGLED + ".\r\n";
            List<SmtpTestClient.Reply> replies = bdat(relay.port(), List.of(inChunk));
            report.add("BDAT CRLF.CRLF in one chunk -> " + replies);
            assertEquals("250221", codes(replies), replies::toString);
            queued += count(replies);
            // split across chunks: "...\r\n." | "\r\nMAIL FROM..."
            replies = bdat(relay.port(), List.of("Subject: bdat split\r\n\r\nfirst\r\n.", "\r\n" + SMUGGLED));
            report.add("BDAT CRLF. | CRLF across chunks -> " + replies);
            queued += count(replies);
            // bare LF and NUL in BDAT content are refused like in DATA
            for (final String bad : List.of("\n.\n", "\r.\r", "\r\n.\0\r\n"))
            {
                replies = bdat(relay.port(), List.of("Subject: bdat bad\r\n\r\nfirst" + bad + SMUGGLED));
                report.add("BDAT " + bad.replace("\r", "<CR>").replace("\n", "<LF>").replace("\0", "<NUL>") + " -> " +
                    replies);
                assertEquals(0, count(replies), replies::toString);
            }
            // a plain BDAT message: the session is still usable after all of the above
            replies = bdat(relay.port(), List.of("Subject: x\r\n\r\nx\r\n"));
            queued += count(replies);
            relay.assertRecovered(baseline, "smuggling");
            relay.stop();
        }
        report.forEach(r -> System.out.println("[adversarial] smuggling: " + r));
        final List<AdversarialRelay.Stored> stored = relay.spooled();
        System.out.printf("[adversarial] smuggling: %d DATA variants, 6 BDAT cases; spool holds %d messages: %s%n",
            fakeEnds.size(), stored.size(), stored.stream().map(AdversarialRelay.Stored::from).toList());
        for (final AdversarialRelay.Stored s : stored)
        {
            assertFalse(s.from().contains("evil"), () -> "smuggled envelope spooled: " + s);
        }
        assertEquals(3, queued, "BDAT: CRLF.CRLF in a chunk, split across chunks, and a plain one are accepted");
        // warm-up + recovery messages, and the three BDAT messages
        assertEquals(AdversarialRelay.WARM_MESSAGES + 1 + queued, stored.size(), stored::toString);
        assertEquals(2, stored.stream().filter(s -> s.body().contains("\r\n.\r\nMAIL FROM:<evil@attacker.test>\r\n"))
            .count(), "the BDAT bodies keep the would-be smuggled commands as content");
    }

    private static List<SmtpTestClient.Reply> data(final int port, final String afterDataCommand) throws IOException
    {
        try (SmtpTestClient c = SmtpTestClient.connectEhlo(port))
        {
            c.command("MAIL FROM:<good@client.test>").expect(250);
            c.command("RCPT TO:<r@ours.test>").expect(250);
            c.command("DATA").expect(354);
            c.write(afterDataCommand.getBytes(StandardCharsets.ISO_8859_1));
            return readUntilClosed(c);
        }
    }

    /** MAIL, RCPT, then each chunk as BDAT (the last with LAST) and QUIT, all written at once. */
    private static List<SmtpTestClient.Reply> bdat(final int port, final List<String> chunks) throws IOException
    {
        try (SmtpTestClient c = SmtpTestClient.connectEhlo(port))
        {
            final StringBuilder all = new StringBuilder("MAIL FROM:<good@client.test>\r\nRCPT TO:<r@ours.test>\r\n");
            for (int i = 0; i < chunks.size(); i++)
            {
                final byte[] chunk = chunks.get(i).getBytes(StandardCharsets.ISO_8859_1);
                all.append("BDAT ").append(chunk.length).append(i == chunks.size() - 1 ? " LAST" : "").append("\r\n")
                    .append(chunks.get(i));
            }
            all.append("QUIT\r\n");
            c.write(all.toString());
            final List<SmtpTestClient.Reply> replies = readUntilClosed(c);
            assertTrue(replies.size() >= 3, replies::toString);
            return replies.subList(2, replies.size());
        }
    }

    private static List<SmtpTestClient.Reply> readUntilClosed(final SmtpTestClient c)
    {
        final List<SmtpTestClient.Reply> replies = new ArrayList<>();
        while (true)
        {
            try
            {
                final SmtpTestClient.Reply r = c.read();
                replies.add(r);
                if (r.code() == 221)
                {
                    return replies;
                }
            }
            catch (final IOException closed)
            {
                return replies;
            }
        }
    }

    private static int count(final List<SmtpTestClient.Reply> replies)
    {
        return (int)replies.stream().filter(r -> r.last().contains("queued as")).count();
    }

    private static String codes(final List<SmtpTestClient.Reply> replies)
    {
        final StringBuilder s = new StringBuilder();
        replies.forEach(r -> s.append(r.code()));
        return s.toString();
    }
}
