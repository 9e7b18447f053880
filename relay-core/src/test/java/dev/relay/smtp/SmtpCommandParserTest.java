package dev.relay.smtp;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import static dev.relay.smtp.SplitHarness.ascii;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SmtpCommandParserTest
{
    private static final int SMALL_MAX = 16;

    static Stream<Arguments> lines()
    {
        final String max510 = "NOOP " + "x".repeat(505);
        return Stream.of(
            Arguments.of(512, "EHLO example.com\r\n", List.of("EHLO[example.com]")),
            Arguments.of(512, "ehlo Example.COM\r\n", List.of("EHLO[Example.COM]")),
            Arguments.of(512, "mail FROM:<a@b.c>  \t \r\n", List.of("MAIL[FROM:<a@b.c>]")),
            Arguments.of(512, "MAIL   FROM:<a@b.c>\r\n", List.of("MAIL[FROM:<a@b.c>]")),
            Arguments.of(512, "QUIT\r\n", List.of("QUIT[]")),
            Arguments.of(512, "QUIT   \r\n", List.of("QUIT[]")),
            Arguments.of(512, "StartTLS\r\n", List.of("STARTTLS[]")),
            Arguments.of(512, "MAILX FROM:<a@b>\r\n", List.of("UNKNOWN[FROM:<a@b>]")),
            Arguments.of(512, "MAIL\tFROM:<a@b>\r\n", List.of("UNKNOWN[]")),
            Arguments.of(512, "MAI\r\n", List.of("UNKNOWN[]")),
            Arguments.of(512, " MAIL FROM:<a>\r\n", List.of("UNKNOWN[MAIL FROM:<a>]")),
            Arguments.of(512, "\r\n", List.of("UNKNOWN[]")),
            Arguments.of(512, "BDAT 100 LAST\r\n", List.of("BDAT[100 LAST]")),
            Arguments.of(512, "EHLO a\r\nMAIL FROM:<>\r\nRCPT TO:<b@c>\r\nDATA\r\n",
                List.of("EHLO[a]", "MAIL[FROM:<>]", "RCPT[TO:<b@c>]", "DATA[]")),
            Arguments.of(512, "RSET\r\nNOOP", List.of("RSET[]")),
            Arguments.of(512, "NOOP\n", List.of("BARE_LF")),
            Arguments.of(512, "\n", List.of("BARE_LF")),
            Arguments.of(512, "NOOP\nQUIT\r\n", List.of("BARE_LF", "QUIT[]")),
            Arguments.of(512, "NO\0OP\r\nQUIT\r\n", List.of("BAD_BYTES", "QUIT[]")),
            Arguments.of(512, "NO\rOP\r\n", List.of("BAD_BYTES")),
            Arguments.of(512, "NOOP\r\r\n", List.of("BAD_BYTES")),
            Arguments.of(512, "\r\r\n", List.of("BAD_BYTES")),
            Arguments.of(512, "NO\0OP\n", List.of("BARE_LF")),
            Arguments.of(512, max510 + "\r\n", List.of("NOOP[" + "x".repeat(505) + "]")),
            Arguments.of(512, max510 + "x\r\nQUIT\r\n", List.of("LINE_TOO_LONG", "QUIT[]")),
            Arguments.of(512, max510 + "x\nQUIT\r\n", List.of("BARE_LF", "QUIT[]")),
            Arguments.of(512, max510 + "xx\nQUIT\r\n", List.of("LINE_TOO_LONG", "QUIT[]")),
            Arguments.of(SMALL_MAX, "NOOP 012345678\r\n", List.of("NOOP[012345678]")),
            Arguments.of(SMALL_MAX, "NOOP 0123456789\r\n", List.of("LINE_TOO_LONG")),
            Arguments.of(SMALL_MAX, "NOOP 01234567890\r\nQUIT\r\n", List.of("LINE_TOO_LONG", "QUIT[]")),
            Arguments.of(SMALL_MAX, "NOOP 0123456789\nRSET\r\n", List.of("BARE_LF", "RSET[]")),
            Arguments.of(SMALL_MAX, "NOOP 0123456789a\nRSET\r\n", List.of("LINE_TOO_LONG", "RSET[]")),
            Arguments.of(SMALL_MAX, "NOOP 0\0\r23456789abcdefgh\r\nRSET\r\n", List.of("LINE_TOO_LONG", "RSET[]")),
            Arguments.of(SMALL_MAX, "x".repeat(40) + "\r\n" + "y".repeat(40) + "\r\nQUIT\r\n",
                List.of("LINE_TOO_LONG", "LINE_TOO_LONG", "QUIT[]")));
    }

    @ParameterizedTest
    @MethodSource("lines")
    void parsesTheSameWhateverTheSplit(final int max, final String input, final List<String> expected)
    {
        final byte[] bytes = ascii(input);
        for (final boolean direct : new boolean[]{false, true})
        {
            for (final int[] split : SplitHarness.splits(bytes.length))
            {
                final List<String> results = SplitHarness.runParser(bytes, split, direct, max);
                assertEquals(expected, results.subList(0, results.size() - 1),
                    () -> "split " + java.util.Arrays.toString(split) + " direct=" + direct);
            }
        }
    }

    @Test
    void keepsAnIncompleteLine()
    {
        final List<String> results = SplitHarness.runParser(ascii("QUIT\r\nNOOP\r"), new int[]{11}, false, 512);
        assertEquals(List.of("QUIT[]", "pending=NOOP\r"), results);
    }

    @Test
    void dropsAnOverlongLineAsItArrives()
    {
        final List<String> results = SplitHarness.runParser(ascii("x".repeat(40)), new int[]{10, 40}, true, 16);
        assertEquals(List.of("pending= discarding"), results);
    }

    @Test
    void reportsAbsoluteIndexes()
    {
        final ByteBuffer buf = SplitHarness.buffer(ascii("MAIL FROM:<a@b>\r\nQUIT"), 7, true);
        final SmtpCommandParser parser = new SmtpCommandParser(512);
        final ParsedCommand out = new ParsedCommand();

        assertEquals(SmtpCommandParser.COMMAND, parser.parse(buf, 7, 7 + 21, out));
        assertEquals(SmtpVerb.MAIL, out.verb());
        assertEquals(7, out.lineStart());
        assertEquals(11, out.verbEnd());
        assertEquals(12, out.argStart());
        assertEquals(22, out.argEnd());
        assertEquals(24, out.end());

        assertEquals(SmtpCommandParser.NEED_MORE, parser.parse(buf, 24, 28, out));
        assertEquals(24, out.end());
        assertEquals(0, buf.position());
    }

    @Test
    void rejectsAUselessMaximum()
    {
        assertThrows(IllegalArgumentException.class, () -> new SmtpCommandParser(2));
    }

    @Test
    void verbsCarryFlags()
    {
        assertEquals(true, SmtpVerb.DATA.endsGroup());
        assertEquals(false, SmtpVerb.MAIL.endsGroup());
        assertEquals(true, SmtpVerb.STARTTLS.allowedBeforeTls());
        assertEquals(false, SmtpVerb.MAIL.allowedBeforeTls());
        assertEquals(true, SmtpVerb.UNKNOWN.countsAsJunk());
        for (final SmtpVerb verb : SmtpVerb.values())
        {
            final ByteBuffer buf = ByteBuffer.wrap(ascii(verb.name().toLowerCase(java.util.Locale.ROOT)));
            assertEquals(verb, SmtpVerb.match(buf, 0, buf.capacity()));
        }
    }
}
