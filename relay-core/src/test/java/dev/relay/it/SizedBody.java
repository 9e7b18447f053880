package dev.relay.it;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.SplittableRandom;

/**
 * A message body of an exact stored size for {@link MessageSizesTest}, made deterministically from a seed. The stored
 * form is what the relay spools and counts against {@code smtp.max_message_size}: for DATA the dot-stuffed wire form
 * (RFC 5321 §4.5.2, without the final {@code .CRLF}), for BDAT the raw octets (RFC 3030). The content is what a
 * receiver must end up with after it undoes the stuffing.
 * <p>
 * Shape: lines end in CRLF and hold no CR, LF or NUL; octets 0x20-0xFF (no DEL) after a first octet that is a letter
 * or digit, so no line looks like a header continuation; lines are 1-100 octets before their CRLF. A
 * body opens a header section, {@code X-Size-Test: TAG} and an empty line (or, too short for that, just the empty
 * line; a 1 or 3 octet body cannot), so a receiving MTA finds a well formed header section after the relay's Received: header and inserts nothing
 * (Postfix's cleanup inserts an empty line before a body line that follows the headers directly). Lone-dot lines
 * (content {@code .}, wire {@code ..}) go at chosen offsets of the stored form, where a buffer boundary falls before,
 * inside or after them; {@code dotFiller} also starts about one filler line in eight with a dot. A BDAT body may end
 * without CRLF ({@code openEnd}).
 */
final class SizedBody
{
    private static final int MAX_TEXT = 100;
    private static final byte[] CRLF = {'\r', '\n'};
    private static final byte[] ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        .getBytes(StandardCharsets.US_ASCII);

    final byte[] stored;
    final boolean stuffed;
    /** The stored body ends in CRLF (or is empty). */
    final boolean endsWithCrlf;
    /** Opens with a header section or an empty line, ends with CRLF: Postfix delivers it unchanged. */
    final boolean wellFormed;
    /** SHA-256 of the content: what a receiver must hold after the relay's Received: header. */
    final String contentSha256;
    final long contentLength;

    private SizedBody(final byte[] stored, final boolean stuffed, final boolean wellFormed)
    {
        this.stored = stored;
        this.stuffed = stuffed;
        this.endsWithCrlf = stored.length == 0 ||
            stored.length >= 2 && stored[stored.length - 2] == '\r' && stored[stored.length - 1] == '\n';
        this.wellFormed = wellFormed && endsWithCrlf;
        final MessageDigest sha = SpoolContents.sha256();
        this.contentLength = stuffed ? unstuff(stored, sha) : digest(stored, sha);
        this.contentSha256 = HexFormat.of().formatHex(sha.digest());
    }

    /**
     * The SHA-256 a receiver must hold when the relay wrote this body as DATA: a raw body that does not end in CRLF
     * gets one before the end of data (SmtpClientSession writes {@code CRLF.CRLF} then).
     */
    String stuffedContentSha256()
    {
        if (endsWithCrlf)
        {
            return contentSha256;
        }
        final MessageDigest sha = SpoolContents.sha256();
        sha.update(stored);
        sha.update(CRLF);
        return HexFormat.of().formatHex(sha.digest());
    }

    /**
     * @param tag       names the body in its header line.
     * @param size      octets of the stored form.
     * @param stuffed   DATA wire form (true) or raw BDAT octets (false).
     * @param dotLines  stored offsets where a lone-dot line starts, ascending; two must be more than 6 octets apart.
     * @param dotFiller start about one filler line in eight with a dot.
     * @param openEnd   leave the last line without CRLF (raw only).
     * @throws IllegalArgumentException when the layout cannot be made (a gap of one octet, a line out of range).
     */
    static SizedBody of(
        final String tag, final int size, final long seed, final boolean stuffed, final int[] dotLines,
        final boolean dotFiller, final boolean openEnd)
    {
        if (openEnd && stuffed)
        {
            throw new IllegalArgumentException("a DATA body always ends with CRLF");
        }
        final Writer out = new Writer(size, new SplittableRandom(seed), stuffed, dotFiller);
        final byte[] header = ("X-Size-Test: " + tag + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
        final int first = dotLines.length == 0 ? size : dotLines[0];
        boolean wellFormed = true;
        if (size == 0)
        {
            return new SizedBody(out.bytes, stuffed, true);
        }
        if (header.length <= first && fits(first - header.length, openEnd && dotLines.length == 0))
        {
            out.put(header);
        }
        else if (size >= 2 && fits(first - 2, openEnd && dotLines.length == 0))
        {
            out.put(CRLF);
        }
        else
        {
            wellFormed = false;
        }
        for (final int at : dotLines)
        {
            out.fill(at - out.position, false);
            out.put(stuffed ? new byte[] {'.', '.', '\r', '\n'} : new byte[] {'.', '\r', '\n'});
        }
        out.fill(size - out.position, openEnd);
        if (out.position != size)
        {
            throw new IllegalStateException("filled " + out.position + " of " + size + " octets");
        }
        return new SizedBody(out.bytes, stuffed, wellFormed);
    }

    /** A gap of this many octets can be filled with lines (an open last line takes any length). */
    private static boolean fits(final int gap, final boolean open)
    {
        return gap == 0 || gap >= 2 || (open && gap >= 1);
    }

    private static long digest(final byte[] bytes, final MessageDigest sha)
    {
        sha.update(bytes);
        return bytes.length;
    }

    /** Digests the content of a DATA wire body: one dot off the start of every line that has one. */
    private static long unstuff(final byte[] wire, final MessageDigest sha)
    {
        long length = 0;
        int lineStart = 0;
        while (lineStart < wire.length)
        {
            int end = lineStart;
            while (end < wire.length && wire[end] != '\n')
            {
                end++;
            }
            end = Math.min(end + 1, wire.length);
            final int from = wire[lineStart] == '.' ? lineStart + 1 : lineStart;
            sha.update(wire, from, end - from);
            length += end - from;
            lineStart = end;
        }
        return length;
    }

    /** Fills the stored form front to back. */
    private static final class Writer
    {
        final byte[] bytes;
        final SplittableRandom random;
        final boolean stuffed;
        final boolean dotFiller;
        int position;

        Writer(final int size, final SplittableRandom random, final boolean stuffed, final boolean dotFiller)
        {
            this.bytes = new byte[size];
            this.random = random;
            this.stuffed = stuffed;
            this.dotFiller = dotFiller;
        }

        void put(final byte[] part)
        {
            if (position + part.length > bytes.length)
            {
                throw new IllegalArgumentException("no room for " + part.length + " octets at " + position);
            }
            System.arraycopy(part, 0, bytes, position, part.length);
            position += part.length;
        }

        /** Exactly {@code gap} octets of whole lines; with {@code open} the last line has no CRLF. */
        void fill(final int gap, final boolean open)
        {
            if (gap < 0 || !fits(gap, open))
            {
                throw new IllegalArgumentException("cannot fill " + gap + " octets at " + position);
            }
            int left = gap;
            while (left > 0)
            {
                if (open && left <= MAX_TEXT)
                {
                    text(left, false);
                    return;
                }
                int line;
                if (open)
                {
                    line = Math.min(3 + random.nextInt(MAX_TEXT - 1), left - 1); // the open line keeps one at least
                }
                else
                {
                    line = left <= MAX_TEXT + 2 ? left : 3 + random.nextInt(MAX_TEXT - 1);
                    if (left - line == 1)
                    {
                        line++;
                    }
                }
                final boolean dot = dotFiller && line >= 5 && random.nextInt(8) == 0;
                text(line - 2, dot);
                put(CRLF);
                left -= line;
            }
        }

        /** {@code length} octets of line text; a dotted line starts with a dot (two in wire form). */
        private void text(final int length, final boolean dot)
        {
            final int end = position + length;
            if (length == 0)
            {
                return;
            }
            if (dot)
            {
                bytes[position++] = '.';
                if (stuffed)
                {
                    bytes[position++] = '.';
                }
            }
            if (position < end)
            {
                bytes[position++] = ALNUM[random.nextInt(ALNUM.length)];
            }
            while (position < end)
            {
                final int b = 0x20 + random.nextInt(0xFF - 0x20 + 1);
                bytes[position++] = (byte)(b == 0x7F ? 'x' : b);
            }
        }
    }

    @Override
    public String toString()
    {
        return (stuffed ? "DATA " : "BDAT ") + stored.length + " octets" +
            (stored.length <= 16 ? " " + Arrays.toString(stored) : "");
    }
}
