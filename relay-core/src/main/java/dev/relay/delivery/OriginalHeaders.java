package dev.relay.delivery;

import dev.relay.smtp.DotStuffing;

import java.util.ArrayList;
import java.util.List;

import static dev.relay.delivery.DsnBuilder.MAX_LINE_OCTETS;

/**
 * The header fields of an original message as a DSN's {@code text/rfc822-headers} part quotes them (RFC 6522):
 * read from the spooled body in wire form, un-stuffed, up to the end of the header section or the first line that
 * is no header field.
 * <p>
 * Stateless; any thread; allocates the lines it returns (a control path).
 */
final class OriginalHeaders
{
    private OriginalHeaders()
    {
    }

    /**
     * The header block's lines, un-stuffed, without line ends: header fields (RFC 5322 §2.2: a name of printable
     * ASCII but ':', then ':') and their folded continuations. Stops at the first empty line, and at the first line
     * that is neither (the body of a message without an empty line, or what follows a header section cut short):
     * whatever the original, the text/rfc822-headers part holds only header fields.
     */
    static List<byte[]> lines(final byte[] wire, final int offset, final int length)
    {
        final List<byte[]> lines = new ArrayList<>();
        final int end = offset + length;
        int start = offset;
        while (start < end)
        {
            int lf = start;
            while (lf < end && wire[lf] != '\n')
            {
                lf++;
            }
            int lineEnd = lf;
            if (lineEnd > start && wire[lineEnd - 1] == '\r')
            {
                lineEnd--;
            }
            if (lineEnd == start)
            {
                break;
            }
            final int from = DotStuffing.contentStart(wire, start, lineEnd);
            if (!(isContinuation(wire, from, lineEnd) && !lines.isEmpty()) && !isField(wire, from, lineEnd))
            {
                break;
            }
            final byte[] line = new byte[lineEnd - from];
            System.arraycopy(wire, from, line, 0, line.length);
            for (int i = 0; i < line.length; i++)
            {
                if (line[i] == '\r')
                {
                    line[i] = ' ';
                }
            }
            lines.add(line);
            start = lf + 1;
        }
        return lines;
    }

    private static boolean isContinuation(final byte[] wire, final int from, final int end)
    {
        return from < end && (wire[from] == ' ' || wire[from] == '\t');
    }

    /**
     * RFC 5322 §3.6.8: field-name = 1*ftext (printable ASCII but ':'), then ':'; the name short enough that the
     * colon stays on the first line when {@link WireLines} splits a long one.
     */
    private static boolean isField(final byte[] wire, final int from, final int end)
    {
        int p = from;
        while (p < end && wire[p] > ' ' && wire[p] < 0x7f && wire[p] != ':')
        {
            p++;
        }
        return p > from && p < end && wire[p] == ':' && p - from < MAX_LINE_OCTETS - 1;
    }

}
