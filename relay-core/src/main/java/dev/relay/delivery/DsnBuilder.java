package dev.relay.delivery;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;

/**
 * Builds an RFC 3464 delivery status notification (a bounce) as a message in wire form — CRLF line ends,
 * dot-stuffed — ready to be spooled: {@code multipart/report; report-type=delivery-status} with a human-readable
 * part, the {@code message/delivery-status} part (per-message fields, then one block per failed recipient:
 * Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code) and the original headers as
 * {@code text/rfc822-headers} (RFC 6522). Lines stay under 998 octets (long diagnostics are folded).
 * Pure function; allocates (bounces are rare).
 */
public final class DsnBuilder
{
    private static final DateTimeFormatter DATE =
        DateTimeFormatter.ofPattern("EEE, d MMM yyyy HH:mm:ss Z", Locale.ROOT).withZone(ZoneOffset.UTC);
    private static final int FOLD_AT = 76;

    /**
     * @param status     RFC 3463 code, "5.1.1".
     * @param remoteMta  host name of the server that answered, or null when none did.
     * @param diagnostic "smtp; 550 5.1.1 user unknown", or an explanation with another type ("x-relay; ...").
     */
    public record FailedRecipient(String address, String status, String remoteMta, String diagnostic)
    {
    }

    private DsnBuilder()
    {
    }

    public static byte[] build(
        final String reportingHost,
        final String originalQueueId,
        final String originalSender,
        final long arrivalMs,
        final List<FailedRecipient> failed,
        final byte[] originalHeaders,
        final long nowMs,
        final String dsnId)
    {
        final String boundary = dsnId + "/" + reportingHost;
        final Text out = new Text();
        out.line("Date: " + DATE.format(Instant.ofEpochMilli(nowMs)));
        out.line("From: MAILER-DAEMON@" + reportingHost + " (Mail Delivery System)");
        out.line("To: <" + originalSender + ">");
        out.line("Subject: Undelivered Mail Returned to Sender");
        out.line("Message-ID: <" + dsnId + "@" + reportingHost + ">");
        out.line("Auto-Submitted: auto-replied");
        out.line("MIME-Version: 1.0");
        out.line("Content-Type: multipart/report; report-type=delivery-status;");
        out.line("\tboundary=\"" + boundary + "\"");
        out.line("Content-Transfer-Encoding: 8bit");
        out.line("");
        out.line("This is a MIME-encapsulated message.");
        out.line("");

        out.line("--" + boundary);
        out.line("Content-Description: Notification");
        out.line("Content-Type: text/plain; charset=utf-8");
        out.line("");
        out.line("This is the mail system at host " + reportingHost + ".");
        out.line("");
        out.line("I'm sorry to have to inform you that your message could not");
        out.line("be delivered to one or more recipients. It's attached below.");
        out.line("");
        for (final FailedRecipient recipient : failed)
        {
            out.folded("<" + recipient.address() + ">: " + stripType(recipient.diagnostic()), "    ");
        }
        out.line("");

        out.line("--" + boundary);
        out.line("Content-Description: Delivery report");
        out.line("Content-Type: message/delivery-status");
        out.line("");
        out.line("Reporting-MTA: dns; " + reportingHost);
        out.line("X-Relay-Queue-ID: " + originalQueueId);
        out.line("X-Relay-Sender: rfc822; " + originalSender);
        out.line("Arrival-Date: " + DATE.format(Instant.ofEpochMilli(arrivalMs)));
        for (final FailedRecipient recipient : failed)
        {
            out.line("");
            out.line("Final-Recipient: rfc822; " + recipient.address());
            out.line("Original-Recipient: rfc822; " + recipient.address());
            out.line("Action: failed");
            out.line("Status: " + recipient.status());
            if (recipient.remoteMta() != null)
            {
                out.line("Remote-MTA: dns; " + recipient.remoteMta());
            }
            out.folded("Diagnostic-Code: " + recipient.diagnostic(), "    ");
        }
        out.line("");

        out.line("--" + boundary);
        out.line("Content-Description: Undelivered Message Headers");
        out.line("Content-Type: text/rfc822-headers");
        out.line("");
        out.raw(originalHeaders);
        out.line("");
        out.line("--" + boundary + "--");
        return out.toByteArray();
    }

    private static String stripType(final String diagnostic)
    {
        final int semicolon = diagnostic.indexOf(';');
        return semicolon > 0 && semicolon < 16 ? diagnostic.substring(semicolon + 1).trim() : diagnostic;
    }

    /** CRLF lines, dot-stuffed, no bare CR or LF from any input string. */
    private static final class Text
    {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream(2048);

        void line(final String text)
        {
            final byte[] bytes = clean(text).getBytes(StandardCharsets.UTF_8);
            if (bytes.length > 0 && bytes[0] == '.')
            {
                out.write('.');
            }
            out.write(bytes, 0, Math.min(bytes.length, 990));
            out.write('\r');
            out.write('\n');
        }

        /** Folds at spaces near {@link #FOLD_AT} columns, continuation lines start with {@code indent}. */
        void folded(final String text, final String indent)
        {
            String rest = clean(text);
            boolean first = true;
            while (!rest.isEmpty())
            {
                final String prefix = first ? "" : indent;
                int cut = rest.length();
                if (prefix.length() + rest.length() > FOLD_AT)
                {
                    final int space = rest.lastIndexOf(' ', FOLD_AT - prefix.length());
                    cut = space > 0 ? space : Math.min(rest.length(), 900);
                }
                line(prefix + rest.substring(0, cut));
                rest = rest.substring(cut).trim();
                first = false;
            }
        }

        /** Original header bytes, already in wire form (CRLF lines, dot-stuffed): copied as they are. */
        void raw(final byte[] wire)
        {
            int start = 0;
            for (int i = 0; i < wire.length; i++)
            {
                if (wire[i] == '\n')
                {
                    out.write(wire, start, i + 1 - start);
                    start = i + 1;
                }
            }
            if (start < wire.length)
            {
                out.write(wire, start, wire.length - start);
                out.write('\r');
                out.write('\n');
            }
        }

        byte[] toByteArray()
        {
            return out.toByteArray();
        }

        private static String clean(final String text)
        {
            return text.replace('\r', ' ').replace('\n', ' ').replace('\0', ' ');
        }
    }
}
