package dev.relay.smtp;

/**
 * Dot-stuffing, the transparency of RFC 5321 §4.5.2, written once for both sides of SMTP: a line of content that
 * begins with a dot gets one more, so only {@code <CRLF>.<CRLF>} can end DATA, and the receiver takes the first dot
 * of such a line away. The relay keeps DATA bodies in wire form (stuffed) from end to end; what has to stuff is
 * content made or received raw — a BDAT body going to a peer without CHUNKING, a DSN — and what has to un-stuff is
 * code that reads content (a DSN quoting the original's header lines).
 * <p>
 * An instance stuffs a raw body streamed in parts ({@link #stuff}): a dot at the start of a line is doubled and a
 * bare LF becomes CRLF, so the peer can see the end of data only where the writer puts it; the line state carries
 * across parts. Owned by one thread; no allocation.
 */
public final class DotStuffing
{
    /** Where stuffed bytes go, a run at a time. */
    @FunctionalInterface
    public interface Output
    {
        void write(byte[] bytes, int from, int to);
    }

    private static final byte[] DOT = {'.'};
    private static final byte[] CR = {'\r'};

    private boolean lineStart = true;
    private boolean lastCr;

    /** A new body starts: at the start of a line. */
    public void reset()
    {
        lineStart = true;
        lastCr = false;
    }

    /**
     * Writes {@code part[0, length)} stuffed to {@code out}: at most twice as many bytes as it reads.
     *
     * @return true when what was written so far ends a line (with CRLF).
     */
    public boolean stuff(final byte[] part, final int length, final Output out)
    {
        int segment = 0;
        for (int i = 0; i < length; i++)
        {
            final byte b = part[i];
            if (b == '.' && lineStart)
            {
                out.write(part, segment, i);
                out.write(DOT, 0, 1);
                segment = i;
            }
            else if (b == '\n' && !lastCr)
            {
                out.write(part, segment, i);
                out.write(CR, 0, 1);
                segment = i;
            }
            lastCr = b == '\r';
            lineStart = b == '\n';
        }
        out.write(part, segment, length);
        return lineStart;
    }

    /** Whether a line of content needs a dot in front of it on the wire. */
    public static boolean needsDot(final byte[] line, final int from, final int to)
    {
        return from < to && line[from] == '.';
    }

    /** Where the content of the wire-form line at {@code wire[start, end)} begins: past a dot added for transparency. */
    public static int contentStart(final byte[] wire, final int start, final int end)
    {
        return start < end && wire[start] == '.' ? start + 1 : start;
    }
}
