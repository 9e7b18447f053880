package dev.relay.smtp;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Simulates a connection's read loop: each piece of input is appended after the bytes the parser left
 * unconsumed, which were first moved to the start of the buffer (compaction), as the net loop will do. The
 * buffer starts with a few bytes of junk so that indexes are absolute, not relative to zero.
 */
final class SplitHarness
{
    static final int BASE = 5;

    private SplitHarness()
    {
    }

    static byte[] ascii(final String s)
    {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    static String text(final ByteBuffer buf, final int from, final int to)
    {
        final StringBuilder sb = new StringBuilder();
        for (int i = from; i < to; i++)
        {
            sb.append((char)(buf.get(i) & 0xFF));
        }
        return sb.toString();
    }

    static ByteBuffer buffer(final byte[] content, final int offset, final boolean direct)
    {
        final ByteBuffer buf = direct ? ByteBuffer.allocateDirect(offset + content.length + 8) :
            ByteBuffer.allocate(offset + content.length + 8);
        for (int i = 0; i < offset; i++)
        {
            buf.put(i, (byte)'#');
        }
        for (int i = 0; i < content.length; i++)
        {
            buf.put(offset + i, content[i]);
        }
        return buf;
    }

    /** The ways to cut {@code length} bytes into reads: whole, byte by byte, and in two at every offset. */
    static List<int[]> splits(final int length)
    {
        final List<int[]> result = new ArrayList<>();
        result.add(new int[]{length});
        final int[] each = new int[length];
        for (int i = 0; i < length; i++)
        {
            each[i] = i + 1;
        }
        result.add(each);
        for (int cut = 1; cut < length; cut++)
        {
            result.add(new int[]{cut, length});
        }
        return result;
    }

    /** Turns arbitrary cut points into sorted piece ends in (0, length]. */
    static int[] pieceEnds(final List<Integer> cuts, final int length)
    {
        final int[] ends = cuts.stream().mapToInt(c -> Math.floorMod(c, length + 1)).filter(c -> c > 0)
            .sorted().distinct().toArray();
        final int[] result = java.util.Arrays.copyOf(ends, ends.length + 1);
        result[ends.length] = length;
        return result;
    }

    /** Feeds {@code input} in pieces ending at {@code pieceEnds} to a fresh parser; returns what it reported. */
    static List<String> runParser(final byte[] input, final int[] pieceEnds, final boolean direct, final int maxLine)
    {
        final SmtpCommandParser parser = new SmtpCommandParser(maxLine);
        final ParsedCommand out = new ParsedCommand();
        final ByteBuffer buf = direct ? ByteBuffer.allocateDirect(BASE + input.length + 8) :
            ByteBuffer.allocate(BASE + input.length + 8);
        final List<String> results = new ArrayList<>();
        int fill = BASE;
        int pos = BASE;
        int taken = 0;
        for (final int pieceEnd : pieceEnds)
        {
            for (int i = taken; i < pieceEnd; i++)
            {
                buf.put(fill++, input[i]);
            }
            taken = pieceEnd;
            while (true)
            {
                final boolean wasDiscarding = parser.isDiscarding();
                final int code = parser.parse(buf, pos, fill, out);
                assertEquals(0, buf.position());
                assertEquals(buf.capacity(), buf.limit());
                assertTrue(out.end() >= pos && out.end() <= fill, "end out of range: " + out);
                if (code == SmtpCommandParser.NEED_MORE)
                {
                    if (parser.isDiscarding())
                    {
                        assertEquals(fill, out.end(), "discarding consumes everything");
                    }
                    else
                    {
                        assertTrue(!wasDiscarding, "left discarding without LINE_TOO_LONG");
                        assertEquals(pos, out.end(), "NEED_MORE consumes nothing");
                    }
                    pos = out.end();
                    break;
                }
                assertTrue(out.end() > pos, "a result must consume bytes");
                results.add(describe(code, buf, out));
                pos = out.end();
            }
            // Compaction: keep [pos, fill) at BASE.
            for (int i = pos; i < fill; i++)
            {
                buf.put(BASE + i - pos, buf.get(i));
            }
            fill = BASE + fill - pos;
            pos = BASE;
        }
        results.add("pending=" + text(buf, pos, fill) + (parser.isDiscarding() ? " discarding" : ""));
        return results;
    }

    static String describe(final int code, final ByteBuffer buf, final ParsedCommand out)
    {
        switch (code)
        {
            case SmtpCommandParser.COMMAND:
                assertTrue(out.lineStart() <= out.verbEnd() && out.verbEnd() <= out.argStart());
                assertTrue(out.argStart() <= out.argEnd() && out.argEnd() <= out.end() - 2);
                return out.verb() + "[" + text(buf, out.argStart(), out.argEnd()) + "]";
            case SmtpCommandParser.LINE_TOO_LONG:
                return "LINE_TOO_LONG";
            case SmtpCommandParser.BARE_LF:
                return "BARE_LF";
            case SmtpCommandParser.BAD_BYTES:
                return "BAD_BYTES";
            default:
                throw new AssertionError("unexpected code " + code);
        }
    }

    /** What the DATA scanner reported for one input. */
    record ScanResult(
        boolean ended, String body, String rest, boolean bareLf, boolean bareCr, boolean nul, boolean eightBit,
        int maxLineLength, int receivedHeaders, boolean headersEnded)
    {
    }

    static ScanResult runScanner(final byte[] input, final int[] pieceEnds, final boolean direct)
    {
        final DataScanner scanner = new DataScanner();
        scanner.reset();
        final ByteBuffer buf = direct ? ByteBuffer.allocateDirect(BASE + input.length + 8) :
            ByteBuffer.allocate(BASE + input.length + 8);
        final ByteArrayOutputStream body = new ByteArrayOutputStream();
        int fill = BASE;
        int pos = BASE;
        int taken = 0;
        boolean ended = false;
        for (final int pieceEnd : pieceEnds)
        {
            for (int i = taken; i < pieceEnd; i++)
            {
                buf.put(fill++, input[i]);
            }
            taken = pieceEnd;
            if (!ended)
            {
                final int code = scanner.scan(buf, pos, fill);
                assertEquals(0, buf.position());
                assertTrue(scanner.bodyEnd() >= pos && scanner.bodyEnd() <= fill, "bodyEnd out of range");
                for (int i = pos; i < scanner.bodyEnd(); i++)
                {
                    body.write(buf.get(i));
                }
                if (code == DataScanner.END_FOUND)
                {
                    ended = true;
                    assertEquals(scanner.bodyEnd() + 3, scanner.resumeAt());
                    assertEquals(".\r\n", text(buf, scanner.bodyEnd(), scanner.resumeAt()));
                }
                else
                {
                    assertEquals(DataScanner.NEED_MORE, code);
                    assertEquals(scanner.bodyEnd(), scanner.resumeAt());
                    assertTrue(fill - scanner.bodyEnd() <= 2, "holds back at most '.' CR");
                }
                pos = scanner.resumeAt();
            }
            for (int i = pos; i < fill; i++)
            {
                buf.put(BASE + i - pos, buf.get(i));
            }
            fill = BASE + fill - pos;
            pos = BASE;
        }
        final String rest = text(buf, pos, fill);
        return new ScanResult(
            ended,
            new String(body.toByteArray(), StandardCharsets.ISO_8859_1),
            rest,
            scanner.sawBareLf(),
            scanner.sawBareCr(),
            scanner.sawNul(),
            scanner.sawEightBit(),
            scanner.maxLineLength(),
            scanner.receivedHeaders(),
            scanner.headersEnded());
    }
}
