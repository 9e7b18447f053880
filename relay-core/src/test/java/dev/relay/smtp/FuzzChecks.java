package dev.relay.smtp;

import java.nio.ByteBuffer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Invariants shared by the Jazzer fuzz test, the bounded random loop and the jqwik properties. */
public final class FuzzChecks
{
    private FuzzChecks()
    {
    }

    static void checkMail(final MailArguments args, final ByteBuffer buf, final int start, final int end)
    {
        checkPath(args, args.parseMail(buf, start, end), start, end);
        checkPath(args, args.parseRcpt(buf, start, end), start, end);
        if (args.parseBdat(buf, start, end) == MailArguments.OK)
        {
            assertTrue(args.bdatSize() >= 0);
            assertEquals(args.bdatSize(), MailArguments.parseBdatSize(buf, start, end));
        }
        else
        {
            assertEquals(-1, MailArguments.parseBdatSize(buf, start, end));
        }
    }

    private static void checkPath(final MailArguments args, final int result, final int start, final int end)
    {
        assertTrue(result >= MailArguments.OK && result <= MailArguments.NEEDS_SMTPUTF8);
        if (result == MailArguments.OK)
        {
            assertTrue(start <= args.pathStart() && args.pathStart() <= args.pathEnd() && args.pathEnd() < end);
            assertTrue(args.domainStart() == -1 ||
                (args.domainStart() > args.pathStart() && args.domainStart() < args.pathEnd()));
            assertTrue(args.pathEnd() - args.pathStart() <= MailArguments.MAX_PATH_LENGTH - 2);
        }
    }

    /** Runs all three parsers over {@code data} as a conversation would, cut at {@code cut}. */
    static void checkAll(final byte[] data, final int cut, final int maxLine)
    {
        final int[] pieces = cut > 0 && cut < data.length ? new int[]{cut, data.length} : new int[]{data.length};
        assertEquals(
            SplitHarness.runParser(data, new int[]{data.length}, false, maxLine),
            SplitHarness.runParser(data, pieces, true, maxLine));
        assertEquals(
            SplitHarness.runScanner(data, new int[]{data.length}, true),
            SplitHarness.runScanner(data, pieces, false));

        final ByteBuffer buf = SplitHarness.buffer(data, 1, false);
        final SmtpCommandParser parser = new SmtpCommandParser(maxLine);
        final ParsedCommand out = new ParsedCommand();
        final MailArguments args = new MailArguments();
        int pos = 1;
        final int limit = 1 + data.length;
        while (pos < limit)
        {
            final int code = parser.parse(buf, pos, limit, out);
            assertTrue(out.end() >= pos && out.end() <= limit);
            if (code == SmtpCommandParser.COMMAND)
            {
                assertTrue(out.argStart() >= out.lineStart() && out.argEnd() <= out.end());
                checkMail(args, buf, out.argStart(), out.argEnd());
            }
            else if (code == SmtpCommandParser.NEED_MORE)
            {
                break;
            }
            pos = out.end();
        }
        checkMail(args, buf, 1, limit);
    }

    /**
     * The fuzz input layout shared by the conversation targets: byte 0 holds flags (bits 0-2: the number of cuts),
     * then two bytes per cut (a big-endian offset into the payload, modulo its length + 1), then the payload.
     */
    public static byte[] payload(final byte[] data)
    {
        final int cuts = data.length == 0 ? 0 : data[0] & 7;
        return java.util.Arrays.copyOfRange(data, Math.min(data.length, 1 + 2 * cuts), data.length);
    }

    /** The ends of the payload's pieces, ascending, the last one the payload's length (see {@link #payload}). */
    public static int[] pieceEnds(final byte[] data)
    {
        final int cuts = data.length == 0 ? 0 : data[0] & 7;
        final int header = Math.min(data.length, 1 + 2 * cuts);
        final int length = data.length - header;
        final int[] ends = new int[cuts + 1];
        for (int i = 0; i < cuts; i++)
        {
            final int hi = 1 + 2 * i < header ? data[1 + 2 * i] & 0xFF : 0;
            final int lo = 2 + 2 * i < header ? data[2 + 2 * i] & 0xFF : 0;
            ends[i] = ((hi << 8) | lo) % (length + 1);
        }
        ends[cuts] = length;
        java.util.Arrays.sort(ends);
        return ends;
    }
}
