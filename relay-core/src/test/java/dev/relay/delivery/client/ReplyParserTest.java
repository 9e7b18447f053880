package dev.relay.delivery.client;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** Replies whole, byte by byte and split at every offset, over CRLF and bare LF. */
class ReplyParserTest
{
    /** Parses input fed in the given pieces as a loop would (unconsumed bytes offered again); one line per outcome. */
    static List<String> parseAll(final List<byte[]> pieces)
    {
        final SmtpReplyParser parser = new SmtpReplyParser();
        final ByteBuffer buffer = ByteBuffer.allocate(2 * 1024 * 1024);
        final List<String> out = new ArrayList<>();
        int start = 0;
        for (final byte[] piece : pieces)
        {
            buffer.put(piece);
            while (start < buffer.position())
            {
                final int result = parser.parse(buffer, start, buffer.position());
                start = parser.end();
                if (result == SmtpReplyParser.REPLY)
                {
                    out.add(parser.code() + "|" + parser.enhancedCode() + "|" + parser.text().replace('\n', '/') +
                        "|" + parser.detail());
                }
                else if (result == SmtpReplyParser.PROTOCOL_ERROR)
                {
                    out.add("ERROR " + parser.error());
                    return out;
                }
                else
                {
                    break;
                }
            }
        }
        return out;
    }

    static List<String> parseWhole(final String input)
    {
        return parseAll(List.of(input.getBytes(StandardCharsets.ISO_8859_1)));
    }

    private static void assertSplitsAgree(final String input)
    {
        final byte[] bytes = input.getBytes(StandardCharsets.ISO_8859_1);
        final List<String> whole = parseAll(List.of(bytes));
        final List<byte[]> single = new ArrayList<>();
        for (final byte b : bytes)
        {
            single.add(new byte[] {b});
        }
        assertEquals(whole, parseAll(single), "byte by byte");
        for (int cut = 0; cut <= bytes.length; cut++)
        {
            final byte[] a = new byte[cut];
            final byte[] b = new byte[bytes.length - cut];
            System.arraycopy(bytes, 0, a, 0, cut);
            System.arraycopy(bytes, cut, b, 0, b.length);
            assertEquals(whole, parseAll(List.of(a, b)), "cut at " + cut);
        }
    }

    @Test
    void singleLineWithEnhancedCode()
    {
        assertEquals(List.of("550|5.1.1|5.1.1 user unknown|user unknown"), parseWhole("550 5.1.1 user unknown\r\n"));
    }

    @Test
    void multilineEhloReply()
    {
        final String ehlo = "250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 CHUNKING\r\n";
        assertEquals(List.of("250|null|mx.example Hello/PIPELINING/SIZE 1000/CHUNKING|" +
            "mx.example Hello PIPELINING SIZE 1000 CHUNKING"), parseWhole(ehlo));
        assertSplitsAgree(ehlo);
    }

    @Test
    void bareLfAndBareCodeAreTolerated()
    {
        assertEquals(List.of("354|null||", "250|2.0.0|2.0.0 ok|ok"), parseWhole("354\n250 2.0.0 ok\n"));
    }

    @Test
    void enhancedCodeMustMatchTheReplyClass()
    {
        assertEquals(List.of("250|null|5.1.1 odd|5.1.1 odd"), parseWhole("250 5.1.1 odd\r\n"));
        assertEquals(List.of("451|4.3.0|4.3.0|"), parseWhole("451 4.3.0\r\n"));
        assertEquals(List.of("452|null|4.3.0x|4.3.0x"), parseWhole("452 4.3.0x\r\n"));
    }

    @Test
    void multilineDetailDropsRepeatedEnhancedCodes()
    {
        final String reply = "550-5.7.1 first\r\n550 5.7.1 second\r\n";
        assertEquals(List.of("550|5.7.1|5.7.1 first/5.7.1 second|first second"), parseWhole(reply));
    }

    @Test
    void pipelinedRepliesSplitAnywhere()
    {
        assertSplitsAgree("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n450 4.2.0 busy\r\n550-5.1.1 no\r\n550 5.1.1 such user\n" +
            "354 go ahead\r\n");
    }

    @Test
    void garbageIsAProtocolError()
    {
        assertEquals(List.of("ERROR malformed reply"), parseWhole("HTTP/1.1 400 Bad Request\r\n"));
        assertEquals(List.of("ERROR malformed reply"), parseWhole("25x ok\r\n"));
        assertEquals(List.of("ERROR malformed reply"), parseWhole("250_ok\r\n"));
        assertEquals(List.of("ERROR malformed reply"), parseWhole("650 no\r\n"));
        assertEquals(List.of("250|null|ok|ok", "ERROR malformed reply"), parseWhole("250 ok\r\n\r\n"));
        assertSplitsAgree("250 ok\r\n2\r\n");
    }

    @Test
    void lineLimit()
    {
        final String longest = "250 " + "a".repeat(SmtpReplyParser.MAX_LINE_BYTES - 6) + "\r\n";
        assertEquals(SmtpReplyParser.MAX_LINE_BYTES, longest.length());
        assertEquals(1, parseWhole(longest).size());
        assertEquals(List.of("ERROR reply line too long"), parseWhole("250 a" + longest.substring(4)));
        assertEquals(List.of("ERROR reply line too long"), parseWhole("250-" + "x".repeat(1024 * 1024)));
        assertSplitsAgree("250 a" + longest.substring(4));
    }

    @Test
    void oneMebibyteLineFedInReadsIsRefusedEarly()
    {
        final List<byte[]> reads = new ArrayList<>();
        for (int i = 0; i < 256; i++)
        {
            reads.add(("250-" + "y".repeat(4092)).getBytes(StandardCharsets.ISO_8859_1));
        }
        assertEquals(List.of("ERROR reply line too long"), parseAll(reads));
    }

    @Test
    void replyLimit()
    {
        final String line = "250-" + "b".repeat(1018) + "\r\n";
        final String reply = line.repeat(64) + "250 end\r\n";
        assertEquals(List.of("ERROR reply too long"), parseWhole(reply));
        assertEquals(1, parseWhole(line.repeat(63) + "250 end\r\n").size());
    }

    @Test
    void errorIsStickyUntilReset()
    {
        final SmtpReplyParser parser = new SmtpReplyParser();
        final ByteBuffer buffer = ByteBuffer.wrap("xyz\r\n250 ok\r\n".getBytes(StandardCharsets.US_ASCII));
        assertEquals(SmtpReplyParser.PROTOCOL_ERROR, parser.parse(buffer, 0, buffer.limit()));
        assertEquals(SmtpReplyParser.PROTOCOL_ERROR, parser.parse(buffer, 5, buffer.limit()));
        parser.reset();
        assertNull(parser.error());
        assertEquals(SmtpReplyParser.REPLY, parser.parse(buffer, 5, buffer.limit()));
        assertEquals(250, parser.code());
        assertEquals(buffer.limit(), parser.end());
    }
}
