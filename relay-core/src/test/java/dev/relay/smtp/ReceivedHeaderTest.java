package dev.relay.smtp;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The exact bytes of the trace header, including one longer than the builder's first buffer. */
@Timeout(10)
class ReceivedHeaderTest
{
    private static final long AT_MS = 1_796_000_000_000L;
    private static final String DATE = "Mon, 30 Nov 2026 00:53:20 +0000";

    private final ReceivedHeader header = new ReceivedHeader("relay.example");

    @Test
    void oneRecipientOverEsmtp()
    {
        final InboundMessage message = message("client.example");
        message.addRecipient(ascii("rcpt@example.net"), 0, null);

        assertEquals("Received: from client.example ([192.0.2.1])\r\n\tby relay.example (relay) with ESMTP id "
            + message.queueIdText() + "\r\n\tfor <rcpt@example.net>; " + DATE + "\r\n",
            text(header.build(message, true, "192.0.2.1")));
    }

    @Test
    void tlsAndAuthenticationNameTheProtocolAndTheCipherAndTwoRecipientsNoFor()
    {
        final InboundMessage message = message("client.example");
        message.addRecipient(ascii("a@example.net"), 0, null);
        message.addRecipient(ascii("b@example.net"), 0, null);

        assertEquals("Received: from client.example ([192.0.2.1])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)"
            + "\r\n\tby relay.example (relay) with ESMTPSA id " + message.queueIdText() + "; " + DATE + "\r\n",
            text(header.build(message, true, "192.0.2.1", "TLSv1.3", "TLS_AES_256_GCM_SHA384", true)));
    }

    @Test
    void aHeloLongerThanTheFirstBufferWithControlBytesReplaced()
    {
        final String longHelo = "h".repeat(600);
        final InboundMessage message = message(longHelo + "\r\n\0x");
        message.addRecipient(ascii("rcpt@example.net"), 0, null);

        final String built = text(header.build(message, false, "192.0.2.1"));

        assertEquals("Received: from " + longHelo + "???x ([192.0.2.1])\r\n\tby relay.example (relay) with SMTP id "
            + message.queueIdText() + "\r\n\tfor <rcpt@example.net>; " + DATE + "\r\n", built);
        // the builder is reused: a short header after a long one has no leftovers
        final InboundMessage next = message("");
        assertEquals("Received: from unknown ([192.0.2.1])\r\n\tby relay.example (relay) with SMTP id "
            + next.queueIdText() + "; " + DATE + "\r\n", text(header.build(next, false, "192.0.2.1")));
    }

    @Test
    void mailTheRelayMadeHasNoFromClause()
    {
        assertEquals("Received: by relay.example (relay) id 0ABC; " + DATE + "\r\n",
            text(header.buildLocal("0ABC", AT_MS)));
    }

    private static InboundMessage message(final String helo)
    {
        final InboundMessage message = new InboundMessage();
        message.queueId(123_456_789L);
        message.receivedAtMs(AT_MS);
        message.heloName(ascii(helo));
        message.reversePath(ascii("sender@example.org"));
        return message;
    }

    private static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.ISO_8859_1);
    }

    private static String text(final byte[] bytes)
    {
        return new String(bytes, StandardCharsets.ISO_8859_1);
    }
}
