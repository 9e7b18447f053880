package dev.relay.delivery;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Builds a delivery status notification (RFC 3464, in an RFC 6522 {@code multipart/report}) for recipients that
 * failed, are delayed, or were relayed to a next hop without DSN (RFC 3461 §6.2.3), as the message bytes to spool:
 * wire form (CRLF line ends, dot-stuffed, RFC 5321 §4.5.2), without the {@code .CRLF} terminator. Three parts, as
 * Postfix writes them: a human-readable notice, the {@code message/delivery-status} report and the original headers
 * as {@code text/rfc822-headers} (never the body, whatever RET says: headers only is what RET=HDRS asks for, and
 * the DSN stays small).
 * <pre>
 * From: MAILER-DAEMON@relay.example (Mail Delivery System)
 * To: &lt;sender@example.org&gt;
 * Subject: Undelivered Mail Returned to Sender
 * Auto-Submitted: auto-replied                          (RFC 3834 §5)
 * Content-Type: multipart/report; report-type=delivery-status; boundary="..."
 *
 *   text/plain                 "&lt;rcpt@example.net&gt;: host mx.example.net said: 550 5.1.1 user unknown"
 *   message/delivery-status    [Original-Envelope-Id], Reporting-MTA, X-Relay-Queue-ID, X-Relay-Sender,
 *                              Arrival-Date; per recipient: [Original-Recipient], Final-Recipient, Action,
 *                              Status, Remote-MTA, Diagnostic-Code
 *   text/rfc822-headers        the original header block, un-stuffed: its header fields up to the empty line,
 *                              or up to the first line that is no field (so the part is headers whatever came)
 * </pre>
 * Text from outside (diagnostics, addresses, host names) has CR, LF and other control characters replaced by
 * spaces, so a remote reply cannot add header lines. Long field values are folded at spaces near 78 columns
 * (RFC 5322 §2.1.1) and split hard so no line exceeds 998 octets. The envelope of the DSN itself (null reverse
 * path {@code <>}, RFC 5321 §4.5.5) is the caller's; a message with a null sender gets no DSN.
 * <p>
 * Pure function: no I/O, no clock (the caller passes {@code now}); same input, same bytes. Any thread;
 * allocates the output and its working lines (a control path, not the hot path).
 */
public final class DsnBuilder
{
    /** Longest line in octets, CRLF excluded (RFC 5322 §2.1.1). */
    public static final int MAX_LINE_OCTETS = 998;
    private static final Pattern STATUS = Pattern.compile("[245]\\.\\d{1,3}\\.\\d{1,3}");
    private static final DateTimeFormatter DATE =
        DateTimeFormatter.ofPattern("EEE, d MMM yyyy HH:mm:ss Z", Locale.ROOT).withZone(ZoneOffset.UTC);

    /**
     * One recipient to report on.
     *
     * @param address    the recipient address, without angle brackets.
     * @param status     enhanced status code (RFC 3463), e.g. {@code 5.1.1}.
     * @param remoteMta  host name of the server that gave the reply, or null when none did (e.g. DNS failure).
     * @param diagnostic type and text, e.g. {@code smtp; 550 5.1.1 user unknown}; a text without a type gets
     *                   {@code smtp; }.
     * @param action     RFC 3464 §2.3.3 action, normally {@code failed} ({@code delayed} for a delay warning,
     *                   {@code relayed} for a success notice after a next hop without DSN).
     * @param originalRecipient the ORCPT the sender gave (RFC 3461 §4.2), decoded: {@code addr-type;address};
     *                   null when none was given. Becomes the Original-Recipient field (RFC 3464 §2.3.1).
     */
    public record Recipient(
        String address, String status, String remoteMta, String diagnostic, String action, String originalRecipient)
    {
        /**
         * Checks the status code and action.
         */
        public Recipient
        {
            if (!STATUS.matcher(status).matches())
            {
                throw new IllegalArgumentException("bad status code: " + status);
            }
            if (!action.equals("failed") && !action.equals("delayed") && !action.equals("delivered") &&
                !action.equals("relayed") && !action.equals("expanded"))
            {
                throw new IllegalArgumentException("bad action: " + action);
            }
        }

        /**
         * A recipient without an ORCPT.
         *
         * @param address    recipient address.
         * @param status     enhanced status code.
         * @param remoteMta  remote host or null.
         * @param diagnostic diagnostic.
         * @param action     RFC 3464 action.
         */
        public Recipient(
            final String address, final String status, final String remoteMta, final String diagnostic,
            final String action)
        {
            this(address, status, remoteMta, diagnostic, action, null);
        }

        /**
         * A failed recipient.
         *
         * @param address    recipient address.
         * @param status     enhanced status code.
         * @param remoteMta  remote host or null.
         * @param diagnostic diagnostic, e.g. {@code smtp; 550 5.1.1 user unknown}.
         * @return the recipient with action {@code failed}.
         */
        public static Recipient failed(
            final String address, final String status, final String remoteMta, final String diagnostic)
        {
            return new Recipient(address, status, remoteMta, diagnostic, "failed");
        }
    }

    private DsnBuilder()
    {
    }

    /**
     * Builds the DSN for the whole of {@code originalHeaders}.
     *
     * @see #build(String, String, String, String, long, List, byte[], int, int, long, String)
     */
    public static byte[] build(
        final String reportingMta,
        final String queueId,
        final String sender,
        final long arrivalEpochMs,
        final List<Recipient> recipients,
        final byte[] originalHeaders,
        final long nowEpochMs,
        final String seed)
    {
        return build(reportingMta, queueId, null, sender, arrivalEpochMs, recipients, originalHeaders, 0,
            originalHeaders.length, nowEpochMs, seed);
    }

    /**
     * Builds the DSN without an envelope id.
     *
     * @see #build(String, String, String, String, long, List, byte[], int, int, long, String)
     */
    public static byte[] build(
        final String reportingMta,
        final String queueId,
        final String sender,
        final long arrivalEpochMs,
        final List<Recipient> recipients,
        final byte[] original,
        final int offset,
        final int length,
        final long nowEpochMs,
        final String seed)
    {
        return build(reportingMta, queueId, null, sender, arrivalEpochMs, recipients, original, offset, length,
            nowEpochMs, seed);
    }

    /**
     * Builds the DSN.
     *
     * @param reportingMta    this relay's host name ({@code smtp.hostname}).
     * @param queueId         queue id of the original message, or null to leave it out.
     * @param envelopeId      the ENVID the sender gave (RFC 3461 §4.4), decoded, or null: the Original-Envelope-Id
     *                        field (RFC 3464 §2.2.1).
     * @param sender          envelope sender of the original message, the DSN's recipient; not empty.
     * @param arrivalEpochMs  when the original message arrived.
     * @param recipients      at least one recipient.
     * @param original        the original message's header block in wire form (dot-stuffed, CRLF); bytes after
     *                        the first empty line (a body) are ignored.
     * @param offset          start of the header block in {@code original}.
     * @param length          length of the header block (or of header block plus body).
     * @param nowEpochMs      the DSN's date.
     * @param seed            unique per DSN (e.g. the new queue id): makes the Message-ID and the MIME boundary.
     * @return the DSN in wire form, without the {@code .CRLF} terminator.
     */
    public static byte[] build(
        final String reportingMta,
        final String queueId,
        final String envelopeId,
        final String sender,
        final long arrivalEpochMs,
        final List<Recipient> recipients,
        final byte[] original,
        final int offset,
        final int length,
        final long nowEpochMs,
        final String seed)
    {
        if (sender == null || sender.isEmpty())
        {
            throw new IllegalArgumentException("no DSN for a null reverse path (RFC 5321 §4.5.5)");
        }
        if (recipients.isEmpty())
        {
            throw new IllegalArgumentException("no recipients to report");
        }
        final String host = clean(reportingMta);
        final List<byte[]> headerLines = OriginalHeaders.lines(original, offset, length);
        final String boundary = boundary(clean(seed), nowEpochMs, host, headerLines);
        final WireLines out = new WireLines();
        out.text("This is a MIME-encapsulated message.");
        out.text("");

        out.text("--" + boundary);
        out.text("Content-Description: Notification");
        out.text("Content-Type: text/plain; charset=utf-8");
        out.text("");
        notice(out, host, recipients);
        out.text("");

        out.text("--" + boundary);
        out.text("Content-Description: Delivery report");
        out.text("Content-Type: message/delivery-status");
        out.text("");
        if (envelopeId != null)
        {
            // RFC 3464 §2.2: the first per-message field when there is one
            out.field("Original-Envelope-Id: ", clean(envelopeId));
        }
        out.text("Reporting-MTA: dns; " + host);
        if (queueId != null)
        {
            out.text("X-Relay-Queue-ID: " + clean(queueId));
        }
        out.text("X-Relay-Sender: rfc822; " + clean(sender));
        out.text("Arrival-Date: " + DATE.format(Instant.ofEpochMilli(arrivalEpochMs)));
        for (final Recipient recipient : recipients)
        {
            out.text("");
            if (recipient.originalRecipient() != null)
            {
                // RFC 3464 §2.3: the first per-recipient field when there is one
                out.field("Original-Recipient: ", clean(recipient.originalRecipient()));
            }
            out.text("Final-Recipient: rfc822; " + clean(recipient.address()));
            out.text("Action: " + recipient.action());
            out.text("Status: " + recipient.status());
            if (recipient.remoteMta() != null)
            {
                out.text("Remote-MTA: dns; " + clean(recipient.remoteMta()));
            }
            out.field("Diagnostic-Code: ", typedDiagnostic(recipient.diagnostic()));
        }
        out.text("");

        out.text("--" + boundary);
        out.text(allSucceeded(recipients) ? "Content-Description: Message Headers" :
            "Content-Description: Undelivered Message Headers");
        out.text("Content-Type: text/rfc822-headers");
        out.text("");
        for (final byte[] line : headerLines)
        {
            out.bytes(line);
        }
        out.text("");
        out.text("--" + boundary + "--");
        final byte[] body = out.toByteArray();

        final WireLines head = new WireLines();
        head.text("From: MAILER-DAEMON@" + host + " (Mail Delivery System)");
        head.text("To: <" + clean(sender) + ">");
        head.text(allDelayed(recipients) ? "Subject: Delayed Mail (still being retried)" :
            allSucceeded(recipients) ? "Subject: Successful Mail Delivery Report" :
            "Subject: Undelivered Mail Returned to Sender");
        head.text("Date: " + DATE.format(Instant.ofEpochMilli(nowEpochMs)));
        head.text("Message-ID: <" + nowEpochMs + "." + messageIdPart(clean(seed)) + "@" + host + ">");
        head.text("Auto-Submitted: auto-replied");
        head.text("MIME-Version: 1.0");
        head.text("Content-Type: multipart/report; report-type=delivery-status;");
        head.text("\tboundary=\"" + boundary + "\"");
        head.text("Content-Transfer-Encoding: " + (isAscii(body) ? "7bit" : "8bit"));
        head.text("");
        final byte[] header = head.toByteArray();

        final byte[] message = new byte[header.length + body.length];
        System.arraycopy(header, 0, message, 0, header.length);
        System.arraycopy(body, 0, message, header.length, body.length);
        return message;
    }

    private static boolean allDelayed(final List<Recipient> recipients)
    {
        for (final Recipient recipient : recipients)
        {
            if (!"delayed".equals(recipient.action()))
            {
                return false;
            }
        }
        return !recipients.isEmpty();
    }

    /** Every recipient was delivered, relayed or expanded: a success report (RFC 3461 §6.2.3), no bad news. */
    private static boolean allSucceeded(final List<Recipient> recipients)
    {
        for (final Recipient recipient : recipients)
        {
            if ("failed".equals(recipient.action()) || "delayed".equals(recipient.action()))
            {
                return false;
            }
        }
        return !recipients.isEmpty();
    }

    private static boolean isAscii(final byte[] bytes)
    {
        for (final byte b : bytes)
        {
            if (b < 0)
            {
                return false;
            }
        }
        return true;
    }

    private static void notice(final WireLines out, final String host, final List<Recipient> recipients)
    {
        out.text("This is the mail system at host " + host + ".");
        out.text("");
        if (allDelayed(recipients))
        {
            out.text("####################################################################");
            out.text("# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #");
            out.text("####################################################################");
            out.text("");
            out.text("Your message could not be delivered yet to the recipients below.");
            out.text("Delivery will be retried until the message expires. The headers of");
            out.text("your message are attached below.");
        }
        else if (allSucceeded(recipients))
        {
            out.text("Your message was relayed to the recipients below, as you asked to be");
            out.text("told. The next mail system does not offer delivery status notifications,");
            out.text("so this is the last notice of success you will receive; other systems");
            out.text("may still notify you of a failure. The headers of your message are");
            out.text("attached below.");
        }
        else
        {
            out.text("I'm sorry to have to inform you that your message could not");
            out.text("be delivered to one or more recipients. The headers of your");
            out.text("message are attached below.");
        }
        out.text("");
        out.text("For further assistance, please contact your postmaster.");
        out.text("");
        out.text("If you do so, please include this problem report.");
        out.text("");
        out.text("                   The mail system");
        for (final Recipient recipient : recipients)
        {
            final String text = untypedDiagnostic(recipient.diagnostic());
            final String said = recipient.remoteMta() == null ?
                text : "host " + clean(recipient.remoteMta()) + " said: " + text;
            out.text("");
            out.field("<" + clean(recipient.address()) + ">: ", said);
        }
    }

    private static String typedDiagnostic(final String diagnostic)
    {
        final String text = clean(diagnostic == null ? "" : diagnostic).trim();
        final int semicolon = text.indexOf(';');
        final boolean typed = semicolon > 0 && text.substring(0, semicolon).matches("[A-Za-z][A-Za-z0-9-]*");
        return typed ? text : "smtp; " + text;
    }

    private static String untypedDiagnostic(final String diagnostic)
    {
        final String typed = typedDiagnostic(diagnostic);
        return typed.substring(typed.indexOf(';') + 1).trim();
    }

    /** Control characters (CR and LF among them) become spaces: outside text must not make lines. */
    private static String clean(final String text)
    {
        final StringBuilder cleaned = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); i++)
        {
            final char c = text.charAt(i);
            cleaned.append(c < 0x20 || c == 0x7f ? ' ' : c);
        }
        return cleaned.toString();
    }

    private static String messageIdPart(final String seed)
    {
        final StringBuilder part = new StringBuilder(seed.length());
        for (int i = 0; i < seed.length(); i++)
        {
            final char c = seed.charAt(i);
            part.append(c < 0x80 && (Character.isLetterOrDigit(c) || "!#$%&'*+-/=?^_`{|}~.".indexOf(c) >= 0) ?
                c : '_');
        }
        return part.toString();
    }

    /** RFC 2046 §5.1.1 bchars only, and never a line of the enclosed headers. */
    private static String boundary(
        final String seed, final long nowEpochMs, final String host, final List<byte[]> headerLines)
    {
        final StringBuilder base = new StringBuilder();
        for (final char c : (seed + "." + nowEpochMs + "/" + host).toCharArray())
        {
            base.append(c < 0x80 && (Character.isLetterOrDigit(c) || "'()+_,-./:=?".indexOf(c) >= 0) ? c : '_');
        }
        if (base.length() > 60)
        {
            base.setLength(60);
        }
        String boundary = base.toString();
        for (int attempt = 1; clashes(boundary, headerLines); attempt++)
        {
            boundary = base + "=" + attempt;
        }
        return boundary;
    }

    private static boolean clashes(final String boundary, final List<byte[]> lines)
    {
        final byte[] delimiter = ("--" + boundary).getBytes(StandardCharsets.US_ASCII);
        for (final byte[] line : lines)
        {
            if (line.length >= delimiter.length &&
                java.util.Arrays.equals(line, 0, delimiter.length, delimiter, 0, delimiter.length))
            {
                return true;
            }
        }
        return false;
    }
}
