package dev.relay.smtp;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
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
 * Protocol names per RFC 3848 / RFC 6531 (SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP and its S/A forms); over
 * TLS a comment after the client names the version and cipher, as Postfix writes it:
 * {@code (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)}. One per loop thread: caches the date per second.
 */
public final class ReceivedHeader
{
    private static final DateTimeFormatter DATE =
        DateTimeFormatter.ofPattern("EEE, d MMM yyyy HH:mm:ss Z", Locale.ROOT).withZone(ZoneOffset.UTC);

    private final byte[] byHost;
    /**
     * The header being built; grows to the longest and stays. A plain array: a ByteArrayOutputStream's write is
     * synchronized, one lock per byte, which made this a twentieth of an inbound loop's CPU under load (JFR).
     */
    private byte[] out = new byte[256];
    private int length;
    private long cachedSecond = Long.MIN_VALUE;
    private byte[] cachedDate;

    public ReceivedHeader(final String hostname)
    {
        this.byHost = hostname.getBytes(StandardCharsets.US_ASCII);
    }

    public byte[] build(final InboundMessage message, final boolean esmtp, final String clientIp)
    {
        return build(message, esmtp, clientIp, null, null, false);
    }

    /**
     * @param tlsProtocol  the TLS version when the message came over TLS (a comment names it and the cipher, as
     *                     Postfix writes it), else null.
     * @param authenticated the client authenticated (RFC 4954): the protocol name gains its A (RFC 3848).
     */
    public byte[] build(
        final InboundMessage message, final boolean esmtp, final String clientIp, final String tlsProtocol,
        final String tlsCipher, final boolean authenticated)
    {
        length = 0;
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
        put("])\r\n\t");
        if (tlsProtocol != null)
        {
            put("(using ");
            put(tlsProtocol);
            put(" with cipher ");
            put(tlsCipher);
            put(")\r\n\t");
        }
        put("by ");
        put(byHost);
        put(" (relay) with ");
        final boolean utf8 = (message.flags() & InboundMessage.FLAG_SMTPUTF8) != 0;
        put(utf8 ? "UTF8SMTP" : esmtp ? "ESMTP" : "SMTP");
        if (utf8 || esmtp)
        {
            // RFC 3848 (and RFC 6531 for UTF8SMTP): S for TLS, A for an authenticated client
            if (tlsProtocol != null)
            {
                put("S");
            }
            if (authenticated)
            {
                put("A");
            }
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
        put(date);
        put("\r\n");
        return Arrays.copyOf(out, length);
    }

    /** The header of a message made by the relay itself: no client, so no {@code from} clause. */
    public byte[] buildLocal(final String queueIdText, final long epochMs)
    {
        length = 0;
        put("Received: by ");
        put(byHost);
        put(" (relay) id ");
        put(queueIdText);
        put("; ");
        final byte[] date = date(epochMs);
        put(date);
        put("\r\n");
        return Arrays.copyOf(out, length);
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
        ensureRoom(ascii.length());
        for (int i = 0; i < ascii.length(); i++)
        {
            out[length++] = (byte)ascii.charAt(i);
        }
    }

    private void put(final byte[] bytes)
    {
        ensureRoom(bytes.length);
        System.arraycopy(bytes, 0, out, length, bytes.length);
        length += bytes.length;
    }

    /** Client-supplied text: no CR, LF or NUL may reach a header (the parser refuses them, this is a second guard). */
    private void putSafe(final byte[] bytes)
    {
        ensureRoom(bytes.length);
        for (final byte b : bytes)
        {
            out[length++] = b == '\r' || b == '\n' || b == 0 ? (byte)'?' : b;
        }
    }

    private void ensureRoom(final int more)
    {
        if (length + more > out.length)
        {
            out = Arrays.copyOf(out, Math.max(out.length * 2, length + more));
        }
    }
}
