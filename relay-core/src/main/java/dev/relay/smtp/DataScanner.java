package dev.relay.smtp;

import java.nio.ByteBuffer;

/**
 * Finds the end of a DATA body, {@code <CRLF>.<CRLF>} (RFC 5321 §4.1.1.4), across read boundaries, and records
 * what the body contained on the way. The body is left in wire form: still dot-stuffed, CRLF line ends; the
 * CRLF before the final "." belongs to the body, the ".CRLF" does not.
 * <p>
 * Only CR LF "." CR LF ends the data. Variants such as {@code <LF>.<LF>}, {@code <CRLF>.<LF>},
 * {@code <LF>.<CRLF>} or {@code <CR>.<CR>} do not (SMTP smuggling, CVE-2023-51764, CVE-2023-51765,
 * CVE-2023-51766); they only set {@link #sawBareLf()} / {@link #sawBareCr()}, which the session turns into a
 * refusal (Postfix {@code smtpd_forbid_bare_newline}).
 * <p>
 * Use: {@link #reset()} when DATA is accepted, then call {@link #scan} with each unconsumed range. Store
 * {@code [from, bodyEnd())}; on {@link #NEED_MORE} keep {@code [resumeAt(), to)} (a held-back "." or ".CR" at a
 * line start, which may begin the terminator) and call again from there once more bytes arrived; on
 * {@link #END_FOUND} the next command starts at {@code resumeAt()}.
 * <p>
 * Not thread safe: one instance per connection, used on its loop thread. Does not allocate.
 */
public final class DataScanner
{
    /** The terminator has not been seen yet. */
    public static final int NEED_MORE = 0;
    /** The terminator was found; {@link #resumeAt()} is just after it. */
    public static final int END_FOUND = 1;

    /** After CRLF (or at the start of the body): a "." here may begin the terminator. */
    private static final int LINE_START = 0;
    /** Inside a line, or at the start of a line that followed a bare LF. */
    private static final int IN_LINE = 1;
    /** A CR was seen in a line; its meaning depends on the next byte. */
    private static final int CR_SEEN = 2;
    /** LINE_START then ".": held back. */
    private static final int DOT = 3;
    /** LINE_START then "." CR: held back. */
    private static final int DOT_CR = 4;
    /** The terminator has been found; {@link #reset()} before the next body. */
    private static final int DONE = 5;

    private static final byte CR = '\r';
    private static final byte LF = '\n';
    private static final byte DOT_BYTE = '.';

    /** "received:" in lower case; letters are matched with bit 5 set, the colon exactly. */
    private static final byte[] RECEIVED = {'r', 'e', 'c', 'e', 'i', 'v', 'e', 'd', ':'};
    private static final int NOT_MATCHING = -1;

    private static final long ONES = 0x0101010101010101L;
    private static final long HIGHS = 0x8080808080808080L;
    private static final long CRS = ONES * CR;
    private static final long LFS = ONES * LF;

    private int state;
    private int lineLength;
    private int maxLineLength;
    /** How many bytes of "Received:" the current line has matched, or NOT_MATCHING. */
    private int headerMatch;
    private boolean headersEnded;
    private int receivedHeaders;
    private boolean sawBareLf;
    private boolean sawBareCr;
    private boolean sawNul;
    private boolean sawEightBit;
    private int bodyEnd;
    private int resumeAt;

    public DataScanner()
    {
        reset();
    }

    /** Starts a new body: at a line start, as if a CRLF had just been read, and in the header section. */
    public void reset()
    {
        state = LINE_START;
        lineLength = 0;
        maxLineLength = 0;
        headerMatch = 0;
        headersEnded = false;
        receivedHeaders = 0;
        sawBareLf = false;
        sawBareCr = false;
        sawNul = false;
        sawEightBit = false;
        bodyEnd = 0;
        resumeAt = 0;
    }

    /**
     * Scans {@code buf[from, to)}, which continues the body at the point where the previous call left off
     * ({@link #resumeAt()} of that call, after the caller's compaction).
     *
     * @return {@link #END_FOUND} or {@link #NEED_MORE}; see {@link #bodyEnd()} and {@link #resumeAt()}.
     */
    public int scan(final ByteBuffer buf, final int from, final int to)
    {
        if (state == DONE)
        {
            bodyEnd = from;
            resumeAt = from;
            return END_FOUND;
        }

        int state = this.state;
        int lineLength = this.lineLength;
        int headerMatch = this.headerMatch;
        int i = from;

        while (i < to)
        {
            if (state == IN_LINE && headerMatch == NOT_MATCHING)
            {
                while (true)
                {
                    // Fast path: skip 8 ordinary bytes at a time (no CR, LF, NUL or 8-bit byte among them), then
                    // byte by byte to the next one that is not ordinary.
                    while (i + 8 <= to)
                    {
                        final long word = buf.getLong(i);
                        if (((word - ONES) & ~word & HIGHS) != 0 ||
                            (word & HIGHS) != 0 ||
                            hasByte(word, CRS) ||
                            hasByte(word, LFS))
                        {
                            break;
                        }
                        i += 8;
                        lineLength += 8;
                    }
                    byte c;
                    while (i < to && (c = buf.get(i)) != CR && c != LF && c > 0)
                    {
                        i++;
                        lineLength++;
                    }
                    // A body line ending in CRLF, followed by a line that does not start with ".", is all the state
                    // machine below would see: stay here. (Short lines made the per-line path cost more than the
                    // bytes: smtp-source's 20-byte lines halved the scan's speed.)
                    if (headersEnded && i + 2 < to && buf.get(i) == CR && buf.get(i + 1) == LF &&
                        buf.get(i + 2) != DOT_BYTE)
                    {
                        endLine(lineLength);
                        lineLength = 0;
                        i += 2;
                        continue;
                    }
                    break;
                }
                if (i >= to)
                {
                    break;
                }
            }

            final byte b = buf.get(i);
            switch (state)
            {
                case LINE_START:
                    if (b == DOT_BYTE)
                    {
                        state = DOT;
                        i++;
                        continue;
                    }
                    state = IN_LINE;
                    break;

                case DOT:
                    if (b == CR)
                    {
                        state = DOT_CR;
                        i++;
                        continue;
                    }
                    // A stuffed or ordinary leading "."; it ends the "Received:" match of this line.
                    state = IN_LINE;
                    lineLength = 1;
                    headerMatch = NOT_MATCHING;
                    break;

                case DOT_CR:
                    if (b == LF)
                    {
                        this.state = DONE;
                        this.lineLength = 0;
                        this.headerMatch = NOT_MATCHING;
                        bodyEnd = i - 2;
                        resumeAt = i + 1;
                        return END_FOUND;
                    }
                    // ".", then a bare CR: part of an ordinary line.
                    sawBareCr = true;
                    state = IN_LINE;
                    lineLength = 2;
                    headerMatch = NOT_MATCHING;
                    break;

                case CR_SEEN:
                    if (b == LF)
                    {
                        endLine(lineLength);
                        lineLength = 0;
                        headerMatch = headersEnded ? NOT_MATCHING : 0;
                        state = LINE_START;
                        i++;
                        continue;
                    }
                    sawBareCr = true;
                    lineLength++;
                    headerMatch = NOT_MATCHING;
                    state = IN_LINE;
                    break;

                default:
                    break;
            }

            // IN_LINE: b is a byte of an ordinary line.
            if (b == CR)
            {
                state = CR_SEEN;
            }
            else if (b == LF)
            {
                sawBareLf = true;
                endLine(lineLength);
                lineLength = 0;
                headerMatch = headersEnded ? NOT_MATCHING : 0;
                // Not LINE_START: only CRLF "." CRLF ends the data.
            }
            else
            {
                if (b == 0)
                {
                    sawNul = true;
                }
                else if (b < 0)
                {
                    sawEightBit = true;
                }
                if (headerMatch != NOT_MATCHING)
                {
                    final int expected = RECEIVED[headerMatch];
                    if ((expected == ':' ? b : (b | 0x20)) == expected)
                    {
                        if (++headerMatch == RECEIVED.length)
                        {
                            receivedHeaders++;
                            headerMatch = NOT_MATCHING;
                        }
                    }
                    else
                    {
                        headerMatch = NOT_MATCHING;
                    }
                }
                lineLength++;
            }
            i++;
        }

        if (state == DOT || state == DOT_CR)
        {
            // Hold back "." or ".CR": the caller rescans it from the line start with more bytes.
            bodyEnd = to - (state == DOT ? 1 : 2);
            state = LINE_START;
        }
        else
        {
            bodyEnd = to;
        }
        resumeAt = bodyEnd;
        this.state = state;
        this.lineLength = lineLength;
        this.headerMatch = headerMatch;
        return NEED_MORE;
    }

    private void endLine(final int length)
    {
        if (length > maxLineLength)
        {
            maxLineLength = length;
        }
        if (length == 0)
        {
            headersEnded = true;
        }
    }

    private static boolean hasByte(final long word, final long pattern)
    {
        final long x = word ^ pattern;
        return ((x - ONES) & ~x & HIGHS) != 0;
    }

    /** End (exclusive) of the body bytes of the last scanned range that may be stored now. */
    public int bodyEnd()
    {
        return bodyEnd;
    }

    /** Where the next scan starts: {@link #bodyEnd()} on NEED_MORE, just after the terminator on END_FOUND. */
    public int resumeAt()
    {
        return resumeAt;
    }

    /** True once the terminator was found. */
    public boolean isDone()
    {
        return state == DONE;
    }

    /** An LF not preceded by CR was seen (RFC 5321 §2.3.8). */
    public boolean sawBareLf()
    {
        return sawBareLf;
    }

    /** A CR not followed by LF was seen (RFC 5321 §2.3.8). */
    public boolean sawBareCr()
    {
        return sawBareCr;
    }

    public boolean sawNul()
    {
        return sawNul;
    }

    /** A byte above 0x7F was seen: the body needs 8BITMIME (RFC 6152) or SMTPUTF8 downstream. */
    public boolean sawEightBit()
    {
        return sawEightBit;
    }

    /** The longest finished line so far in octets, excluding its CRLF (RFC 5321 §4.5.3.1.6: 1000 with CRLF). */
    public int maxLineLength()
    {
        return maxLineLength;
    }

    /** Header lines starting "Received:" (any case) before the first empty line: the hop count for loops. */
    public int receivedHeaders()
    {
        return receivedHeaders;
    }

    /** The empty line ending the header section has been seen. */
    public boolean headersEnded()
    {
        return headersEnded;
    }
}
