package dev.relay.it;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What arrives is what is spooled: pipelined commands, dot-stuffed lines in wire form, BDAT chunks, 8-bit octets,
 * 1 MiB and 20 MiB bodies byte-exact.
 */
@Timeout(60)
class InboundWireFormatTest
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

    @Test
    void pipelinedEnvelopeInOneWrite() throws Exception
    {
        final String id;
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.write("MAIL FROM:<p@client.test>\r\nRCPT TO:<r1@ours.test>\r\nRCPT TO:<r2@ours.test>\r\nDATA\r\n");
            final List<SmtpTestClient.Reply> replies = client.read(4);
            replies.get(0).expect(250, "2.1.0");
            replies.get(1).expect(250, "2.1.5");
            replies.get(2).expect(250, "2.1.5");
            replies.get(3).expect(354);
            // body, terminator and the next commands in one write too
            client.write("Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n");
            final List<SmtpTestClient.Reply> after = client.read(3);
            id = after.get(0).queueId();
            after.get(1).expect(250, "2.0.0");
            after.get(2).expect(221);
        }
        final SpoolContents.Stored stored = SpoolContents.find(relay.spoolDir(), id);
        assertEquals(List.of("r1@ours.test", "r2@ours.test"), stored.recipients());
        assertEquals("Subject: pipelined\r\n\r\nbody\r\n", stored.bodyText());
    }

    @Test
    void dotStuffedLinesStayInWireForm() throws Exception
    {
        final String body = "Subject: dots\r\n\r\n..x\r\n...\r\n..\r\n.. \r\nend.\r\n";
        final String id;
        try (SmtpTestClient client = relay.connectEhlo())
        {
            id = client.sendMessage("d@client.test", List.of("r@ours.test"), body.getBytes(StandardCharsets.US_ASCII));
        }
        assertEquals(body, SpoolContents.find(relay.spoolDir(), id).bodyText());
    }

    @Test
    void bdatChunksWithLast() throws Exception
    {
        final String chunk1 = "Subject: bdat\r\n\r\n";
        final String chunk2 = ".x raw, not stuffed\r\n";
        final String chunk3 = "last\r\n";
        final String id;
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<b@client.test>").expect(250);
            client.command("RCPT TO:<r@ours.test>").expect(250);
            client.write("BDAT " + chunk1.length() + "\r\n" + chunk1);
            assertEquals("250 2.0.0 " + chunk1.length() + " octets received", client.read().last());
            // a chunk and the LAST chunk pipelined in one write
            client.write("BDAT " + chunk2.length() + "\r\n" + chunk2 + "BDAT " + chunk3.length() + " LAST\r\n" + chunk3);
            assertEquals("250 2.0.0 " + chunk2.length() + " octets received", client.read().last());
            id = client.read().queueId();
            client.command("NOOP").expect(250);
        }
        assertEquals(chunk1 + chunk2 + chunk3, SpoolContents.find(relay.spoolDir(), id).bodyText());
    }

    @Test
    void eightBitBodyByteExact() throws Exception
    {
        final ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes("Subject: =?utf-8?q?8bit?=\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        body.writeBytes("Grüße, ½ € — ünïcödé\r\n".getBytes(StandardCharsets.UTF_8));
        for (int b = 0x80; b <= 0xFF; b++)
        {
            body.write(b);
            if (b % 32 == 31)
            {
                body.write('\r');
                body.write('\n');
            }
        }
        final byte[] wire = body.toByteArray();
        final String id;
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<e@client.test> BODY=8BITMIME").expect(250);
            client.command("RCPT TO:<r@ours.test>").expect(250);
            client.command("DATA").expect(354);
            client.write(wire);
            client.write(".\r\n");
            id = client.read().queueId();
        }
        assertArrayEquals(wire, SpoolContents.find(relay.spoolDir(), id).body());
    }

    @Test
    void oneMebibyteByteExact() throws Exception
    {
        final byte[] body = WireBodies.whole(1, (int)WireBodies.roundToLines(1024 * 1024));
        final String id;
        try (SmtpTestClient client = relay.connectEhlo())
        {
            id = client.sendMessage("big@client.test", List.of("r@ours.test"), body);
        }
        final SpoolContents.Stored stored = SpoolContents.find(relay.spoolDir(), id);
        assertEquals(body.length, stored.bodyBytes());
        assertEquals(WireBodies.sha256(body), stored.bodySha256());
        assertArrayEquals(body, stored.body());
    }

    @Test
    void twentyMebibytesStreamedByteExact() throws Exception
    {
        final long total = WireBodies.roundToLines(20L * 1024 * 1024);
        final WireBodies bodies = new WireBodies(20, total);
        final MessageDigest sent = SpoolContents.sha256();
        final byte[] chunk = new byte[(WireBodies.LINE_BYTES + 2) * 840]; // ~64 KiB, the only body buffer
        final String id;
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<huge@client.test> SIZE=" + total).expect(250);
            client.command("RCPT TO:<r@ours.test>").expect(250);
            client.command("DATA").expect(354);
            while (bodies.hasMore())
            {
                final int n = bodies.next(chunk);
                sent.update(chunk, 0, n);
                client.write(chunk, 0, n);
            }
            client.write(".\r\n");
            id = client.read().queueId();
        }
        final SpoolContents.Stored stored = SpoolContents.find(relay.spoolDir(), id);
        assertEquals(total, stored.bodyBytes());
        assertEquals(HexFormat.of().formatHex(sent.digest()), stored.bodySha256());
        assertTrue(stored.body() == null, "a 20 MiB body is compared by digest, not held");
    }
}
