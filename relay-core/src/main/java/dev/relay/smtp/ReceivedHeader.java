package dev.relay.smtp;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/**
 * Builds the {@code Received:} trace header (RFC 5321 §4.4) that delivery prepends to the stored body:
 * <pre>
 * Received: from client.example ([192.0.2.1])
 *         by relay.example (relay) with ESMTP id 0H2Q4X7R8S9TV
 *         for &lt;rcpt@example.net&gt;; Sat, 28 Nov 2026 20:08:26 +0000
 * </pre>
 * {@code for} is written only for a single recipient (RFC 5321 §7.2: no recipient lists in trace headers).
 * Mail the relay makes itself (a DSN) came from no client: its header has no {@code from} clause, as Postfix's
 * bounces have ({@link #buildLocal}):
 * <pre>
 * Received: by relay.example (relay) id 0H2Q4X7R8S9TV; Sat, 28 Nov 2026 20:08:26 +0000
 * </pre>
 * Protocol names per RFC 3848 / RFC 6531 (SMTP, ESMTP, UTF8SMTP). One per loop thread: caches the date per second.
 */
public final class ReceivedHeader
{
    private static final DateTimeFormatter DATE =
        DateTimeFormatter.ofPattern("EEE, d MMM yyyy HH:mm:ss Z", Locale.ROOT).withZone(ZoneOffset.UTC);

    private final byte[] byHost;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream(256);
    private long cachedSecond = Long.MIN_VALUE;
    private byte[] cachedDate;

    public ReceivedHeader(final String hostname)
    {
        this.byHost = hostname.getBytes(StandardCharsets.US_ASCII);
    }

    public byte[] build(final InboundMessage message, final boolean esmtp, final String clientIp)
    {
        out.reset();
        put("Received: from ");
        final byte[] helo = message.heloName();
        if (helo == null || helo.length == 0)
        {
            put("unknown");
        }
        else
        {
            putSafe(helo);
        }
        put(" ([");
        put(clientIp);
        put("])\r\n\tby ");
        out.write(byHost, 0, byHost.length);
        put(" (relay) with ");
        if ((message.flags() & InboundMessage.FLAG_SMTPUTF8) != 0)
        {
            put("UTF8SMTP");
        }
        else
        {
            put(esmtp ? "ESMTP" : "SMTP");
        }
        put(" id ");
        put(message.queueIdText());
        if (message.recipients().size() == 1)
        {
            put("\r\n\tfor <");
            putSafe(message.recipients().get(0));
            put(">");
        }
        put("; ");
        final byte[] date = date(message.receivedAtMs());
        out.write(date, 0, date.length);
        put("\r\n");
        return out.toByteArray();
    }

    /** The header of a message made by the relay itself: no client, so no {@code from} clause. */
    public byte[] buildLocal(final String queueIdText, final long epochMs)
    {
        out.reset();
        put("Received: by ");
        out.write(byHost, 0, byHost.length);
        put(" (relay) id ");
        put(queueIdText);
        put("; ");
        final byte[] date = date(epochMs);
        out.write(date, 0, date.length);
        put("\r\n");
        return out.toByteArray();
    }

    private byte[] date(final long epochMs)
    {
        final long second = Math.floorDiv(epochMs, 1000);
        if (second != cachedSecond)
        {
            cachedSecond = second;
            cachedDate = DATE.format(Instant.ofEpochSecond(second)).getBytes(StandardCharsets.US_ASCII);
        }
        return cachedDate;
    }

    private void put(final String ascii)
    {
        for (int i = 0; i < ascii.length(); i++)
        {
            out.write(ascii.charAt(i));
        }
    }

    /** Client-supplied text: no CR, LF or NUL may reach a header (the parser refuses them, this is a second guard). */
    private void putSafe(final byte[] bytes)
    {
        for (final byte b : bytes)
        {
            out.write(b == '\r' || b == '\n' || b == 0 ? '?' : b);
        }
    }
}
