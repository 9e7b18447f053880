package dev.relay.e2e;

import dev.relay.Relay;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The destination misbehaves: down then up, 4xx then 2xx, 5xx for one recipient (DSN to the sender), a null
 * sender's failure (no DSN), expiry after {@code queue.max_age}, 421 at the greeting, a peer that never greets.
 * The sender's domain {@code client.test} routes to its own sink, where bounces arrive.
 */
@Timeout(40)
class DeliveryFaultsTest extends RelayWithSenderSink
{
    private String send(final String from, final List<String> to, final String id) throws Exception
    {
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            return client.send(from, to, E2e.message(from, String.join(", ", to), id));
        }
    }

    private String state()
    {
        return "queued " + relay.queuedMessages() + ", delivered " + relay.metrics().messagesDelivered() +
            ", deferred " + relay.metrics().messagesDeferred() + ", bounced " + relay.metrics().messagesBounced() +
            "; log " + log.lines();
    }

    @Test
    void destinationDownThenUpIsDelivered() throws Exception
    {
        dest.stop();
        start();
        final String queueId = send(SENDER, List.of("bob@example.test"), "down-up");
        Await.until("a deferral while the destination is down", WAIT,
            () -> log.any(queueId, "status=deferred"), this::state);
        assertEquals(0, dest.messageCount());

        dest.restart();
        relay.flush();
        final TestSmtpSink.Received got = dest.awaitMessages(1, WAIT).get(0);
        assertEquals(List.of("bob@example.test"), got.recipients());
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(1, dest.messageCount());
        assertEquals(0, senderSink.messageCount(), "no bounce");
        assertTrue(log.any(queueId, "to=<bob@example.test>", "relay=127.0.0.1[127.0.0.1]:" + dest.port(),
            "status=sent"), this::state);
    }

    @Test
    void temporaryFailuresTwiceThenDeliveredExactlyOnce() throws Exception
    {
        dest.queueDataReplies("451 4.3.0 try again later", "451 4.3.0 try again later");
        start();
        final String queueId = send(SENDER, List.of("bob@example.test"), "451-twice");
        dest.awaitMessages(1, WAIT);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(1, dest.messageCount(), "delivered exactly once");
        assertEquals(2, log.lines().stream().filter(l -> l.contains(queueId) && l.contains("status=deferred") &&
            l.contains("451 4.3.0")).count(), this::state);
        assertEquals(0, senderSink.messageCount(), "no bounce");
    }

    @Test
    void permanentFailureOfOneRecipientSendsDsnToSender() throws Exception
    {
        dest.rcptReply(address -> address.startsWith("nobody@") ? "550 5.1.1 <" + address + ">: user unknown" : null);
        start();
        final String queueId = send(SENDER, List.of("bob@example.test", "nobody@example.test"), "dsn-550");

        final TestSmtpSink.Received delivered = dest.awaitMessages(1, WAIT).get(0);
        assertEquals(List.of("bob@example.test"), delivered.recipients());
        final TestSmtpSink.Received dsn = senderSink.awaitMessages(1, WAIT).get(0);
        final String text = dsn.text();
        assertEquals("", dsn.mailFrom(), "a DSN has the null reverse path");
        assertEquals(List.of(SENDER), dsn.recipients());
        assertTrue(text.contains("\r\nTo: <" + SENDER + ">\r\n"), text);
        assertTrue(text.contains("From: MAILER-DAEMON@relay.test"), text);
        assertTrue(text.contains("Content-Type: multipart/report; report-type=delivery-status"), text);
        assertTrue(text.contains("Final-Recipient: rfc822; nobody@example.test"), text);
        assertTrue(text.contains("Status: 5.1.1"), text);
        assertTrue(text.contains("550 5.1.1"), text);
        assertFalse(text.contains("Final-Recipient: rfc822; bob@example.test"), text);
        // the original headers, as text/rfc822-headers
        assertTrue(text.contains("Content-Type: text/rfc822-headers"), text);
        assertTrue(text.contains("Subject: e2e dsn-550\r\n"), text);
        assertTrue(text.contains("Message-ID: <dsn-550@client.test>\r\n"), text);
        assertTrue(text.contains("X-Relay-Queue-ID: " + queueId), text);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(1, senderSink.messageCount(), "one DSN");
        assertTrue(log.any(queueId, "to=<nobody@example.test>", "dsn=5.1.1", "status=bounced"), this::state);
    }

    @Test
    void nullSenderFailureSendsNoDsnAndSaysSo() throws Exception
    {
        dest.rcptReply(address -> "550 5.1.1 <" + address + ">: user unknown");
        start();
        final String queueId = send("", List.of("nobody@example.test"), "null-sender");
        Await.until("the bounce and the no-DSN note in the log", WAIT,
            () -> log.any(queueId, "status=bounced") && log.any(queueId, "null sender") &&
                relay.queuedMessages() == 0, this::state);
        // give a DSN, were one queued, every chance to arrive: another message to the same sink goes through after it
        send(SENDER, List.of("carol@client.test"), "after-null-sender");
        senderSink.awaitMessages(1, WAIT);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(1, senderSink.messageCount(), () -> "only the marker message: " + senderSink.messages());
        assertEquals("after-null-sender@client.test", E2e.messageId(senderSink.messages().get(0).content()));
        assertEquals(0, dest.messageCount());
    }

    @Test
    void delayWarningWhenConfiguredThenDeliveredOnce() throws Exception
    {
        dest.stop();
        start("delivery.delay_warning", "1s");
        send(SENDER, List.of("bob@example.test"), "slow");
        final TestSmtpSink.Received warning = senderSink.awaitMessages(1, WAIT).get(0);
        final String text = warning.text();
        assertEquals("", warning.mailFrom());
        assertTrue(text.contains("Subject: Delayed Mail (still being retried)"), text);
        assertTrue(text.contains("Action: delayed"), text);
        assertTrue(text.contains("Final-Recipient: rfc822; bob@example.test"), text);
        assertTrue(text.contains("Status: 4."), text);
        dest.restart();
        relay.flush();
        dest.awaitMessages(1, WAIT);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(1, senderSink.messageCount(), "one warning, no bounce");
        assertEquals(1, dest.messageCount());
    }

    @Test
    void expiredAfterMaxAgeWithDestinationDownBouncesWithDsn() throws Exception
    {
        dest.stop();
        start("queue.max_age", "3s");
        final String queueId = send(SENDER, List.of("bob@example.test"), "expire");
        final TestSmtpSink.Received dsn = senderSink.awaitMessages(1, WAIT).get(0);
        final String text = dsn.text();
        assertEquals("", dsn.mailFrom());
        assertTrue(text.contains("Final-Recipient: rfc822; bob@example.test"), text);
        assertTrue(text.contains("Status: 5.4.7"), text);
        assertTrue(text.contains("expired"), text);
        assertTrue(text.contains("Message-ID: <expire@client.test>"), text);
        assertTrue(log.any(queueId, "to=<bob@example.test>", "status=expired"), this::state);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(0, dest.messageCount());
    }

    @Test
    void greeting421IsDeferredThenDeliveredWhenFixed() throws Exception
    {
        dest.greeting("421 4.3.2 sink.test busy, come back later");
        start();
        final String queueId = send(SENDER, List.of("bob@example.test"), "greet-421");
        Await.until("a deferral at the greeting", WAIT, () -> log.any(queueId, "status=deferred"), this::state);
        assertEquals(0, dest.messageCount());

        dest.greeting("220 sink.test ESMTP ready again");
        relay.flush();
        dest.awaitMessages(1, WAIT);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(1, dest.messageCount());
        assertEquals(0, senderSink.messageCount(), "no bounce");
    }

    @Test
    void peerThatNeverGreetsTimesOutIsDeferredThenDeliveredWhenFixed() throws Exception
    {
        dest.fault(TestSmtpSink.Step.CONNECT, TestSmtpSink.Fault.SILENT);
        start("delivery.timeout.command", "1s");
        final String queueId = send(SENDER, List.of("bob@example.test"), "silent");
        Await.until("a deferral after the greeting timeout", WAIT, () -> log.any(queueId, "status=deferred"),
            this::state);
        assertEquals(0, dest.messageCount());

        dest.fault(TestSmtpSink.Step.CONNECT, TestSmtpSink.Fault.NONE);
        relay.flush();
        dest.awaitMessages(1, WAIT);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(1, dest.messageCount());
        assertEquals(0, senderSink.messageCount(), "no bounce");
    }
}
