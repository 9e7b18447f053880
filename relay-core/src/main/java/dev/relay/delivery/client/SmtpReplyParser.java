package dev.relay.delivery.client;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Incremental parser of SMTP server replies (RFC 5321 §4.2): {@code ddd-text} continuation lines, then one
 * {@code ddd text} (or bare {@code ddd}) last line, each ended by CRLF; a bare LF is tolerated from peers. The
 * enhanced status code (RFC 3463 {@code class.subject.detail}, RFC 2034) is recognised after the code of the first
 * line when its class matches the reply's (2, 4 or 5).
 * <p>
 * Only complete lines are consumed: a partial line stays in the caller's buffer and is offered again with more
 * bytes, so every split of the same input gives the same replies. The lines of a reply not yet complete are kept
 * here, bounded: a line over {@link #MAX_LINE_BYTES} (terminator included), a reply over {@link #MAX_REPLY_BYTES}
 * or a line that does not start with a three-digit code {@code 1xx}..{@code 5xx} is a {@link #PROTOCOL_ERROR},
 * sticky until {@link #reset()}.
 * <p>
 * One per client connection, used on its loop thread only. Allocates nothing per line; the text buffer grows (up
 * to the reply limit) for long replies only, and the {@code String} accessors allocate: they are for the rare
 * final and diagnostic use.
 */
public final class SmtpReplyParser
{
    public static final int MAX_LINE_BYTES = 4096;
    public static final int MAX_REPLY_BYTES = 64 * 1024;

    /** No complete reply yet: the complete lines were consumed up to {@link #end()}. */
    public static final int NEED_MORE = 0;
    /** A reply ends at {@link #end()}: read it with {@link #code()}, {@link #text()} and friends. */
    public static final int REPLY = 1;
    /** The peer is broken ({@link #error()} says how); the connection should be dropped. */
    public static final int PROTOCOL_ERROR = 2;

    private byte[] text = new byte[256];
    private int textLength;
    private int replyBytes;
    private int lineCount;
    private int code;
    private int end;
    private boolean complete;
    private String error;

    /**
     * Consumes the complete lines in {@code buffer[from, to)} (absolute indexes; position and limit untouched) up to
     * and including the end of the next reply.
     *
     * @return {@link #NEED_MORE}, {@link #REPLY} or {@link #PROTOCOL_ERROR}; {@link #end()} is the index consumed to.
     */
    public int parse(final ByteBuffer buffer, final int from, final int to)
    {
        end = from;
        if (error != null)
        {
            return PROTOCOL_ERROR;
        }
        if (complete)
        {
            startReply();
        }
        int lineStart = from;
        for (int i = from; i < to; i++)
        {
            if (buffer.get(i) == '\n')
            {
                final int lineBytes = i + 1 - lineStart;
                if (lineBytes > MAX_LINE_BYTES)
                {
                    return fail("reply line too long");
                }
                replyBytes += lineBytes;
                if (replyBytes > MAX_REPLY_BYTES)
                {
                    return fail("reply too long");
                }
                final int contentEnd = i > lineStart && buffer.get(i - 1) == '\r' ? i - 1 : i;
                final int kind = line(buffer, lineStart, contentEnd);
                lineStart = i + 1;
                end = lineStart;
                if (kind < 0)
                {
                    return fail("malformed reply");
                }
                if (kind == 1)
                {
                    complete = true;
                    return REPLY;
                }
            }
            else if (i + 1 - lineStart >= MAX_LINE_BYTES)
            {
                return fail("reply line too long");
            }
        }
        return NEED_MORE;
    }

    /** Forgets any partial reply and a protocol error. */
    public void reset()
    {
        startReply();
        error = null;
        end = 0;
    }

    /** The index up to which the last {@link #parse} consumed. */
    public int end()
    {
        return end;
    }

    /** The reply code (of the last line, as RFC 5321 §4.2.1 reads a multiline reply). */
    public int code()
    {
        return code;
    }

    /** Lines in the reply. */
    public int lineCount()
    {
        return lineCount;
    }

    /** Why the peer's reply was refused, once {@link #PROTOCOL_ERROR} was returned; else null. */
    public String error()
    {
        return error;
    }

    /** The enhanced status code of the reply ({@code "5.1.1"}), or null when the first line carries none. Allocates. */
    public String enhancedCode()
    {
        final int length = enhancedLength(0, firstLineEnd());
        return length == 0 ? null : new String(text, 0, length, StandardCharsets.US_ASCII);
    }

    /** The text of every line after {@code ddd-} / {@code ddd }, lines joined by {@code '\n'}. Allocates. */
    public String text()
    {
        return new String(text, 0, textLength, StandardCharsets.UTF_8);
    }

    /**
     * The human text for logs and DSNs: each line with the code, separator and a leading enhanced code removed,
     * lines joined by a space. Allocates.
     */
    public String detail()
    {
        final StringBuilder out = new StringBuilder(textLength);
        int lineStart = 0;
        while (lineStart <= textLength)
        {
            int lineEnd = lineStart;
            while (lineEnd < textLength && text[lineEnd] != '\n')
            {
                lineEnd++;
            }
            int start = lineStart + enhancedLength(lineStart, lineEnd);
            while (start < lineEnd && text[start] == ' ')
            {
                start++;
            }
            if (start < lineEnd)
            {
                if (out.length() > 0)
                {
                    out.append(' ');
                }
                out.append(new String(text, start, lineEnd - start, StandardCharsets.UTF_8));
            }
            lineStart = lineEnd + 1;
        }
        return out.toString();
    }

    private void startReply()
    {
        complete = false;
        textLength = 0;
        replyBytes = 0;
        lineCount = 0;
        code = 0;
    }

    private int fail(final String reason)
    {
        error = reason;
        return PROTOCOL_ERROR;
    }

    /** @return 1 for a last line, 0 for a continuation line, -1 for a malformed one. */
    private int line(final ByteBuffer buffer, final int start, final int contentEnd)
    {
        final int length = contentEnd - start;
        if (length < 3)
        {
            return -1;
        }
        final int d0 = buffer.get(start) - '0';
        final int d1 = buffer.get(start + 1) - '0';
        final int d2 = buffer.get(start + 2) - '0';
        if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9)
        {
            return -1;
        }
        final int kind;
        if (length == 3 || buffer.get(start + 3) == ' ')
        {
            kind = 1;
        }
        else if (buffer.get(start + 3) == '-')
        {
            kind = 0;
        }
        else
        {
            return -1;
        }
        code = d0 * 100 + d1 * 10 + d2;
        final int textStart = Math.min(start + 4, contentEnd);
        final int textBytes = contentEnd - textStart;
        ensureText(textLength + textBytes + 1);
        if (lineCount > 0)
        {
            text[textLength++] = '\n';
        }
        lineCount++;
        for (int i = 0; i < textBytes; i++)
        {
            text[textLength + i] = buffer.get(textStart + i);
        }
        textLength += textBytes;
        return kind;
    }

    private void ensureText(final int capacity)
    {
        if (capacity > text.length)
        {
            final byte[] grown = new byte[Math.min(Math.max(capacity, text.length * 2), MAX_REPLY_BYTES + 1)];
            System.arraycopy(text, 0, grown, 0, textLength);
            text = grown;
        }
    }

    private int firstLineEnd()
    {
        int i = 0;
        while (i < textLength && text[i] != '\n')
        {
            i++;
        }
        return i;
    }

    /** Length of an RFC 3463 code at {@code text[start, end)} of the reply's class followed by a space or the end. */
    private int enhancedLength(final int start, final int end)
    {
        if (end - start < 5 || text[start] - '0' != code / 100 || code / 100 == 1 || code / 100 == 3)
        {
            return 0;
        }
        if (text[start + 1] != '.')
        {
            return 0;
        }
        int i = start + 2;
        final int subjectDigits = digits(i, end);
        if (subjectDigits < 1 || subjectDigits > 3)
        {
            return 0;
        }
        i += subjectDigits;
        if (i >= end || text[i] != '.')
        {
            return 0;
        }
        i++;
        final int detailDigits = digits(i, end);
        if (detailDigits < 1 || detailDigits > 3)
        {
            return 0;
        }
        i += detailDigits;
        if (i < end && text[i] != ' ')
        {
            return 0;
        }
        return i - start;
    }

    private int digits(final int start, final int end)
    {
        int i = start;
        while (i < end && text[i] >= '0' && text[i] <= '9')
        {
            i++;
        }
        return i - start;
    }
}
