package dev.relay.delivery;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class DsnBuilderTest
{
    private static final long ARRIVAL = 1_790_000_000_000L;
    private static final long NOW = ARRIVAL + 3_600_000L;
    private static final byte[] HEADERS = (
        "Received: from client.example ([192.0.2.1])\r\n" +
        "\tby relay.example (relay) with ESMTP id Q1\r\n" +
        "From: Sender <sender@example.org>\r\n" +
        "To: rcpt@example.net\r\n" +
        "..Dotted: a header line that starts with a dot, stuffed\r\n" +
        "Subject: hello\r\n" +
        "\r\n" +
        "body line\r\n" +
        "..stuffed body line\r\n").getBytes(StandardCharsets.US_ASCII);

    private static final List<DsnBuilder.Recipient> RECIPIENTS = List.of(
        DsnBuilder.Recipient.failed("rcpt@example.net", "5.1.1", "mx.example.net", "smtp; 550 5.1.1 user unknown"),
        DsnBuilder.Recipient.failed("other@nowhere.test", "5.1.2", null,
            "X-Relay; Host or domain name not found. Name service error for name=nowhere.test type=MX: " +
            "Host not found"));

    private static byte[] build(final List<DsnBuilder.Recipient> recipients, final byte[] headers)
    {
        return DsnBuilder.build("relay.example", "Q1", "sender@example.org", ARRIVAL, recipients, headers, NOW,
            "Q2");
    }

    /** Un-stuffs wire form and checks every line ends in CRLF, has no bare CR or LF and at most 998 octets. */
    private static String unstuff(final byte[] wire)
    {
        final StringBuilder text = new StringBuilder();
        int start = 0;
        while (start < wire.length)
        {
            int lf = start;
            while (lf < wire.length && wire[lf] != '\n')
            {
                lf++;
            }
            assertTrue(lf < wire.length, "last line not ended");
            assertTrue(lf > start && wire[lf - 1] == '\r', "bare LF at " + lf);
            final int end = lf - 1;
            assertTrue(end - start <= DsnBuilder.MAX_LINE_OCTETS, "line of " + (end - start) + " octets");
            for (int i = start; i < end; i++)
            {
                assertTrue(wire[i] != '\r', "bare CR at " + i);
            }
            final int from = wire[start] == '.' ? start + 1 : start;
            text.append(new String(wire, from, end - from, StandardCharsets.UTF_8)).append("\r\n");
            start = lf + 1;
        }
        return text.toString();
    }

    private static String boundary(final String message)
    {
        final Matcher matcher = Pattern.compile("boundary=\"([^\"]+)\"").matcher(message);
        assertTrue(matcher.find(), "no boundary");
        return matcher.group(1);
    }

    /** The parts between the boundary delimiters, each as headers and content. */
    private static List<String> parts(final String message)
    {
        final String delimiter = "\r\n--" + boundary(message);
        final String body = message.substring(message.indexOf("\r\n\r\n") + 2);
        final List<String> parts = new ArrayList<>();
        int at = body.indexOf(delimiter);
        assertTrue(at >= 0, "no first delimiter");
        while (true)
        {
            final int lineEnd = body.indexOf("\r\n", at + delimiter.length());
            final String rest = body.substring(at + delimiter.length(), lineEnd);
            if (rest.equals("--"))
            {
                assertEquals(body.length(), lineEnd + 2, "nothing after the close delimiter");
                return parts;
            }
            assertEquals("", rest);
            final int next = body.indexOf(delimiter, lineEnd);
            assertTrue(next >= 0, "part without end");
            parts.add(body.substring(lineEnd + 2, next + 2));
            at = next;
        }
    }

    @Test
    void topLevelHeaders()
    {
        final String message = unstuff(build(RECIPIENTS, HEADERS));
        final String head = message.substring(0, message.indexOf("\r\n\r\n") + 2);

        assertTrue(head.startsWith("From: MAILER-DAEMON@relay.example (Mail Delivery System)\r\n"), head);
        assertTrue(head.contains("\r\nTo: <sender@example.org>\r\n"));
        assertTrue(head.contains("\r\nSubject: Undelivered Mail Returned to Sender\r\n"));
        assertTrue(head.contains("\r\nAuto-Submitted: auto-replied\r\n"));
        assertTrue(head.contains("\r\nMIME-Version: 1.0\r\n"));
        assertTrue(head.contains("\r\nDate: Mon, 21 Sep 2026 15:13:20 +0000\r\n"), head);
        assertTrue(head.contains("\r\nMessage-ID: <" + NOW + ".Q2@relay.example>\r\n"));
        assertTrue(head.contains("\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\""));
        assertTrue(head.contains("\r\nContent-Transfer-Encoding: 7bit\r\n"));
    }

    @Test
    void threePartsWithTheReportFields()
    {
        final List<String> parts = parts(unstuff(build(RECIPIENTS, HEADERS)));

        assertEquals(3, parts.size());
        assertTrue(parts.get(0).startsWith("Content-Description: Notification\r\nContent-Type: text/plain"));
        assertTrue(parts.get(0).contains(
            "<rcpt@example.net>: host mx.example.net said: 550 5.1.1 user unknown\r\n"), parts.get(0));
        assertTrue(parts.get(0).contains("<other@nowhere.test>: Host or domain name not found."), parts.get(0));

        final String report = parts.get(1);
        assertTrue(report.startsWith("Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n"
            + "\r\n"), report);
        assertTrue(report.contains("\r\nReporting-MTA: dns; relay.example\r\nX-Relay-Queue-ID: Q1\r\n" +
            "X-Relay-Sender: rfc822; sender@example.org\r\nArrival-Date: Mon, 21 Sep 2026 14:13:20 +0000\r\n"), report);
        assertTrue(report.contains("\r\n\r\nFinal-Recipient: rfc822; rcpt@example.net\r\nAction: failed\r\n" +
            "Status: 5.1.1\r\nRemote-MTA: dns; mx.example.net\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"),
            report);
        assertTrue(report.contains("\r\n\r\nFinal-Recipient: rfc822; other@nowhere.test\r\nAction: failed\r\n" +
            "Status: 5.1.2\r\nDiagnostic-Code: X-Relay; Host or domain name not found."), report);

        assertTrue(parts.get(2).startsWith(
            "Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"));
    }

    @Test
    void originalHeadersAreUnstuffedAndStuffedAgainWithoutTheBody()
    {
        final byte[] wire = build(RECIPIENTS, HEADERS);
        final String wireText = new String(wire, StandardCharsets.US_ASCII);
        final List<String> parts = parts(unstuff(wire));
        final String enclosed = parts.get(2).substring(parts.get(2).indexOf("\r\n\r\n") + 4);

        assertEquals(
            "Received: from client.example ([192.0.2.1])\r\n" +
            "\tby relay.example (relay) with ESMTP id Q1\r\n" +
            "From: Sender <sender@example.org>\r\n" +
            "To: rcpt@example.net\r\n" +
            ".Dotted: a header line that starts with a dot, stuffed\r\n" +
            "Subject: hello\r\n" +
            "\r\n", enclosed);
        assertTrue(wireText.contains("\r\n..Dotted: a header"), "stuffed again in wire form");
        assertFalse(wireText.contains("body line"));
    }

    @Test
    void everyLineEndsInCrlfAndIsShortEnoughEvenForHugeDiagnostics()
    {
        final String longWord = "x".repeat(3000);
        final String longText = "550 5.1.1 " + "very long reason ".repeat(200);
        final byte[] headers = ("Subject: " + "y".repeat(1500) + "\nX-Bare: lf only\n\n").getBytes(
            StandardCharsets.US_ASCII);
        final byte[] wire = build(List.of(
            DsnBuilder.Recipient.failed("a@example.net", "5.0.0", "mx.example.net", "smtp; " + longWord),
            DsnBuilder.Recipient.failed("b@example.net", "5.0.0", "mx.example.net", "smtp; " + longText)), headers);

        final String message = unstuff(wire);
        for (int i = 0; i < wire.length; i++)
        {
            if (wire[i] == '\n')
            {
                assertEquals('\r', wire[i - 1]);
            }
        }
        assertEquals(3, parts(message).size());
        final String report = parts(message).get(1);
        assertTrue(report.contains("Diagnostic-Code: smtp; 550 5.1.1 very long reason very long reason"));
        for (final String line : report.split("\r\n"))
        {
            assertTrue(line.length() <= 78 || !line.contains(" very long reason"), "not folded: " + line);
        }
        assertTrue(message.contains("\r\nX-Bare: lf only\r\n"));
    }

    @Test
    void lineBreaksInOutsideTextCannotAddLines()
    {
        final byte[] wire = build(List.of(DsnBuilder.Recipient.failed("rcpt@example.net", "5.7.1",
            "mx.example.net\r\nX-Injected: host", "smtp; 550 no\r\nX-Injected: yes\n.\r\n")), HEADERS);
        final String message = unstuff(wire);

        assertFalse(message.contains("\r\nX-Injected"), message);
        assertFalse(message.contains("\r\n.\r\n"));
    }

    @Test
    void sameInputSameBytes()
    {
        assertArrayEquals(build(RECIPIENTS, HEADERS), build(RECIPIENTS, HEADERS));
    }

    @Test
    void utf8ContentIsMarkedEightBit()
    {
        final byte[] headers = "Subject: Grüße\r\n\r\n".getBytes(StandardCharsets.UTF_8);
        final String message = unstuff(build(RECIPIENTS, headers));

        assertTrue(message.contains("\r\nContent-Transfer-Encoding: 8bit\r\n"));
        assertTrue(message.contains("\r\nSubject: Grüße\r\n"));
    }

    @Test
    void boundaryNeverMatchesAnEnclosedLine()
    {
        final String first = boundary(unstuff(build(RECIPIENTS, HEADERS)));
        // a field whose name starts with the delimiter (a line that is no field is not enclosed at all)
        final byte[] headers = ("X-Trap: x\r\n--" + first + ": y\r\n\r\n").getBytes(StandardCharsets.US_ASCII);

        final String message = unstuff(build(RECIPIENTS, headers));

        assertFalse(boundary(message).equals(first));
        assertEquals(3, parts(message).size());
    }

    @Test
    void envelopeIdAndOriginalRecipientsComeFirstInTheirBlocks()
    {
        final List<DsnBuilder.Recipient> recipients = List.of(
            new DsnBuilder.Recipient("rcpt@example.net", "5.1.1", "mx.example.net", "smtp; 550 5.1.1 user unknown",
                "failed", "rfc822;Rcpt+Old@example.net"),
            DsnBuilder.Recipient.failed("other@example.net", "5.1.1", null, "smtp; 550 no"));
        final byte[] wire = DsnBuilder.build("relay.example", "Q1", "QQ314159", "sender@example.org", ARRIVAL,
            recipients, HEADERS, 0, HEADERS.length, NOW, "Q2");
        final String report = parts(unstuff(wire)).get(1);

        // RFC 3464 §2.2 and §2.3: Original-Envelope-Id and Original-Recipient open their field groups
        assertTrue(report.contains("\r\n\r\nOriginal-Envelope-Id: QQ314159\r\nReporting-MTA: dns; relay.example\r\n"),
            report);
        assertTrue(report.contains("\r\n\r\nOriginal-Recipient: rfc822;Rcpt+Old@example.net\r\n" +
            "Final-Recipient: rfc822; rcpt@example.net\r\nAction: failed\r\n"), report);
        assertTrue(report.contains("\r\n\r\nFinal-Recipient: rfc822; other@example.net\r\n"), report);
        assertEquals(1, report.split("Original-Recipient", -1).length - 1, report);

        final String plain = parts(unstuff(build(RECIPIENTS, HEADERS))).get(1);
        assertFalse(plain.contains("Original-Envelope-Id") || plain.contains("Original-Recipient"), plain);
    }

    @Test
    void relayedRecipientsGetASuccessReport()
    {
        final String message = unstuff(build(List.of(new DsnBuilder.Recipient("rcpt@example.net", "2.0.0",
            "mx.example.net", "smtp; 250 2.0.0 Ok: queued as X", "relayed")), HEADERS));
        final List<String> parts = parts(message);

        assertTrue(message.contains("\r\nSubject: Successful Mail Delivery Report\r\n"), message);
        assertTrue(parts.get(0).contains("relayed to the recipients below"), parts.get(0));
        assertFalse(parts.get(0).contains("could not"), parts.get(0));
        assertTrue(parts.get(0).contains("<rcpt@example.net>: host mx.example.net said: 250 2.0.0 Ok: queued as X"),
            parts.get(0));
        assertTrue(parts.get(1).contains("\r\nFinal-Recipient: rfc822; rcpt@example.net\r\nAction: relayed\r\n" +
            "Status: 2.0.0\r\nRemote-MTA: dns; mx.example.net\r\nDiagnostic-Code: smtp; 250 2.0.0 Ok: queued as X\r\n"),
            parts.get(1));
        assertTrue(parts.get(2).startsWith("Content-Description: Message Headers\r\nContent-Type: text/rfc822-headers"),
            parts.get(2));
    }

    @Test
    void onlyHeaderFieldsAreEnclosedWhateverTheOriginalIs()
    {
        // no empty line: the header section ends at the first line that is no field
        final byte[] noBlankLine = ("Subject: hi\r\nX-Folded: a\r\n b\r\nthe body, no empty line before it\r\n" +
            "X-Not: a header, it comes after the body began\r\n").getBytes(StandardCharsets.US_ASCII);
        assertEquals("Subject: hi\r\nX-Folded: a\r\n b\r\n\r\n", enclosed(noBlankLine));

        // cut in the middle of a field: what is there is still a field
        assertEquals("Subject: hi\r\nX-Cut: abc\r\n\r\n",
            enclosed("Subject: hi\r\nX-Cut: abc".getBytes(StandardCharsets.US_ASCII)));

        // a body without headers, a continuation with nothing to continue, a name without a colon in reach
        assertEquals("\r\n", enclosed("hello\r\nSubject: x\r\n".getBytes(StandardCharsets.US_ASCII)));
        assertEquals("\r\n", enclosed(" folded\r\nSubject: x\r\n".getBytes(StandardCharsets.US_ASCII)));
        assertEquals("\r\n", enclosed(("X".repeat(2000) + ": y\r\n").getBytes(StandardCharsets.US_ASCII)));
        assertEquals("\r\n", enclosed(new byte[0]));
    }

    private static String enclosed(final byte[] headers)
    {
        final String part = parts(unstuff(build(RECIPIENTS, headers))).get(2);
        return part.substring(part.indexOf("\r\n\r\n") + 4);
    }

    @Test
    void rejectsWhatMustNotBeBounced()
    {
        assertThrows(IllegalArgumentException.class, () -> DsnBuilder.build(
            "relay.example", "Q1", "", ARRIVAL, RECIPIENTS, HEADERS, NOW, "Q2"));
        assertThrows(IllegalArgumentException.class, () -> build(List.of(), HEADERS));
        assertThrows(IllegalArgumentException.class,
            () -> DsnBuilder.Recipient.failed("a@example.net", "550", null, "smtp; 550 no"));
    }
}
