package dev.relay.smtp;

import java.nio.ByteBuffer;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import static dev.relay.smtp.MailArguments.ADDRESS_TOO_LONG;
import static dev.relay.smtp.MailArguments.BAD_PARAM_VALUE;
import static dev.relay.smtp.MailArguments.NEEDS_SMTPUTF8;
import static dev.relay.smtp.MailArguments.OK;
import static dev.relay.smtp.MailArguments.SYNTAX_ARGS;
import static dev.relay.smtp.MailArguments.SYNTAX_PATH;
import static dev.relay.smtp.MailArguments.UNKNOWN_PARAM;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MailArgumentsTest
{
    private static final int OFFSET = 3;
    private final MailArguments args = new MailArguments();

    private static String utf8(final String s)
    {
        return new String(s.getBytes(java.nio.charset.StandardCharsets.UTF_8), java.nio.charset.StandardCharsets.ISO_8859_1);
    }

    static Stream<Arguments> mail()
    {
        final String local64 = "l".repeat(64);
        final String domain255 = ("d".repeat(63) + ".").repeat(3) + "d".repeat(63);
        return Stream.of(
            Arguments.of("FROM:<a@b.c>", OK, "a@b.c"),
            Arguments.of("from:<A.B+c@Example-1.COM>", OK, "A.B+c@Example-1.COM"),
            Arguments.of("FROM: <a@b.c>", OK, "a@b.c"),
            Arguments.of("FROM:<>", OK, ""),
            Arguments.of("FROM:<> SIZE=0", OK, ""),
            Arguments.of("FROM:<@r1.x,@r2.y:a@b.c>", OK, "a@b.c"),
            Arguments.of("FROM:<\"a b\\\"c\"@b.c>", OK, "\"a b\\\"c\"@b.c"),
            Arguments.of("FROM:<\"\"@b.c>", OK, "\"\"@b.c"),
            Arguments.of("FROM:<a@[192.0.2.1]>", OK, "a@[192.0.2.1]"),
            Arguments.of("FROM:<a@[IPv6:2001:db8::1]>", OK, "a@[IPv6:2001:db8::1]"),
            Arguments.of("FROM:<a@[ipv6:1:2:3:4:5:6:7:8]>", OK, "a@[ipv6:1:2:3:4:5:6:7:8]"),
            Arguments.of("FROM:<a@[IPv6:::ffff:192.0.2.1]>", OK, "a@[IPv6:::ffff:192.0.2.1]"),
            Arguments.of("FROM:<a@[IPv6::]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@[IPv6:::]>", OK, "a@[IPv6:::]"),
            Arguments.of("FROM:<a@[IPv6::::]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@[IPv6:1:2:3:4:5:6:7]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@[IPv6:1:2:3:4:5:6:7:8:9]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@[IPv6:1::2::3]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@[IPv6:12345::1]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@[256.0.0.1]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@[1.2.3]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@[1.2.3.4.5]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@[0001.2.3.4]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@[x:y]>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@b.c> SIZE=1024 BODY=8BITMIME", OK, "a@b.c"),
            Arguments.of("FROM:<a@b.c>  body=7bit   size=9223372036854775807  ", OK, "a@b.c"),
            Arguments.of("FROM:<a@b.c> AUTH=<>", OK, "a@b.c"),
            Arguments.of("FROM:<a@b.c> SIZE=9223372036854775808", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> SIZE=", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> SIZE", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> SIZE=12a", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> SIZE=1 SIZE=2", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> BODY=BINARYMIME", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> SMTPUTF8=yes", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> RET=FULL", OK, "a@b.c"),
            Arguments.of("FROM:<a@b.c> ret=hdrs ENVID=QQ314159", OK, "a@b.c"),
            Arguments.of("FROM:<> RET=HDRS ENVID=a+2Bb+3Dc", OK, ""),
            Arguments.of("FROM:<a@b.c> ENVID=" + "x".repeat(100), OK, "a@b.c"),
            Arguments.of("FROM:<a@b.c> ENVID=" + "x".repeat(101), BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> RET=FULL RET=FULL", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> RET=FULL RET=HDRS", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> RET=PART", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> RET=", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> RET", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> ENVID=a ENVID=b", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> ENVID=", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> ENVID=a+2", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> ENVID=a+2b", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> ENVID=a+G0", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> ENVID=a+", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> ENVID=+0A", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> ENVID=+7F", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> ENVID=+C3+A9", BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<a@b.c> ENVID=a=b", SYNTAX_ARGS, null),
            Arguments.of("FROM:<a@b.c> NOTIFY=NEVER", UNKNOWN_PARAM, null),
            Arguments.of("FROM:<a@b.c> ORCPT=rfc822;a@b.c", UNKNOWN_PARAM, null),
            Arguments.of("FROM:<a@b.c> X-FOO", UNKNOWN_PARAM, null),
            Arguments.of("FROM:<a@b.c> -X", SYNTAX_ARGS, null),
            Arguments.of("FROM:<a@b.c> A=b=c", SYNTAX_ARGS, null),
            Arguments.of("FROM:<a@b.c>SIZE=1", SYNTAX_ARGS, null),
            Arguments.of("FROM:", SYNTAX_ARGS, null),
            Arguments.of("FROM:   ", SYNTAX_ARGS, null),
            Arguments.of("FROM <a@b.c>", SYNTAX_ARGS, null),
            Arguments.of("FRO", SYNTAX_ARGS, null),
            Arguments.of("", SYNTAX_ARGS, null),
            Arguments.of("TO:<a@b.c>", SYNTAX_ARGS, null),
            Arguments.of("FROM:a@b.c", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@b.c", SYNTAX_PATH, null),
            Arguments.of("FROM:<a>", SYNTAX_PATH, null),
            Arguments.of("FROM:<postmaster>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@>", SYNTAX_PATH, null),
            Arguments.of("FROM:<@b.c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a..b@c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<.a@c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a.@c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@b..c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@b.c.>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@-b.c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@b-.c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@b_c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a b@c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@b c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<\"a@b.c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<\"a\u0001\"@b.c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@" + "x".repeat(64) + ".c>", SYNTAX_PATH, null),
            Arguments.of("FROM:<" + local64 + "@b.c>", OK, local64 + "@b.c"),
            Arguments.of("FROM:<" + local64 + "l@b.c>", ADDRESS_TOO_LONG, null),
            Arguments.of("FROM:<a@" + domain255 + ">", ADDRESS_TOO_LONG, null),
            Arguments.of("FROM:<a@" + domain255.substring(4) + ">", OK, "a@" + domain255.substring(4)),
            Arguments.of("FROM:<" + local64 + "@" + domain255.substring(65) + ">", ADDRESS_TOO_LONG, null),
            Arguments.of("FROM:<" + local64 + "@" + domain255.substring(66) + ">", OK,
                local64 + "@" + domain255.substring(66)),
            Arguments.of(utf8("FROM:<j\u00f6rg@b\u00fccher.de> SMTPUTF8"), OK, utf8("j\u00f6rg@b\u00fccher.de")),
            Arguments.of(utf8("FROM:<\"j\u00f6rg\"@b.de> smtputf8"), OK, utf8("\"j\u00f6rg\"@b.de")),
            Arguments.of(utf8("FROM:<j\u00f6rg@b\u00fccher.de>"), NEEDS_SMTPUTF8, null),
            Arguments.of(utf8("FROM:<a@b\u00fccher.de> SIZE=1"), NEEDS_SMTPUTF8, null),
            Arguments.of(utf8("FROM:<a@b\u00fccher.de> SIZE=x"), BAD_PARAM_VALUE, null),
            Arguments.of("FROM:<j\u00f6rg@b.de> SMTPUTF8", SYNTAX_PATH, null),
            Arguments.of("FROM:<a@b.c> SIZE=\u00e9", SYNTAX_ARGS, null));
    }

    static Stream<Arguments> rcpt()
    {
        return Stream.of(
            Arguments.of("TO:<a@b.c>", OK, "a@b.c"),
            Arguments.of("to: <a@b.c>  ", OK, "a@b.c"),
            Arguments.of("TO:<postmaster>", OK, "postmaster"),
            Arguments.of("TO:<PostMaster>", OK, "PostMaster"),
            Arguments.of("TO:<@hop.example:a@b.c>", OK, "a@b.c"),
            Arguments.of("TO:<>", SYNTAX_PATH, null),
            Arguments.of("TO:<postmistress>", SYNTAX_PATH, null),
            Arguments.of("TO:<a@b.c> NOTIFY=NEVER", OK, "a@b.c"),
            Arguments.of("TO:<a@b.c> notify=success,Failure,DELAY ORCPT=rfc822;a@b.c", OK, "a@b.c"),
            Arguments.of("TO:<a@b.c> ORCPT=rfc822;a+2Bx@b.c NOTIFY=DELAY", OK, "a@b.c"),
            Arguments.of("TO:<a@b.c> ORCPT=x-local;" + "y".repeat(500 - 8), OK, "a@b.c"),
            Arguments.of("TO:<a@b.c> ORCPT=x-local;" + "y".repeat(500 - 7), BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> ORCPT=rfc822;+C3+A9@b.c", OK, "a@b.c"),
            Arguments.of("TO:<a@b.c> NOTIFY=SUCCESS,SUCCESS", OK, "a@b.c"),
            Arguments.of("TO:<a@b.c> NOTIFY=NEVER,SUCCESS", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> NOTIFY=FAILURE,NEVER", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> NOTIFY=SUCCESS,", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> NOTIFY=,SUCCESS", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> NOTIFY=SUCCES", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> NOTIFY=", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> NOTIFY", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> NOTIFY=NEVER NOTIFY=NEVER", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> ORCPT=rfc822;a ORCPT=rfc822;a", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> ORCPT=rfc822;", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> ORCPT=rfc822", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> ORCPT=;a@b.c", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> ORCPT=rfc(822);a@b.c", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> ORCPT=rfc822;a+0Db@b.c", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> ORCPT=rfc822;a+2bb@b.c", BAD_PARAM_VALUE, null),
            Arguments.of("TO:<a@b.c> ORCPT=rfc822;a=b", SYNTAX_ARGS, null),
            Arguments.of("TO:<a@b.c> RET=FULL", UNKNOWN_PARAM, null),
            Arguments.of("TO:<a@b.c> ENVID=x", UNKNOWN_PARAM, null),
            Arguments.of("TO:<a@b.c> SMTPUTF8", UNKNOWN_PARAM, null),
            Arguments.of("TO:<a@b.c> x", UNKNOWN_PARAM, null),
            Arguments.of("TO:<a@b.c>x", SYNTAX_ARGS, null),
            Arguments.of("FROM:<a@b.c>", SYNTAX_ARGS, null),
            Arguments.of(utf8("TO:<\u00fc@b.c>"), NEEDS_SMTPUTF8, null));
    }

    @ParameterizedTest
    @MethodSource("mail")
    void parsesMail(final String argument, final int expected, final String path)
    {
        for (final boolean direct : new boolean[]{false, true})
        {
            final byte[] bytes = SplitHarness.ascii(argument);
            final ByteBuffer buf = SplitHarness.buffer(bytes, OFFSET, direct);
            assertEquals(expected, args.parseMail(buf, OFFSET, OFFSET + bytes.length), argument);
            assertEquals(0, buf.position());
            if (expected == OK)
            {
                assertEquals(path, SplitHarness.text(buf, args.pathStart(), args.pathEnd()));
                assertEquals(path.isEmpty(), args.isNullPath());
                assertEquals(path.isEmpty() ? -1 : args.pathStart() + path.lastIndexOf('@') + 1, args.domainStart());
            }
        }
    }

    @ParameterizedTest
    @MethodSource("rcpt")
    void parsesRcpt(final String argument, final int expected, final String path)
    {
        for (final boolean direct : new boolean[]{false, true})
        {
            final byte[] bytes = SplitHarness.ascii(argument);
            final ByteBuffer buf = SplitHarness.buffer(bytes, OFFSET, direct);
            assertEquals(expected, args.parseRcpt(buf, OFFSET, OFFSET + bytes.length), argument);
            if (expected == OK)
            {
                assertEquals(path, SplitHarness.text(buf, args.pathStart(), args.pathEnd()));
                assertFalse(args.isNullPath());
                assertEquals(path.indexOf('@') < 0, args.isPostmaster());
            }
        }
    }

    @Test
    void reportsParameters()
    {
        final ByteBuffer buf = ByteBuffer.wrap(SplitHarness.ascii("FROM:<a@b.c> SIZE=1024 BODY=8BITMIME SMTPUTF8"));
        assertEquals(OK, args.parseMail(buf, 0, buf.capacity()));
        assertEquals(1024, args.size());
        assertTrue(args.body8bit());
        assertTrue(args.smtputf8());
        assertEquals(8, args.domainStart());

        final ByteBuffer plain = ByteBuffer.wrap(SplitHarness.ascii("FROM:<a@b.c>"));
        assertEquals(OK, args.parseMail(plain, 0, plain.capacity()));
        assertEquals(-1, args.size());
        assertFalse(args.body8bit());
        assertFalse(args.smtputf8());
    }

    @Test
    void reportsDsnParametersAsRangesOfTheBuffer()
    {
        final String mailText = "FROM:<a@b.c> RET=HDRS ENVID=Q+2B1";
        final ByteBuffer mail = SplitHarness.buffer(SplitHarness.ascii(mailText), OFFSET, true);
        assertEquals(OK, args.parseMail(mail, OFFSET, OFFSET + mailText.length()));
        assertEquals(DsnParameters.RET_HDRS, args.ret());
        assertEquals("Q+2B1", SplitHarness.text(mail, args.envidStart(), args.envidEnd()));
        assertEquals(-1, args.orcptStart());

        final ByteBuffer plain = ByteBuffer.wrap(SplitHarness.ascii("FROM:<a@b.c> ret=full"));
        assertEquals(OK, args.parseMail(plain, 0, plain.capacity()));
        assertEquals(DsnParameters.RET_FULL, args.ret());
        assertEquals(-1, args.envidStart());

        final ByteBuffer rcpt = ByteBuffer.wrap(
            SplitHarness.ascii("TO:<a@b.c> NOTIFY=DELAY,success ORCPT=rfc822;x+2By@b.c"));
        assertEquals(OK, args.parseRcpt(rcpt, 0, rcpt.capacity()));
        assertEquals(DsnParameters.NOTIFY_SUCCESS | DsnParameters.NOTIFY_DELAY, args.notifyBits());
        assertEquals("rfc822;x+2By@b.c", SplitHarness.text(rcpt, args.orcptStart(), args.orcptEnd()));
        assertEquals(DsnParameters.RET_NONE, args.ret(), "RCPT has no RET");

        final ByteBuffer never = ByteBuffer.wrap(SplitHarness.ascii("TO:<a@b.c> NOTIFY=never"));
        assertEquals(OK, args.parseRcpt(never, 0, never.capacity()));
        assertEquals(DsnParameters.NOTIFY_NEVER, args.notifyBits());
        assertEquals(-1, args.orcptStart());

        final ByteBuffer none = ByteBuffer.wrap(SplitHarness.ascii("TO:<a@b.c>"));
        assertEquals(OK, args.parseRcpt(none, 0, none.capacity()));
        assertEquals(0, args.notifyBits());
    }

    @Test
    void xtextDecodesAndNotifyTextsRoundTrip()
    {
        assertEquals("a+b=c", new String(DsnParameters.decodeXtext(SplitHarness.ascii("a+2Bb+3Dc")),
            java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals("\u00e9", new String(DsnParameters.decodeXtext(SplitHarness.ascii("+C3+A9")),
            java.nio.charset.StandardCharsets.UTF_8));
        assertEquals("plain", new String(DsnParameters.decodeXtext(SplitHarness.ascii("plain")),
            java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals("NEVER", DsnParameters.notifyText(DsnParameters.NOTIFY_NEVER));
        assertEquals("SUCCESS,FAILURE,DELAY", DsnParameters.notifyText(7));
        assertEquals(" NOTIFY=FAILURE,DELAY", new String(DsnParameters.notifyParameter(6),
            java.nio.charset.StandardCharsets.US_ASCII));
        assertTrue(DsnParameters.notifiesFailure(0) && DsnParameters.notifiesDelay(0));
        assertFalse(DsnParameters.notifiesSuccess(0));
        assertFalse(DsnParameters.notifiesFailure(DsnParameters.NOTIFY_NEVER));
        assertFalse(DsnParameters.notifiesFailure(DsnParameters.NOTIFY_SUCCESS | DsnParameters.NOTIFY_DELAY));
        assertFalse(DsnParameters.notifiesDelay(DsnParameters.NOTIFY_FAILURE));
    }

    @Test
    void recipientsMayBeUtf8WhenMailSaidSmtputf8()
    {
        final ByteBuffer mail = ByteBuffer.wrap(SplitHarness.ascii("FROM:<a@b.c> SMTPUTF8"));
        final ByteBuffer rcpt = ByteBuffer.wrap(SplitHarness.ascii(utf8("TO:<\u00fc@b\u00fc.c>")));
        assertEquals(OK, args.parseMail(mail, 0, mail.capacity()));
        assertEquals(OK, args.parseRcpt(rcpt, 0, rcpt.capacity()));
        assertEquals(OK, args.parseRcpt(rcpt, 0, rcpt.capacity()));
        args.resetTransaction();
        assertEquals(NEEDS_SMTPUTF8, args.parseRcpt(rcpt, 0, rcpt.capacity()));
        assertEquals(OK, args.parseRcpt(rcpt, 0, rcpt.capacity(), true));
    }

    @Test
    void parsesBdat()
    {
        final String[] good = {"0", "100", "100 LAST", "100 last", "7   Last  ", "9223372036854775807 LAST"};
        final long[] sizes = {0, 100, 100, 100, 7, Long.MAX_VALUE};
        final boolean[] last = {false, false, true, true, true, true};
        for (int i = 0; i < good.length; i++)
        {
            final ByteBuffer buf = SplitHarness.buffer(SplitHarness.ascii(good[i]), OFFSET, i % 2 == 0);
            final int end = OFFSET + good[i].length();
            assertEquals(OK, args.parseBdat(buf, OFFSET, end), good[i]);
            assertEquals(sizes[i], args.bdatSize());
            assertEquals(last[i], args.bdatLast());
            assertEquals(sizes[i], MailArguments.parseBdatSize(buf, OFFSET, end));
        }
        for (final String bad : new String[]{"", "LAST", "-1", "1x", "1 LASTX", "1 LAST x", "1 FIRST", "1\tLAST",
            "9223372036854775808", " 1"})
        {
            final ByteBuffer buf = SplitHarness.buffer(SplitHarness.ascii(bad), OFFSET, false);
            assertEquals(SYNTAX_ARGS, args.parseBdat(buf, OFFSET, OFFSET + bad.length()), bad);
            assertEquals(-1, MailArguments.parseBdatSize(buf, OFFSET, OFFSET + bad.length()), bad);
        }
    }
}
