package dev.relay.e2e;

import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DSN requests (RFC 3461) end to end: what the sender asked for is passed on to a next hop that offers DSN, and
 * acted on by the relay when it does not: NOTIFY=NEVER (or without FAILURE) bounces without a DSN, NOTIFY=SUCCESS
 * gets a "relayed" DSN, NOTIFY without DELAY gets no delay warning, ENVID and ORCPT come back in the DSN, and the
 * DSN holds the headers only. The sender's domain {@code client.test} routes to its own sink, where DSNs arrive.
 */
@Timeout(60)
class DeliveryDsnTest extends RelayWithSenderSink
{
    private static final List<String> WITH_DSN = List.of(
        "PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "CHUNKING", "DSN", "ENHANCEDSTATUSCODES");

    /** One message with the MAIL parameters {@code mailParams} and RCPT lines {@code "address params..."}. */
    private String send(final String mailParams, final String id, final String... rcpts) throws Exception
    {
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            client.command("MAIL FROM:<" + SENDER + ">" + mailParams, "250");
            final List<String> to = new ArrayList<>();
            for (final String rcpt : rcpts)
            {
                final int space = rcpt.indexOf(' ');
                final String address = space < 0 ? rcpt : rcpt.substring(0, space);
                to.add(address);
                client.command("RCPT TO:<" + address + ">" + (space < 0 ? "" : rcpt.substring(space)), "250");
            }
            return client.data(E2e.message(SENDER, String.join(", ", to), id));
        }
    }

    /** Proves no DSN is still on its way: a marker message to the sender's sink arrives after anything queued. */
    private void assertOnlyMarkerReachesSender(final String why) throws Exception
    {
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            client.send(SENDER, List.of("carol@client.test"), E2e.message(SENDER, "carol@client.test", "marker"));
        }
        senderSink.awaitMessages(1, WAIT);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(1, senderSink.messageCount(), () -> why + ": " + senderSink.messages());
        assertEquals("marker@client.test", E2e.messageId(senderSink.messages().get(0).content()));
    }

    private String state()
    {
        return "queued " + relay.queuedMessages() + ", delivered " + relay.metrics().messagesDelivered() +
            ", bounced " + relay.metrics().messagesBounced() + "; log " + log.lines();
    }

    @Test
    void notifyWithoutFailureBouncesWithoutADsn() throws Exception
    {
        dest.rcptReply(address -> address.startsWith("nobody") ? "550 5.1.1 <" + address + ">: user unknown" : null);
        start();
        final String queueId = send("", "never",
            "nobody1@example.test NOTIFY=NEVER", "nobody2@example.test NOTIFY=SUCCESS,DELAY", "bob@example.test");

        final TestSmtpSink.Received delivered = dest.awaitMessages(1, WAIT).get(0);
        assertEquals(List.of("bob@example.test"), delivered.recipients());
        Await.until("both bounces logged with the reason there is no DSN", WAIT, () ->
            log.any(queueId, "<nobody1@example.test>", "NOTIFY=NEVER", "no non-delivery notification") &&
            log.any(queueId, "<nobody2@example.test>", "NOTIFY=SUCCESS,DELAY", "no non-delivery notification"),
            this::state);
        assertTrue(log.any(queueId, "to=<nobody1@example.test>", "status=bounced"), this::state);
        assertTrue(log.any(queueId, "to=<nobody2@example.test>", "status=bounced"), this::state);
        assertOnlyMarkerReachesSender("no DSN for NOTIFY=NEVER nor for NOTIFY without FAILURE");
        assertEquals(1, dest.messageCount());
    }

    @Test
    void notifySuccessThroughANextHopWithoutDsnGetsARelayedDsn() throws Exception
    {
        start();
        final String queueId = send(" RET=FULL ENVID=QQ+2B314", "relayed",
            "bob@example.test NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2BOld@example.test", "carol@example.test");

        final TestSmtpSink.Received delivered = dest.awaitMessages(1, WAIT).get(0);
        assertEquals(List.of("bob@example.test", "carol@example.test"), delivered.recipients());
        assertFalse(delivered.mailParams().containsKey("RET") || delivered.mailParams().containsKey("ENVID"),
            "no DSN parameters to a peer without DSN: " + delivered.mailParams());
        assertEquals(List.of(Map.of(), Map.of()), delivered.rcptParams());

        final TestSmtpSink.Received dsn = senderSink.awaitMessages(1, WAIT).get(0);
        final String text = dsn.text();
        assertEquals("", dsn.mailFrom(), "a DSN has the null reverse path");
        assertEquals(List.of(SENDER), dsn.recipients());
        assertTrue(text.contains("\r\nSubject: Successful Mail Delivery Report\r\n"), text);
        assertTrue(text.contains("\r\nOriginal-Envelope-Id: QQ+314\r\nReporting-MTA: dns; relay.test\r\n"), text);
        assertTrue(text.contains("\r\nOriginal-Recipient: rfc822;Bob+Old@example.test\r\n" +
            "Final-Recipient: rfc822; bob@example.test\r\nAction: relayed\r\nStatus: 2.0.0\r\n" +
            "Remote-MTA: dns; 127.0.0.1\r\nDiagnostic-Code: smtp; 250 2.0.0 Ok: queued as"), text);
        assertFalse(text.contains("carol@example.test>:"), "carol asked for nothing: " + text);
        assertFalse(text.contains("Final-Recipient: rfc822; carol@example.test"), text);
        assertTrue(text.contains("Content-Type: text/rfc822-headers"), text);
        assertTrue(text.contains("Message-ID: <relayed@client.test>"), text);
        assertFalse(text.contains("body of relayed"), "headers only: " + text);
        Await.until("the success notification in the log", WAIT,
            () -> log.any(queueId, "sender success notification"), this::state);
        assertOnlyMarkerReachesSenderAfter(1);
    }

    @Test
    void nextHopWithDsnGetsTheParametersAndTheDutyToNotify() throws Exception
    {
        dest.extensions(WITH_DSN.toArray(new String[0]));
        start();
        send(" RET=HDRS ENVID=QQ+2B314", "passed-on",
            "bob@example.test NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2BOld@example.test", "carol@example.test",
            "dave@example.test NOTIFY=NEVER");

        final TestSmtpSink.Received delivered = dest.awaitMessages(1, WAIT).get(0);
        assertEquals(List.of("bob@example.test", "carol@example.test", "dave@example.test"), delivered.recipients());
        assertEquals("HDRS", delivered.mailParams().get("RET"));
        assertEquals("QQ+2B314", delivered.mailParams().get("ENVID"), "ENVID goes on as xtext, unchanged");
        assertEquals(Map.of("NOTIFY", "SUCCESS,FAILURE", "ORCPT", "rfc822;Bob+2BOld@example.test"),
            delivered.rcptParams().get(0));
        assertEquals(Map.of(), delivered.rcptParams().get(1));
        assertEquals(Map.of("NOTIFY", "NEVER"), delivered.rcptParams().get(2));
        assertOnlyMarkerReachesSender("the next hop took over: no relayed DSN from here");
    }

    @Test
    void retHdrsBounceCarriesHeadersOnlyWithEnvidAndOrcpt() throws Exception
    {
        dest.rcptReply(address -> "550 5.1.1 <" + address + ">: user unknown");
        start();
        final String queueId = send(" RET=HDRS ENVID=env-1", "hdrs",
            "nobody@example.test NOTIFY=FAILURE ORCPT=rfc822;nobody+40old@example.test");

        final TestSmtpSink.Received dsn = senderSink.awaitMessages(1, WAIT).get(0);
        final String text = dsn.text();
        assertTrue(text.contains("\r\nSubject: Undelivered Mail Returned to Sender\r\n"), text);
        assertTrue(text.contains("\r\nOriginal-Envelope-Id: env-1\r\nReporting-MTA: dns; relay.test\r\n"), text);
        assertTrue(text.contains("\r\nOriginal-Recipient: rfc822;nobody@old@example.test\r\n" +
            "Final-Recipient: rfc822; nobody@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"), text);
        final String enclosed = text.substring(text.indexOf("Content-Type: text/rfc822-headers\r\n\r\n"));
        assertTrue(enclosed.contains("\r\nSubject: e2e hdrs\r\n"), enclosed);
        assertTrue(enclosed.contains("\r\nMessage-ID: <hdrs@client.test>\r\n"), enclosed);
        assertFalse(text.contains("body of hdrs"), "RET=HDRS: headers only: " + text);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(1, senderSink.messageCount(), "one DSN");
        assertTrue(log.any(queueId, "sender non-delivery notification"), this::state);
    }

    @Test
    void delayWarningNamesOnlyRecipientsWhoseNotifyAllowsIt() throws Exception
    {
        dest.stop();
        start("delivery.delay_warning", "1s");
        final String queueId = send("", "slow",
            "bob@example.test NOTIFY=FAILURE", "carol@example.test", "dave@example.test NOTIFY=DELAY");

        final TestSmtpSink.Received warning = senderSink.awaitMessages(1, WAIT).get(0);
        final String text = warning.text();
        assertTrue(text.contains("Subject: Delayed Mail (still being retried)"), text);
        assertTrue(text.contains("Final-Recipient: rfc822; carol@example.test\r\nAction: delayed"), text);
        assertTrue(text.contains("Final-Recipient: rfc822; dave@example.test\r\nAction: delayed"), text);
        assertFalse(text.contains("Final-Recipient: rfc822; bob@example.test"), "NOTIFY=FAILURE: no warning: " + text);
        assertTrue(log.any(queueId, "<bob@example.test>", "NOTIFY=FAILURE", "no delay notification"), this::state);

        dest.restart();
        relay.flush();
        dest.awaitMessages(1, WAIT);
        assertOnlyMarkerReachesSenderAfter(1);
    }

    /**
     * A message whose first 64 KiB hold no empty line (a header section never ended, or no headers at all) still
     * bounces with a well-formed DSN: the headers part holds whole header fields only, read from a bounded buffer.
     */
    @Test
    void bounceOfAMessageWithoutAnEmptyLineInItsFirst64KiBIsWellFormed() throws Exception
    {
        dest.rcptReply(address -> "550 5.1.1 <" + address + ">: user unknown");
        start();
        final StringBuilder body = new StringBuilder("Subject: endless\r\nMessage-ID: <endless@client.test>\r\n");
        while (body.length() < 100 * 1024)
        {
            body.append("X-Filler-").append(body.length()).append(": ").append("f".repeat(70)).append("\r\n");
        }
        final String queueId;
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            client.command("MAIL FROM:<" + SENDER + ">", "250");
            client.command("RCPT TO:<nobody@example.test>", "250");
            queueId = client.data(body.toString().getBytes(StandardCharsets.US_ASCII));
        }

        final TestSmtpSink.Received dsn = senderSink.awaitMessages(1, WAIT).get(0);
        final String text = dsn.text();
        assertTrue(text.contains("Final-Recipient: rfc822; nobody@example.test"), text);
        final String boundary = text.substring(text.indexOf("boundary=\"") + 10, text.indexOf('"',
            text.indexOf("boundary=\"") + 10));
        final String partHead = "Content-Type: text/rfc822-headers\r\n\r\n";
        final int partStart = text.indexOf(partHead) + partHead.length();
        final int partEnd = text.indexOf("\r\n--" + boundary + "--\r\n");
        assertTrue(partStart > partHead.length() && partEnd > partStart, text);
        assertTrue(text.endsWith("\r\n--" + boundary + "--\r\n"), "closed multipart");
        final String[] enclosed = text.substring(partStart, partEnd).split("\r\n", -1);
        assertTrue(enclosed.length > 100, "most of the 64 KiB of fields: " + enclosed.length);
        assertEquals("Subject: endless", enclosed[0]);
        for (int i = 0; i < enclosed.length - 1; i++)
        {
            assertTrue(enclosed[i].matches("[!-9;-~]+: .*"), "not a whole header field: " + enclosed[i]);
            assertTrue(enclosed[i].startsWith("X-Filler-") ? enclosed[i].endsWith("f".repeat(70)) : true,
                "a field cut short: " + enclosed[i]);
        }
        assertEquals("", enclosed[enclosed.length - 1]);
        assertTrue(text.length() < 80 * 1024, "bounded: " + text.length());
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertTrue(log.any(queueId, "sender non-delivery notification"), this::state);
    }

    private void assertOnlyMarkerReachesSenderAfter(final int before) throws Exception
    {
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            client.send(SENDER, List.of("carol@client.test"), E2e.message(SENDER, "carol@client.test", "marker"));
        }
        senderSink.awaitMessages(before + 1, WAIT);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(before + 1, senderSink.messageCount(), () -> "one DSN, then the marker: " + senderSink.messages());
        assertEquals("marker@client.test", E2e.messageId(senderSink.messages().get(before).content()));
    }
}
