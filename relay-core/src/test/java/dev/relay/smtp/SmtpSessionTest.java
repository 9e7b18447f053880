package dev.relay.smtp;

import dev.relay.Relay;
import dev.relay.config.NetworkList;
import dev.relay.config.RelayPolicy;
import dev.relay.config.SmtpServerSettings;
import dev.relay.net.LoopDouble;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class SmtpSessionTest
{
    private static final String ENVELOPE = "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n";

    @Test
    void greetsAndAdvertisesExtensions()
    {
        final SessionDriver driver = SessionDriver.local();
        assertEquals("220 relay.test ESMTP relay\r\n", driver.output());
        final String ehlo = driver.send("EHLO client.test\r\n");
        assertEquals("250-relay.test\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n" +
            "250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n", ehlo);
    }

    @Test
    void dsnParametersAreKeptWithTheEnvelopeAndBadOnesRefused()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        driver.send("EHLO client.test\r\n");
        assertEquals("501 5.5.4 Error: bad MAIL/RCPT parameter value\r\n",
            driver.send("MAIL FROM:<a@x.test> RET=FULL RET=HDRS\r\n"));
        assertEquals("555 5.5.4 Error: unsupported MAIL/RCPT parameter\r\n",
            driver.send("MAIL FROM:<a@x.test> NOTIFY=NEVER\r\n"));
        assertEquals("250 2.1.0 Ok\r\n", driver.send("MAIL FROM:<a@x.test> RET=HDRS ENVID=id+2B1\r\n"));
        assertEquals("501 5.5.4 Error: bad MAIL/RCPT parameter value\r\n",
            driver.send("RCPT TO:<b@y.test> NOTIFY=NEVER,DELAY\r\n"));
        assertEquals("501 5.5.4 Error: bad MAIL/RCPT parameter value\r\n",
            driver.send("RCPT TO:<b@y.test> ORCPT=rfc822;b+0A@y.test\r\n"));
        assertEquals("555 5.5.4 Error: unsupported MAIL/RCPT parameter\r\n",
            driver.send("RCPT TO:<b@y.test> RET=FULL\r\n"));
        assertEquals("250 2.1.5 Ok\r\n",
            driver.send("RCPT TO:<b@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;B@y.test\r\n"));
        assertEquals("250 2.1.5 Ok\r\n", driver.send("RCPT TO:<c@y.test>\r\n"));
        assertEquals("250 2.1.5 Ok\r\n", driver.send("RCPT TO:<d@y.test> NOTIFY=never\r\n"));
        driver.send("DATA\r\n");
        assertTrue(driver.send("Subject: dsn\r\n\r\nhi\r\n.\r\n").startsWith("250 2.0.0 Ok: queued as "));
        driver.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<e@y.test>\r\nDATA\r\n");
        assertTrue(driver.send("Subject: plain\r\n\r\nhi\r\n.\r\n").startsWith("250 2.0.0 Ok: queued as "));

        assertEquals(2, driver.sink.committed.size());
        final MemorySink.Stored stored = driver.sink.committed.get(0);
        assertEquals(List.of("b@y.test", "c@y.test", "d@y.test"), stored.recipients);
        assertEquals(DsnParameters.RET_HDRS + " id+2B1", stored.mailDsn);
        assertEquals(List.of("3 rfc822;B@y.test", "0 null", "8 null"), stored.rcptDsn);
        final MemorySink.Stored plain = driver.sink.committed.get(1);
        assertEquals("0 null", plain.mailDsn, "the next transaction starts without them");
        assertEquals(List.of("0 null"), plain.rcptDsn);
    }

    @Test
    void fullTransactionStoresWireFormBody()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        assertTrue(driver.send("EHLO client.test\r\n").startsWith("250-"));
        assertEquals("250 2.1.0 Ok\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
        assertEquals("250 2.1.5 Ok\r\n", driver.send("RCPT TO:<b@y.test>\r\n"));
        assertEquals("354 End data with <CR><LF>.<CR><LF>\r\n", driver.send("DATA\r\n"));
        final String reply = driver.send("Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n");
        assertTrue(reply.startsWith("250 2.0.0 Ok: queued as "), reply);
        assertEquals(1, driver.sink.committed.size());
        final MemorySink.Stored stored = driver.sink.committed.get(0);
        assertEquals("Subject: hi\r\n\r\n..dot\r\nbody\r\n", new String(stored.body, StandardCharsets.US_ASCII));
        assertEquals("a@x.test", stored.reversePath);
        assertEquals("b@y.test", stored.recipients.get(0));
        assertTrue(reply.contains(stored.queueId));
        final String received = new String(stored.receivedHeader, StandardCharsets.US_ASCII);
        assertTrue(received.startsWith("Received: from client.test ([127.0.0.1])\r\n\tby relay.test (relay) with ESMTP id " +
            stored.queueId + "\r\n\tfor <b@y.test>; "), received);
        assertEquals("221 2.0.0 Bye\r\n", driver.send("QUIT\r\n"));
        assertTrue(driver.client.isClosing());
    }

    @Test
    void pipelinedCommandsAnsweredTogetherInOrder()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        driver.send("EHLO client.test\r\n");
        final String replies = driver.send(
            "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n");
        final String[] lines = replies.split("\r\n");
        assertEquals("250 2.1.0 Ok", lines[0]);
        assertEquals("250 2.1.5 Ok", lines[1]);
        assertEquals("250 2.1.5 Ok", lines[2]);
        assertEquals("354 End data with <CR><LF>.<CR><LF>", lines[3]);
        assertTrue(lines[4].startsWith("250 2.0.0 Ok: queued as "));
        assertEquals("221 2.0.0 Bye", lines[5]);
        assertEquals(2, driver.sink.committed.get(0).recipients.size());
    }

    @Test
    void commandsAfterDataWaitForTheCommit()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        driver.send(ENVELOPE + "DATA\r\n");
        // The sink commits in a later step of the pass: QUIT must not be answered before the 250.
        driver.output();
        final String replies = driver.send("x\r\n.\r\nQUIT\r\n");
        assertTrue(replies.indexOf("250 2.0.0 Ok: queued") < replies.indexOf("221"), replies);
    }

    @Test
    void wrongOrderIs503()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        assertEquals("503 5.5.1 Error: send HELO/EHLO first\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
        driver.send("HELO client.test\r\n");
        assertEquals("503 5.5.1 Error: need MAIL command\r\n", driver.send("RCPT TO:<b@y.test>\r\n"));
        assertEquals("503 5.5.1 Error: need MAIL command\r\n", driver.send("DATA\r\n"));
        driver.send("MAIL FROM:<a@x.test>\r\n");
        assertEquals("503 5.5.1 Error: nested MAIL command\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
        assertEquals("503 5.5.1 Error: need RCPT command\r\n", driver.send("DATA\r\n"));
    }

    @Test
    void syntaxAndUnknownCommands()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        assertEquals("501 5.5.4 Syntax: EHLO hostname\r\n", driver.send("EHLO\r\n"));
        assertEquals("500 5.5.1 Error: command not recognized\r\n", driver.send("FOO bar\r\n"));
        driver.send("EHLO c\r\n");
        assertEquals("501 5.5.4 Syntax: MAIL FROM:<address>\r\n", driver.send("MAIL <a@x.test>\r\n"));
        assertTrue(driver.send("MAIL FROM:<a@@x>\r\n").startsWith("501 5.1.7"));
        assertTrue(driver.send("MAIL FROM:<a@x.test> FOO=1\r\n").startsWith("555 5.5.4"));
        assertEquals("250 2.0.0 Ok\r\n", driver.send("NOOP\r\n"));
        assertTrue(driver.send("VRFY x\r\n").startsWith("252 2.5.2"));
        assertTrue(driver.send("HELP\r\n").startsWith("214 2.0.0"));
        assertTrue(driver.send("RSET\r\n").startsWith("250 2.0.0"));
    }

    @Test
    void overlongCommandIsRefusedNeverExecuted()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        driver.send("EHLO c\r\n");
        final String longLine = "MAIL FROM:<" + "a".repeat(600) + "@x.test>\r\n";
        assertEquals("500 5.5.6 Error: command line too long\r\n", driver.send(longLine));
        // the next command works: nothing of the long line was executed
        assertEquals("250 2.1.0 Ok\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
    }

    @Test
    void bareLfAndCrAndNulInCommandsAreRefused()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        assertTrue(driver.send("EHLO c\n").startsWith("500 5.5.2"));
        assertTrue(driver.send("EHLO c\rx\r\n").startsWith("500 5.5.2"));
        assertTrue(driver.send("EHLO c\0x\r\n").startsWith("500 5.5.2"));
        assertTrue(driver.send("EHLO c\r\n").startsWith("250-"));
    }

    @Test
    void tooManyRecipientsIs452()
    {
        final SessionDriver driver = new SessionDriver(
            SmtpServerSettings.defaults("relay.test").withMaxRecipients(2), "127.0.0.1");
        driver.output();
        driver.send("EHLO c\r\nMAIL FROM:<a@x.test>\r\n");
        assertEquals("250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n452 4.5.3 Error: too many recipients\r\n",
            driver.send("RCPT TO:<1@y.test>\r\nRCPT TO:<2@y.test>\r\nRCPT TO:<3@y.test>\r\n"));
    }

    @Test
    void declaredSizeOverLimitIs552()
    {
        final SessionDriver driver = new SessionDriver(
            SmtpServerSettings.defaults("relay.test").withMaxMessageSize(100), "127.0.0.1");
        driver.output();
        driver.send("EHLO c\r\n");
        assertTrue(driver.send("MAIL FROM:<a@x.test> SIZE=101\r\n").startsWith("552 5.3.4"));
        assertEquals("250 2.1.0 Ok\r\n", driver.send("MAIL FROM:<a@x.test> SIZE=100\r\n"));
    }

    @Test
    void bodyGrowingOverLimitIs552AfterTheTerminatorAndSessionGoesOn()
    {
        final SessionDriver driver = new SessionDriver(
            SmtpServerSettings.defaults("relay.test").withMaxMessageSize(100), "127.0.0.1");
        driver.output();
        driver.send(ENVELOPE + "DATA\r\n");
        driver.output();
        assertEquals("", driver.send(("x".repeat(70) + "\r\n").repeat(3)));
        assertTrue(driver.send(".\r\n").startsWith("552 5.3.4"));
        assertEquals(0, driver.sink.committed.size());
        assertFalse(driver.sink.isOpen());
        assertEquals("250 2.1.0 Ok\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
    }

    @Test
    void relayDeniedForOutsideClientsUnlessDomainIsOurs()
    {
        final SmtpServerSettings settings = SmtpServerSettings.defaults("relay.test")
            .withRelay(new RelayPolicy(new NetworkList(List.of()), Set.of("ours.test")));
        final SessionDriver driver = new SessionDriver(settings, "192.0.2.7");
        driver.output();
        driver.send("EHLO c\r\nMAIL FROM:<a@x.test>\r\n");
        assertEquals("554 5.7.1 Relay access denied\r\n", driver.send("RCPT TO:<b@elsewhere.test>\r\n"));
        assertEquals("250 2.1.5 Ok\r\n", driver.send("RCPT TO:<b@OURS.test>\r\n"));
    }

    @Test
    void tooManyErrorsDisconnects()
    {
        final SessionDriver driver = new SessionDriver(
            SmtpServerSettings.defaults("relay.test").withMaxErrors(3), "127.0.0.1");
        driver.output();
        driver.send("X\r\nY\r\n");
        assertFalse(driver.client.isClosing());
        final String last = driver.send("Z\r\n");
        assertTrue(last.endsWith("421 4.7.0 relay.test Error: too many errors\r\n"), last);
        assertTrue(driver.client.isClosing());
    }

    @Test
    void smugglingVariantsNeverEndData()
    {
        for (final String smuggled : new String[] {"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r"})
        {
            final SessionDriver driver = SessionDriver.local();
            driver.output();
            driver.send(ENVELOPE + "DATA\r\n");
            driver.output();
            final String replies = driver.send("Subject: x\r\n\r\nhi" + smuggled +
                "MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@y.test>\r\nDATA\r\nevil\r\n.\r\n");
            assertTrue(replies.startsWith("550 5.6.0"), smuggled.replace("\r", "CR").replace("\n", "LF") + ": " +
                replies);
            assertEquals(0, driver.sink.committed.size());
            assertEquals("250 2.1.0 Ok\r\n", driver.send("MAIL FROM:<a@x.test>\r\n"));
        }
    }

    @Test
    void tooManyHopsIs554()
    {
        final SessionDriver driver = new SessionDriver(
            SmtpServerSettings.defaults("relay.test").withMaxHops(2), "127.0.0.1");
        driver.output();
        driver.send(ENVELOPE + "DATA\r\n");
        driver.output();
        assertTrue(driver.send("Received: a\r\nreceived: b\r\nRECEIVED: c\r\n\r\nx\r\n.\r\n")
            .startsWith("554 5.4.6"));
        driver.send(ENVELOPE.substring(ENVELOPE.indexOf("MAIL")) + "DATA\r\n");
        driver.output();
        assertTrue(driver.send("Received: a\r\nreceived: b\r\n\r\nReceived: in body\r\n.\r\n")
            .startsWith("250 2.0.0"));
    }

    @Test
    void bdatChunksAndLast()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        driver.send(ENVELOPE);
        driver.output();
        final String replies = driver.send("BDAT 7\r\nhello\r\nBDAT 5 LAST\r\nabc\r\n");
        final String[] lines = replies.split("\r\n");
        assertEquals("250 2.0.0 7 octets received", lines[0]);
        assertTrue(lines[1].startsWith("250 2.0.0 Ok: queued as "), replies);
        final MemorySink.Stored stored = driver.sink.committed.get(0);
        assertEquals("hello\r\nabc\r\n", new String(stored.body, StandardCharsets.US_ASCII));
        assertTrue((stored.flags & InboundMessage.FLAG_BDAT) != 0);
    }

    @Test
    void bdatWithoutRecipientsDiscardsTheChunk()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        driver.send("EHLO c\r\nMAIL FROM:<a@x.test>\r\n");
        driver.output();
        assertEquals("503 5.5.1 Error: need RCPT command\r\n250 2.0.0 Ok\r\n",
            driver.send("BDAT 6\r\nNOOP\r\nNOOP\r\n"));
    }

    @Test
    void bdatWithBareLfIsRefused()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        driver.send(ENVELOPE);
        driver.output();
        assertTrue(driver.send("BDAT 9 LAST\r\nhi\n.\nbye\r\n").startsWith("550 5.6.0"));
        assertEquals(0, driver.sink.committed.size());
    }

    @Test
    void storageRefusalIs452()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        driver.sink.refuseBegin = true;
        driver.send(ENVELOPE);
        driver.output();
        assertEquals("452 4.3.1 Insufficient system storage\r\n", driver.send("DATA\r\n"));
        driver.sink.refuseBegin = false;
        driver.sink.refuseAppend = true;
        driver.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
        driver.output();
        assertTrue(driver.send("body\r\n.\r\n").startsWith("452 4.3.1"));
        assertEquals(0, driver.sink.committed.size());
    }

    @Test
    void disconnectMidDataLeavesNothing()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        driver.send(ENVELOPE + "DATA\r\nSubject: half\r\n");
        driver.close();
        assertFalse(driver.sink.isOpen());
        assertEquals(1, driver.sink.aborted);
        assertEquals(0, driver.sink.committed.size());
    }

    @Test
    void drainAnswers421WhenIdleAndAfterTheMessageWhenInData()
    {
        final SessionDriver idle = SessionDriver.local();
        idle.output();
        assertTrue(idle.drain().startsWith("421 4.3.2"));
        assertTrue(idle.client.isClosing());

        final SessionDriver busy = SessionDriver.local();
        busy.output();
        busy.send(ENVELOPE + "DATA\r\n");
        busy.output();
        assertEquals("", busy.drain());
        assertFalse(busy.client.isClosing());
        final String replies = busy.send("x\r\n.\r\n");
        assertTrue(replies.startsWith("250 2.0.0 Ok: queued"), replies);
        assertTrue(replies.contains("421 4.3.2"), replies);
        assertTrue(busy.client.isClosing());
    }

    @Test
    void timeoutSends421()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        assertEquals("421 4.4.2 relay.test Error: timeout exceeded\r\n", driver.timeout());
        assertTrue(driver.client.isClosing());
    }

    @Test
    void outputBackPressureStopsConsumingCommands()
    {
        // a 2 KiB output buffer: a command is taken only while a whole reply (1 KiB at most) still fits
        final SessionDriver driver = new SessionDriver(SmtpServerSettings.defaults("relay.test"), "127.0.0.1",
            new LoopDouble(SessionDriver.READ_BUFFER_BYTES, 2048));
        driver.output();
        // a client that does not read its replies: its socket buffers are full
        driver.client.window(0);
        driver.send("NOOP\r\n".repeat(100));
        // 74 replies of 14 bytes leave 1012 < 1024 bytes: the 75th command waits, and the loop reads no more
        assertEquals(26 * 6, driver.buffered());
        assertTrue(driver.client.isOutputPending());
        driver.client.window(LoopDouble.DEFAULT_WINDOW_BYTES);
        assertEquals("250 2.0.0 Ok\r\n".repeat(100), driver.output());
        assertEquals(0, driver.buffered());
    }

    @Test
    void eightBitBodyIsKeptAndFlagged()
    {
        final SessionDriver driver = SessionDriver.local();
        driver.output();
        driver.send("EHLO c\r\nMAIL FROM:<a@x.test> BODY=8BITMIME\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
        final byte[] body = "caf\u00e9 \u00fc\r\n".getBytes(StandardCharsets.ISO_8859_1);
        driver.send(body);
        driver.send(".\r\n");
        final MemorySink.Stored stored = driver.sink.committed.get(0);
        assertEquals(new String(body, StandardCharsets.ISO_8859_1), new String(stored.body, StandardCharsets.ISO_8859_1));
        assertTrue((stored.flags & InboundMessage.FLAG_8BITMIME) != 0);
        assertTrue((stored.flags & InboundMessage.FLAG_8BIT_CONTENT) != 0);
    }

    @Test
    void errorsPastTheSoftLimitAreTarpitted()
    {
        final SessionDriver driver = new SessionDriver(new MemorySink(), sink -> new SessionContext(
            SmtpServerSettings.defaults("relay.test"), sink, 0, SessionEvents.NONE).tarpit(2, 750), "192.0.2.9",
            new LoopDouble(SessionDriver.READ_BUFFER_BYTES, Relay.WRITE_BUFFER_BYTES));
        driver.output();
        final String replies = driver.send("X\r\nY\r\nZ\r\nNOOP\r\n");
        assertEquals(3, replies.split("\r\n").length);
        assertTrue(driver.client.isInputPaused());
        assertEquals(6, driver.buffered(), "input after the third error waits for the tarpit delay");
        driver.loop.advance(749);
        assertEquals("", driver.output());
        driver.loop.advance(1);
        assertEquals("250 2.0.0 Ok\r\n", driver.output());
        assertFalse(driver.client.isInputPaused());
    }
}
