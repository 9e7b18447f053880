package dev.relay.transfer;

import dev.relay.delivery.DsnBuilder;
import dev.relay.smtp.DsnParameters;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpooledMessage;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The non-delivery report a message still owes its sender when a transfer finishes it. The relay sends one DSN per
 * message, when its last recipient becomes final (as Postfix's bounce daemon does); a recipient bounced on an
 * earlier attempt of a message whose other recipients are transferred now would otherwise never be reported, since
 * the source relay is about to go away. So the transfer builds that report as the relay would (RFC 3464 via
 * {@link DsnBuilder}: the recipients whose NOTIFY asks for failures, RFC 3461 §4.1; the original headers, read
 * from the spool, at most 64 KiB) and sends it to the target from {@code <>} before the message is recorded done.
 * <p>
 * What the journal does not keep is left out: the remote MTA's name, and the enhanced status code when the stored
 * reply has none ({@code 5.0.0} then). Control thread; allocates.
 */
final class OwedBounce
{
    private static final int MAX_HEADER_BYTES = 64 * 1024;
    /** The enhanced status code after the reply code (RFC 3463), e.g. {@code 550 5.1.1 user unknown}. */
    private static final Pattern ENHANCED = Pattern.compile("^\\d{3}[ -]([245]\\.\\d{1,3}\\.\\d{1,3})\\b");

    private OwedBounce()
    {
    }

    /**
     * The report for {@code message}'s bounced recipients, in wire form (CRLF, dot-stuffed, no {@code .CRLF}), or
     * null when none is owed: the sender is {@code <>}, no recipient bounced, or none of those asked for a failure
     * notice.
     */
    static byte[] build(
        final String hostname, final SpooledMessage message, final JournalState.Entry entry,
        final SpoolBodyCursor cursor, final long nowMs)
    {
        if (message.reversePath().length == 0)
        {
            return null;
        }
        final List<DsnBuilder.Recipient> reported = new ArrayList<>();
        for (int i = 0; i < message.recipients().size(); i++)
        {
            if (!entry.isBounced(i) || !DsnParameters.notifiesFailure(message.notify(i)))
            {
                continue;
            }
            final String reply = entry.bouncedText(i);
            reported.add(new DsnBuilder.Recipient(new String(message.recipients().get(i), StandardCharsets.UTF_8),
                statusCode(reply), null, diagnostic(reply), "failed", originalRecipient(message.originalRecipient(i))));
        }
        if (reported.isEmpty())
        {
            return null;
        }
        final byte[] headers = originalHeaders(message, cursor);
        final byte[] envelopeId = message.envelopeId();
        return DsnBuilder.build(hostname, message.queueIdText(),
            envelopeId == null ? null : new String(DsnParameters.decodeXtext(envelopeId), StandardCharsets.UTF_8),
            new String(message.reversePath(), StandardCharsets.UTF_8), message.receivedAtMs(), reported,
            headers, 0, headers.length, nowMs, message.queueIdText() + ".transfer");
    }

    static String statusCode(final String reply)
    {
        if (reply != null)
        {
            final Matcher m = ENHANCED.matcher(reply);
            if (m.find())
            {
                final String code = m.group(1);
                return code.startsWith("5") ? code : "5" + code.substring(1);
            }
        }
        return "5.0.0";
    }

    private static String diagnostic(final String reply)
    {
        if (reply == null || reply.isEmpty())
        {
            return "smtp; unknown error";
        }
        return (Character.isDigit(reply.charAt(0)) ? "smtp; " : "x-relay; ") + reply;
    }

    /** ORCPT as stored ({@code addr-type;xtext}) decoded for the Original-Recipient field, or null. */
    private static String originalRecipient(final byte[] orcpt)
    {
        if (orcpt == null)
        {
            return null;
        }
        int semicolon = 0;
        while (semicolon < orcpt.length && orcpt[semicolon] != ';')
        {
            semicolon++;
        }
        final byte[] address = DsnParameters.decodeXtext(
            Arrays.copyOfRange(orcpt, Math.min(orcpt.length, semicolon + 1), orcpt.length));
        return new String(orcpt, 0, semicolon, StandardCharsets.US_ASCII) + ";" +
            new String(address, StandardCharsets.UTF_8);
    }

    /** The body's first 64 KiB cut after the header section's empty line, or after its last whole line. */
    private static byte[] originalHeaders(final SpooledMessage message, final SpoolBodyCursor cursor)
    {
        final ByteBuffer buffer = ByteBuffer.allocate((int)Math.min(MAX_HEADER_BYTES, message.bodyBytes()));
        cursor.open(message);
        while (buffer.hasRemaining() && cursor.read(buffer) > 0)
        {
            // up to the limit or the end of the body
        }
        final byte[] bytes = Arrays.copyOf(buffer.array(), buffer.position());
        for (int i = 0; i + 3 < bytes.length; i++)
        {
            if (bytes[i] == '\r' && bytes[i + 1] == '\n' && bytes[i + 2] == '\r' && bytes[i + 3] == '\n')
            {
                return Arrays.copyOf(bytes, i + 2);
            }
        }
        int end = bytes.length;
        if (bytes.length == MAX_HEADER_BYTES)
        {
            while (end > 0 && bytes[end - 1] != '\n')
            {
                end--;
            }
        }
        return Arrays.copyOf(bytes, end);
    }
}
