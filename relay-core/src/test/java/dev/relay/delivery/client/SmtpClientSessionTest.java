package dev.relay.delivery.client;

import dev.relay.Relay;
import dev.relay.net.LoopDouble;
import dev.relay.smtp.DsnParameters;
import dev.relay.delivery.client.RecipientResult.Status;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class SmtpClientSessionTest
{
    private static final String PIPELINED_OK = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n";

    private static void assertResult(final RecipientResult result, final Status status, final String diagnostic)
    {
        assertEquals(status, result.status(), result.toString());
        assertEquals(diagnostic, result.diagnostic());
    }

    @Test
    void greetingEhloAndCapabilities()
    {
        final ClientDriver driver = new ClientDriver(ClientDriver.settings(), 4096);
        assertEquals(300_000, driver.server.idleTimeoutMs());
        assertEquals("EHLO relay.test\r\n", driver.peer("220-mx.test ESMTP\r\n220 welcome\r\n"));
        assertEquals("", driver.peer("250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n" +
            "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 chunking\r\n"));
        assertEquals(List.of("ready"), driver.events);
        final PeerCapabilities peer = driver.session.capabilities();
        assertTrue(peer.esmtp() && peer.pipelining() && peer.size() && peer.eightBitMime() && peer.smtpUtf8() &&
            peer.chunking());
        assertEquals(1000, peer.maxSize());
        assertTrue(driver.session.isIdle());
    }

    @Test
    void pipelinedHappyPathWritesTheEnvelopeInOneWrite()
    {
        final ClientDriver driver = ClientDriver.ready(64 * 1024, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y", "c@y");
        assertEquals("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n", driver.send(message));
        final List<Integer> writes = driver.server.writesPerFlush();
        assertEquals(List.of(1), writes.subList(writes.size() - 1, writes.size()));
        assertFalse(driver.session.isIdle());
        assertEquals("", driver.peer("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"));
        assertEquals(300_000, driver.server.idleTimeoutMs());
        assertEquals("", driver.peer("250 2.1.5 Ok\r\n"));
        assertEquals(120_000, driver.server.idleTimeoutMs());
        assertEquals(message.wire() + ".\r\n", driver.peer("354 go ahead\r\n"));
        assertEquals(600_000, driver.server.idleTimeoutMs());
        assertEquals("", driver.peer("250 2.0.0 Ok: queued as ABC\r\n"));
        assertEquals(List.of("ready", "done"), driver.events);
        final TransactionResult result = driver.lastResult();
        assertEquals(2, result.size());
        assertResult(result.get(0), Status.DELIVERED, "250 2.0.0 Ok: queued as ABC");
        assertResult(result.get(1), Status.DELIVERED, "250 2.0.0 Ok: queued as ABC");
        assertTrue(driver.session.isIdle());
        assertEquals(1, driver.session.transactionsDone());
        assertEquals(1, message.opened);
        assertEquals(1, message.closed);
        assertEquals(300_000, driver.server.idleTimeoutMs());

        // a clean end needs no RSET
        assertEquals("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", driver.send(TestMessage.to("b@y")));
    }

    @Test
    void mailParametersFollowTheOfferedExtensions()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING", "SIZE 1000000", "8BITMIME", "SMTPUTF8");
        final TestMessage message = TestMessage.to("b@y");
        message.eightBit = true;
        message.smtpUtf8 = true;
        final long size = message.header.length + message.body.length;
        assertEquals("MAIL FROM:<a@x> SIZE=" + size + " BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<b@y>\r\nDATA\r\n",
            driver.send(message));
    }

    /** RFC 3461 §5.2.1: the DSN parameters go to a peer that offers DSN, as they came; to any other, none. */
    @Test
    void dsnParametersGoOnlyToAPeerThatOffersDsn()
    {
        final TestMessage message = TestMessage.to("b@y", "c@y", "d@y");
        message.dsnRet = DsnParameters.RET_HDRS;
        message.envelopeId = TestMessage.ascii("QQ+2B314");
        message.notify = new int[] {DsnParameters.NOTIFY_SUCCESS | DsnParameters.NOTIFY_FAILURE, 0,
            DsnParameters.NOTIFY_NEVER};
        message.originalRecipients = new byte[][] {TestMessage.ascii("rfc822;b+2Bx@y"), null, null};

        final ClientDriver dsn = ClientDriver.ready(4096, "PIPELINING", "DSN");
        assertTrue(dsn.session.capabilities().dsn());
        assertEquals("MAIL FROM:<a@x> RET=HDRS ENVID=QQ+2B314\r\n" +
            "RCPT TO:<b@y> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@y\r\n" +
            "RCPT TO:<c@y>\r\n" +
            "RCPT TO:<d@y> NOTIFY=NEVER\r\n" +
            "DATA\r\n", dsn.send(message));

        final ClientDriver plain = ClientDriver.ready(4096, "PIPELINING");
        assertFalse(plain.session.capabilities().dsn());
        assertEquals("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nRCPT TO:<d@y>\r\nDATA\r\n",
            plain.send(message));

        message.dsnRet = DsnParameters.RET_FULL;
        message.envelopeId = null;
        message.notify = null;
        message.originalRecipients = null;
        final ClientDriver full = ClientDriver.ready(4096, "PIPELINING", "DSN");
        assertEquals("MAIL FROM:<a@x> RET=FULL\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nRCPT TO:<d@y>\r\nDATA\r\n",
            full.send(message));
    }

    @Test
    void nullSenderAndUtf8Recipient()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING", "SMTPUTF8");
        final TestMessage message = TestMessage.to("δ@y");
        message.reversePath = new byte[0];
        message.smtpUtf8 = true;
        assertEquals("MAIL FROM:<> SMTPUTF8\r\nRCPT TO:<\u00ce\u00b4@y>\r\nDATA\r\n", driver.send(message));
    }

    @Test
    void nonPipeliningPeerGetsOneCommandAtATime()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "8BITMIME");
        final TestMessage message = TestMessage.to("b@y", "c@y");
        assertEquals("MAIL FROM:<a@x>\r\n", driver.send(message));
        assertEquals("RCPT TO:<b@y>\r\n", driver.peer("250 ok\r\n"));
        assertEquals("RCPT TO:<c@y>\r\n", driver.peer("250 ok\r\n"));
        assertEquals("DATA\r\n", driver.peer("550 5.1.1 <c@y>: user unknown\r\n"));
        assertEquals(120_000, driver.server.idleTimeoutMs());
        assertEquals(message.wire() + ".\r\n", driver.peer("354 go\r\n"));
        assertEquals("", driver.peer("250 2.0.0 queued\r\n"));
        assertResult(driver.lastResult().get(0), Status.DELIVERED, "250 2.0.0 queued");
        assertResult(driver.lastResult().get(1), Status.FAILED, "550 5.1.1 <c@y>: user unknown");
    }

    @Test
    void heloFallbackWhenEhloIsRefused()
    {
        final ClientDriver driver = new ClientDriver(ClientDriver.settings(), 4096);
        assertEquals("EHLO relay.test\r\n", driver.peer("220 old.test\r\n"));
        assertEquals("HELO relay.test\r\n", driver.peer("502 5.5.2 command not recognized\r\n"));
        assertEquals("", driver.peer("250 old.test\r\n"));
        assertEquals(List.of("ready"), driver.events);
        final PeerCapabilities peer = driver.session.capabilities();
        assertFalse(peer.esmtp() || peer.pipelining() || peer.size() || peer.chunking());
        assertEquals("MAIL FROM:<a@x>\r\n", driver.send(TestMessage.to("b@y")));
    }

    @Test
    void refusedHeloAndGreetingEndTheSession()
    {
        final ClientDriver helo = new ClientDriver(ClientDriver.settings(), 4096);
        helo.peer("220 x\r\n");
        helo.peer("500 no\r\n");
        assertEquals("QUIT\r\n", helo.peer("550 5.7.1 go away\r\n"));
        assertEquals(List.of("closed: HELO refused: 550 5.7.1 go away"), helo.events);
        assertTrue(helo.closed());

        final ClientDriver greeting = new ClientDriver(ClientDriver.settings(), 4096);
        assertEquals("QUIT\r\n", greeting.peer("554 5.7.1 no service\r\n"));
        assertEquals(List.of("closed: greeting refused: 554 5.7.1 no service"), greeting.events);
    }

    @Test
    void mixedRecipientResults()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING", "ENHANCEDSTATUSCODES");
        final TestMessage message = TestMessage.to("b@y", "c@y", "d@y");
        driver.send(message);
        assertEquals(message.wire() + ".\r\n", driver.peer("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" +
            "450 4.2.0 <c@y>: mailbox busy\r\n550 5.1.1 user unknown\r\n354 go\r\n"));
        driver.peer("250 2.0.0 queued\r\n");
        final TransactionResult result = driver.lastResult();
        assertResult(result.get(0), Status.DELIVERED, "250 2.0.0 queued");
        assertResult(result.get(1), Status.DEFERRED, "450 4.2.0 <c@y>: mailbox busy");
        assertResult(result.get(2), Status.FAILED, "550 5.1.1 user unknown");
        assertEquals(550, result.get(2).replyCode());
        assertEquals("5.1.1", result.get(2).enhancedCode());
        assertEquals("user unknown", result.get(2).text());
        assertEquals(1, result.count(Status.DELIVERED));
    }

    @Test
    void noAcceptedRecipientPipelinedSendsNoBodyThenRset()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y", "c@y");
        driver.send(message);
        assertEquals("", driver.peer("250 ok\r\n550 5.1.1 no\r\n450 4.1.1 later\r\n554 5.5.1 no valid recipients\r\n"));
        assertEquals(0, message.opened);
        assertTrue(driver.session.isIdle());
        assertResult(driver.lastResult().get(0), Status.FAILED, "550 5.1.1 no");
        assertResult(driver.lastResult().get(1), Status.DEFERRED, "450 4.1.1 later");
        assertEquals("RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", driver.send(TestMessage.to("b@y")));
        final TestMessage next = TestMessage.to("b@y");
        assertEquals(message.wire() + ".\r\n", driver.peer("250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n"));
        driver.peer("250 ok\r\n");
        assertEquals(Status.DELIVERED, driver.lastResult().get(0).status());
        assertEquals(2, driver.session.transactionsDone());
    }

    @Test
    void noAcceptedRecipientNonPipelinedSendsNoData()
    {
        final ClientDriver driver = ClientDriver.ready(4096);
        driver.send(TestMessage.to("b@y"));
        assertEquals("RCPT TO:<b@y>\r\n", driver.peer("250 ok\r\n"));
        assertEquals("", driver.peer("550 5.1.1 no\r\n"));
        assertResult(driver.lastResult().get(0), Status.FAILED, "550 5.1.1 no");
        assertEquals("RSET\r\n", driver.send(TestMessage.to("b@y")));
        assertEquals("MAIL FROM:<a@x>\r\n", driver.peer("250 ok\r\n"));
    }

    @Test
    void mailRejectedGivesEveryRecipientItsReply()
    {
        final ClientDriver piped = ClientDriver.ready(4096, "PIPELINING");
        piped.send(TestMessage.to("b@y", "c@y"));
        piped.peer("452 4.3.1 insufficient storage\r\n503 need MAIL\r\n503 need MAIL\r\n503 need RCPT\r\n");
        assertResult(piped.lastResult().get(0), Status.DEFERRED, "452 4.3.1 insufficient storage");
        assertResult(piped.lastResult().get(1), Status.DEFERRED, "452 4.3.1 insufficient storage");
        assertTrue(piped.session.isIdle());

        final ClientDriver single = ClientDriver.ready(4096);
        single.send(TestMessage.to("b@y"));
        assertEquals("", single.peer("553 5.1.8 bad sender\r\n"));
        assertResult(single.lastResult().get(0), Status.FAILED, "553 5.1.8 bad sender");
    }

    @Test
    void finalReplyDefersOrFailsTheAcceptedRecipients()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        driver.send(TestMessage.to("b@y", "c@y", "d@y"));
        driver.peer("250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go\r\n");
        assertEquals("", driver.peer("451 4.3.0 try later\r\n"));
        assertResult(driver.lastResult().get(0), Status.DEFERRED, "451 4.3.0 try later");
        assertResult(driver.lastResult().get(1), Status.FAILED, "550 5.1.1 no such user");
        assertResult(driver.lastResult().get(2), Status.DEFERRED, "451 4.3.0 try later");

        assertTrue(driver.send(TestMessage.to("b@y")).startsWith("RSET\r\nMAIL FROM:<a@x>\r\n"));
        driver.peer("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        driver.peer("554 5.7.1 content rejected\r\n");
        assertResult(driver.lastResult().get(0), Status.FAILED, "554 5.7.1 content rejected");
        assertTrue(driver.session.isIdle());
    }

    @Test
    void dataRefusedAfterAcceptedRecipients()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y");
        driver.send(message);
        assertEquals("", driver.peer("250 ok\r\n250 ok\r\n451 4.3.2 not now\r\n"));
        assertEquals(0, message.opened);
        assertResult(driver.lastResult().get(0), Status.DEFERRED, "451 4.3.2 not now");
    }

    @Test
    void messageOverThePeerSizeFailsWithoutSending()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING", "SIZE 20");
        final TestMessage message = TestMessage.to("b@y", "c@y");
        assertEquals("", driver.send(message));
        assertEquals(List.of("ready", "done"), driver.events);
        final RecipientResult result = driver.lastResult().get(1);
        assertEquals(Status.FAILED, result.status());
        assertEquals(0, result.replyCode());
        assertEquals("5.3.4", result.enhancedCode());
        assertTrue(result.text().contains("exceeds size limit 20"), result.text());
        assertTrue(driver.session.isIdle());
        assertEquals(1, driver.session.transactionsDone());
        // nothing was sent, so no RSET either
        assertEquals("MAIL FROM:<a@x> SIZE=20\r\nRCPT TO:<b@y>\r\nDATA\r\n",
            driver.send(TestMessage.to("b@y").body("", true).withHeader("Received: 01234567\r\n")));
    }

    @Test
    void eightBitAndUtf8ContentToAPeerWithoutTheExtension()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        final TestMessage eightBit = TestMessage.to("b@y");
        eightBit.eightBit = true;
        assertEquals("", driver.send(eightBit));
        assertEquals(Status.FAILED, driver.lastResult().get(0).status());
        assertEquals("5.6.3", driver.lastResult().get(0).enhancedCode());

        final TestMessage utf8 = TestMessage.to("b@y");
        utf8.smtpUtf8 = true;
        assertEquals("", driver.send(utf8));
        assertEquals("5.6.7", driver.lastResult().get(0).enhancedCode());
        assertEquals(Status.FAILED, driver.lastResult().get(0).status());
        assertEquals(0, eightBit.opened + utf8.opened);
    }

    @Test
    void rawBodyGoesAsBdatWhenThePeerOffersChunking()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING", "CHUNKING");
        final TestMessage message = TestMessage.to("b@y", "c@y").body("line\r\n.dot\r\nno end", false);
        assertEquals("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\n", driver.send(message));
        final int size = message.header.length + message.body.length;
        assertEquals("BDAT " + size + " LAST\r\n" + message.wire(), driver.peer("250 ok\r\n250 ok\r\n550 no\r\n"));
        assertEquals(600_000, driver.server.idleTimeoutMs());
        driver.peer("250 2.0.0 ok\r\n");
        assertResult(driver.lastResult().get(0), Status.DELIVERED, "250 2.0.0 ok");
        assertResult(driver.lastResult().get(1), Status.FAILED, "550 no");
        assertEquals(1, message.closed);
    }

    @Test
    void bdatIsNotSentWithoutAnAcceptedRecipient()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING", "CHUNKING");
        final TestMessage message = TestMessage.to("b@y").body("x\r\n", false);
        driver.send(message);
        assertEquals("", driver.peer("250 ok\r\n550 no\r\n"));
        assertEquals(0, message.opened);
        assertTrue(driver.session.isIdle());
    }

    @Test
    void rawBodyIsStuffedOnTheFlyWithoutChunking()
    {
        final String raw = ".a\r\nb\r\n..c\r\n.\r\nbare\n.lf\r\n.";
        final String expected = "..a\r\nb\r\n...c\r\n..\r\nbare\r\n..lf\r\n..\r\n.\r\n";
        for (int part = 1; part <= raw.length(); part++)
        {
            final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
            final TestMessage message = TestMessage.to("b@y").body(raw, false);
            message.partBytes = part;
            driver.send(message);
            assertEquals(new String(message.header, java.nio.charset.StandardCharsets.ISO_8859_1) + expected,
                driver.peer("250 ok\r\n250 ok\r\n354 go\r\n"), "parts of " + part);
        }
    }

    @Test
    void bodyStreamsThroughATinyOutputBuffer()
    {
        final StringBuilder body = new StringBuilder();
        for (int i = 0; i < 40; i++)
        {
            body.append("..line ").append(i).append("\r\n");
        }
        final ClientDriver driver = ClientDriver.ready(16, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y", "c@y").body(body.toString(), true);
        message.partBytes = 7;
        assertEquals("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n", driver.send(message));
        final int before = driver.server.writesPerFlush().size();
        assertEquals(message.wire() + ".\r\n", driver.peer(PIPELINED_OK));
        final int passes = driver.server.writesPerFlush().size() - before;
        assertTrue(passes >= (message.wire().length() + 3) / 16, "passes " + passes);
        assertEquals(600_000, driver.server.idleTimeoutMs());
        driver.peer("250 ok\r\n");
        assertEquals(2, driver.lastResult().count(Status.DELIVERED));
    }

    @Test
    void aBodyOfSeveralOutputBuffersGoesOutWhole()
    {
        // what the hand-played loop once hid: nothing over one output buffer left the relay
        final ClientDriver driver = ClientDriver.ready(Relay.DELIVERY_WRITE_BUFFER_BYTES, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y").body(("0123456789".repeat(7) + "\r\n").repeat(5000), true);
        driver.send(message);
        final String out = driver.peer("250 ok\r\n250 ok\r\n354 go\r\n");
        assertTrue(out.length() > 5 * Relay.DELIVERY_WRITE_BUFFER_BYTES, "sent " + out.length());
        assertEquals(message.wire() + ".\r\n", out);
        driver.peer("250 2.0.0 ok\r\n");
        assertResult(driver.lastResult().get(0), Status.DELIVERED, "250 2.0.0 ok");
    }

    @Test
    void rawBodyStuffedThroughATinyOutputBuffer()
    {
        final ClientDriver driver = ClientDriver.ready(5, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y").body("..\n..\n.", false);
        driver.send(message);
        assertEquals(new String(message.header, java.nio.charset.StandardCharsets.ISO_8859_1) +
            "...\r\n...\r\n..\r\n.\r\n", driver.peer("250 ok\r\n250 ok\r\n354 go\r\n"));
    }

    @Test
    void earlyReplyDuringTheBodyEndsTheTransactionAndTheSession()
    {
        final ClientDriver driver = ClientDriver.ready(16, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y").body("x".repeat(100) + "\r\n", true);
        driver.stuckInBody(message, "250 ok\r\n250 ok\r\n354 go\r\n");
        // the peer gives up early: its reply, read while the body is stuck, decides at once; the rest is not sent
        driver.peer("554 5.3.4 too big\r\n");
        driver.server.startReading().window(LoopDouble.DEFAULT_WINDOW_BYTES);
        assertEquals("", driver.peer(""));
        assertTrue(driver.closed(), "closed at once, not once the peer reads");
        assertResult(driver.lastResult().get(0), Status.FAILED, "554 5.3.4 too big");
        assertFalse(driver.lastResult().sessionBroke(), "the server's reply ended it: not a hop failure");
        assertTrue(driver.session.isClosed());
        assertTrue(driver.closedReason.contains("554 before the end of the message body"), driver.closedReason);
        assertEquals(1, message.closed);
    }

    @Test
    void earlyTemporaryReplyDuringTheBodyDefers()
    {
        final ClientDriver driver = ClientDriver.ready(16, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y").body("x".repeat(100) + "\r\n", true);
        driver.stuckInBody(message, "250 ok\r\n250 ok\r\n354 go\r\n");
        driver.peer("452 4.3.1 insufficient system storage\r\n");
        assertResult(driver.lastResult().get(0), Status.DEFERRED, "452 4.3.1 insufficient system storage");
        assertTrue(driver.session.isClosed());
    }

    @Test
    void successReplyBeforeTheEndOfTheBodyIsAProtocolError()
    {
        final ClientDriver driver = ClientDriver.ready(16, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y").body("x".repeat(100) + "\r\n", true);
        driver.stuckInBody(message, "250 ok\r\n250 ok\r\n354 go\r\n");
        driver.peer("250 2.0.0 queued\r\n");
        assertEquals(Status.DEFERRED, driver.lastResult().get(0).status());
        assertTrue(driver.closedReason.startsWith("protocol error: reply 250 before the end"), driver.closedReason);
    }

    @Test
    void peer421MidTransactionDefersAndCloses()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y", "c@y", "d@y");
        driver.send(message);
        assertEquals("", driver.peer("250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n421 4.3.2 shutting down\r\n"));
        assertEquals(List.of("ready", "done", "closed: peer closing: 421 4.3.2 shutting down"), driver.events);
        assertResult(driver.lastResult().get(0), Status.DEFERRED, "421 4.3.2 shutting down");
        assertResult(driver.lastResult().get(1), Status.FAILED, "550 5.1.1 unknown");
        assertResult(driver.lastResult().get(2), Status.DEFERRED, "421 4.3.2 shutting down");
        assertTrue(driver.server.isClosing());
        assertTrue(driver.closed());
        assertFalse(driver.session.send(TestMessage.to("b@y")));
    }

    @Test
    void peer421AfterTheDot()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        driver.send(TestMessage.to("b@y"));
        driver.peer("250 ok\r\n250 ok\r\n354 go\r\n");
        driver.peer("421 4.4.2 timeout\r\n");
        assertResult(driver.lastResult().get(0), Status.DEFERRED, "421 4.4.2 timeout");
        assertEquals("peer closing: 421 4.4.2 timeout", driver.closedReason);
    }

    @Test
    void garbageReplyIsAProtocolError()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        driver.send(TestMessage.to("b@y"));
        assertEquals("", driver.peer("250 ok\r\nHTTP/1.1 400 Bad Request\r\n"));
        assertEquals("protocol error: malformed reply", driver.closedReason);
        final RecipientResult result = driver.lastResult().get(0);
        assertEquals(Status.DEFERRED, result.status());
        assertEquals("4.5.0", result.enhancedCode());
        assertTrue(driver.server.isClosing());
    }

    @Test
    void oneMebibyteReplyLineIsAProtocolError()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        driver.send(TestMessage.to("b@y"));
        final byte[] line = TestMessage.ascii("250-" + "z".repeat(1024 * 1024) + "\r\n");
        driver.peer(line);
        assertEquals("protocol error: reply line too long", driver.closedReason);
        assertEquals(Status.DEFERRED, driver.lastResult().get(0).status());
    }

    @Test
    void unsolicitedReplyWhileIdleIsAProtocolError()
    {
        final ClientDriver driver = ClientDriver.ready(4096);
        driver.peer("250 surprise\r\n");
        assertEquals("protocol error: unexpected reply 250 while idle", driver.closedReason);
        assertEquals(List.of("ready", "closed: protocol error: unexpected reply 250 while idle"), driver.events);
    }

    @Test
    void timeoutsPerPhase()
    {
        final ClientDriver greeting = new ClientDriver(ClientDriver.settings(), 4096);
        assertEquals("", greeting.timeout());
        assertEquals("timeout waiting for the greeting", greeting.closedReason);
        assertTrue(greeting.server.isClosing());

        final ClientDriver data = ClientDriver.ready(4096);
        data.send(TestMessage.to("b@y"));
        data.peer("250 ok\r\n");
        assertEquals(300_000, data.server.idleTimeoutMs());
        data.peer("250 ok\r\n");
        assertEquals(120_000, data.server.idleTimeoutMs());
        data.timeout();
        assertEquals("timeout after DATA", data.closedReason);
        assertResult(data.lastResult().get(0), Status.DEFERRED, "4.4.2 timeout after DATA");

        final ClientDriver done = ClientDriver.ready(4096, "PIPELINING");
        done.send(TestMessage.to("b@y"));
        done.peer("250 ok\r\n250 ok\r\n354 go\r\n");
        assertEquals(600_000, done.server.idleTimeoutMs());
        assertEquals("", done.timeout());
        assertEquals(List.of("ready", "done", "closed: timeout after end of data"), done.events);
        assertEquals(Status.DEFERRED, done.lastResult().get(0).status());

        final ClientDriver idle = ClientDriver.ready(4096);
        assertEquals("QUIT\r\n", idle.timeout());
        assertEquals("idle timeout", idle.closedReason);
    }

    @Test
    void bodyTimeoutIsTheDataBlockTimeout()
    {
        final ClientDriver driver = ClientDriver.ready(16, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y").body("y".repeat(200) + "\r\n", true);
        driver.stuckInBody(message, "250 ok\r\n250 ok\r\n354 go\r\n");
        assertEquals(180_000, driver.server.idleTimeoutMs());
        final long stuckAtMs = driver.loop.nowMs();
        driver.timeout();
        assertEquals(180_000, driver.loop.nowMs() - stuckAtMs, "no write moved bytes: the timeout ran from the stall");
        assertEquals("timeout while sending the message body", driver.closedReason);
        assertEquals(Status.DEFERRED, driver.lastResult().get(0).status());
        assertEquals(1, message.closed);
    }

    @Test
    void connectionLostMidTransaction()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        driver.send(TestMessage.to("b@y", "c@y"));
        driver.peer("250 ok\r\n250 ok\r\n550 no\r\n");
        driver.lose();
        assertEquals(List.of("ready", "done", "closed: connection lost after DATA"), driver.events);
        assertResult(driver.lastResult().get(0), Status.DEFERRED, "4.4.2 connection lost after DATA");
        assertResult(driver.lastResult().get(1), Status.FAILED, "550 no");
    }

    @Test
    void quitWhenIdle()
    {
        final ClientDriver driver = ClientDriver.ready(4096);
        assertEquals("QUIT\r\n", driver.onLoop(() -> driver.session.quit()));
        assertEquals(List.of("ready", "closed: quit"), driver.events);
        assertTrue(driver.closed());
        assertFalse(driver.session.send(TestMessage.to("b@y")));
    }

    @Test
    void drainQuitsAfterTheTransactionInFlight()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        driver.send(TestMessage.to("b@y"));
        assertEquals("", driver.drain());
        driver.peer("250 ok\r\n250 ok\r\n354 go\r\n");
        assertEquals("QUIT\r\n", driver.peer("250 ok\r\n"));
        assertEquals(List.of("ready", "done", "closed: server draining"), driver.events);
        assertEquals(Status.DELIVERED, driver.lastResult().get(0).status());
    }

    @Test
    void listenerMaySendFromTheCallback()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
        driver.send(TestMessage.to("b@y"));
        driver.peer("250 ok\r\n250 ok\r\n354 go\r\n");
        assertFalse(driver.session.send(TestMessage.to("c@y")));
        driver.peer("250 ok\r\n");
        assertEquals("MAIL FROM:<a@x>\r\nRCPT TO:<c@y>\r\nDATA\r\n", driver.send(TestMessage.to("c@y")));
    }

    @Test
    void endOfDataAddsCrlfOnlyWhenTheBodyLacksIt()
    {
        final String[][] cases = {{"a\r\n", ".\r\n"}, {"a", "\r\n.\r\n"}, {"a\r", "\r\n.\r\n"}, {"", ".\r\n"},
            {"\n", "\r\n.\r\n"}};
        for (final String[] c : cases)
        {
            for (int part = 1; part <= 3; part++)
            {
                final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING");
                final TestMessage message = TestMessage.to("b@y").body(c[0], true);
                message.partBytes = part;
                driver.send(message);
                assertEquals(message.wire() + c[1], driver.peer("250 ok\r\n250 ok\r\n354 go\r\n"), c[0]);
            }
        }
    }

    @Test
    void bdatBodyShorterThanItsSizeDropsTheConnection()
    {
        final ClientDriver driver = ClientDriver.ready(4096, "PIPELINING", "CHUNKING");
        final TestMessage liar = TestMessage.to("b@y").body("abc", false);
        liar.partBytes = 1;
        driver.send(new ShortMessage(liar));
        driver.peer("250 ok\r\n250 ok\r\n");
        assertEquals("stored body shorter than its size", driver.closedReason);
        assertEquals(Status.DEFERRED, driver.lastResult().get(0).status());
        assertEquals(1, liar.closed);
        assertTrue(driver.server.isClosing());
    }

    /** Claims one byte more than its body has. */
    private record ShortMessage(TestMessage inner) implements OutboundMessage
    {
        public byte[] reversePath()
        {
            return inner.reversePath();
        }

        public int recipientCount()
        {
            return inner.recipientCount();
        }

        public byte[] recipient(final int index)
        {
            return inner.recipient(index);
        }

        public byte[] receivedHeader()
        {
            return inner.receivedHeader();
        }

        public long bodySize()
        {
            return inner.bodySize() + 1;
        }

        public boolean isDotStuffed()
        {
            return false;
        }

        public boolean isEightBit()
        {
            return false;
        }

        public boolean needsSmtpUtf8()
        {
            return false;
        }

        public BodySource openBody()
        {
            return inner.openBody();
        }
    }
}
