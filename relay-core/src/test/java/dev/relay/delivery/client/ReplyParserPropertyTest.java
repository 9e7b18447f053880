package dev.relay.delivery.client;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Any split of the same server bytes gives the same replies; any bytes give replies or an error, never a throw. */
class ReplyParserPropertyTest
{
    @Property(tries = 500)
    void anySplitGivesTheSameReplies(@ForAll("transcripts") final String transcript,
        @ForAll("cuts") final List<Integer> cuts)
    {
        final byte[] input = transcript.getBytes(StandardCharsets.ISO_8859_1);
        final List<String> whole = ReplyParserTest.parseAll(List.of(input));
        assertFalse(whole.isEmpty());
        assertEquals(whole, ReplyParserTest.parseAll(split(input, cuts)));
    }

    @Property(tries = 500)
    void arbitraryBytesNeverThrowAndNeverOverrun(@ForAll("noise") final byte[] input,
        @ForAll("cuts") final List<Integer> cuts)
    {
        final List<String> whole = ReplyParserTest.parseAll(List.of(input));
        assertEquals(whole, ReplyParserTest.parseAll(split(input, cuts)));
        final SmtpReplyParser parser = new SmtpReplyParser();
        final ByteBuffer buffer = ByteBuffer.wrap(input);
        int position = 0;
        while (position < input.length)
        {
            final int result = parser.parse(buffer, position, input.length);
            assertTrue(parser.end() >= position && parser.end() <= input.length);
            if (result != SmtpReplyParser.REPLY)
            {
                break;
            }
            position = parser.end();
        }
    }

    @Provide
    Arbitrary<String> transcripts()
    {
        final Arbitrary<String> text = Arbitraries.strings().withChars("abc .-5421\t").ofMaxLength(30);
        final Arbitrary<Integer> code = Arbitraries.of(220, 250, 354, 421, 450, 451, 550, 554);
        final Arbitrary<String> enhanced = Arbitraries.of("", "2.0.0 ", "4.2.0 ", "5.1.1 ", "5.7.10 ");
        final Arbitrary<String> end = Arbitraries.of("\r\n", "\n");
        final Arbitrary<String> reply = Combinators.combine(code, enhanced, text.list().ofMinSize(1).ofMaxSize(4), end)
            .as((c, e, lines, eol) ->
            {
                final StringBuilder out = new StringBuilder();
                for (int i = 0; i < lines.size(); i++)
                {
                    out.append(c).append(i == lines.size() - 1 ? ' ' : '-').append(e).append(lines.get(i)).append(eol);
                }
                return out.toString();
            });
        return reply.list().ofMinSize(1).ofMaxSize(6).map(replies -> String.join("", replies));
    }

    @Provide
    Arbitrary<byte[]> noise()
    {
        final Arbitrary<Byte> bytes = Arbitraries.of((byte)'2', (byte)'5', (byte)'0', (byte)' ', (byte)'-',
            (byte)'\r', (byte)'\n', (byte)'x', (byte)0, (byte)0xff);
        return bytes.array(byte[].class).ofMaxSize(200);
    }

    @Provide
    Arbitrary<List<Integer>> cuts()
    {
        return Arbitraries.integers().between(0, 400).list().ofMaxSize(30);
    }

    static List<byte[]> split(final byte[] input, final List<Integer> cuts)
    {
        final TreeSet<Integer> points = new TreeSet<>();
        for (final int cut : cuts)
        {
            points.add(Math.min(cut, input.length));
        }
        points.add(input.length);
        final List<byte[]> pieces = new ArrayList<>();
        int from = 0;
        for (final int to : points)
        {
            final byte[] piece = new byte[to - from];
            System.arraycopy(input, from, piece, 0, piece.length);
            pieces.add(piece);
            from = to;
        }
        return pieces;
    }
}
