package dev.relay.smtp;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.List;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Assume;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

import dev.relay.smtp.SplitHarness.ScanResult;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Property tests (jqwik) for the parsing layer; the harness asserts index bounds on every call. */
class SmtpParsingPropertyTest
{
    /** Bytes biased toward the ones the grammar cares about, so lines, terminators and near misses are common. */
    @Provide
    Arbitrary<byte[]> smtpish()
    {
        return Arbitraries.oneOf(
                Arbitraries.of((byte)'\r', (byte)'\n', (byte)'.', (byte)' ', (byte)0, (byte)0xC3, (byte)':',
                    (byte)'M', (byte)'a', (byte)'R'),
                Arbitraries.bytes())
            .array(byte[].class).ofMaxSize(300);
    }

    @Property(tries = 300)
    void parserNeverThrowsNorOverruns(@ForAll final byte[] input, @ForAll @IntRange(min = 3, max = 40) final int max)
    {
        SplitHarness.runParser(input, new int[]{input.length}, false, max);
    }

    @Property(tries = 300)
    void parserGivesTheSameResultsForAnySplit(
        @ForAll("smtpish") final byte[] input,
        @ForAll @Size(max = 8) final List<Integer> cuts,
        @ForAll @IntRange(min = 3, max = 40) final int max,
        @ForAll final boolean direct)
    {
        final List<String> whole = SplitHarness.runParser(input, new int[]{input.length}, false, max);
        assertEquals(whole, SplitHarness.runParser(input, SplitHarness.pieceEnds(cuts, input.length), direct, max));
    }

    @Property(tries = 300)
    void mailArgumentsNeverThrowNorOverrun(@ForAll("smtpish") final byte[] input)
    {
        final ByteBuffer buf = SplitHarness.buffer(input, 2, true);
        final MailArguments args = new MailArguments();
        FuzzChecks.checkMail(args, buf, 2, 2 + input.length);
    }

    @Provide
    Arbitrary<List<byte[]>> lines()
    {
        // Line content: anything but LF; CR is allowed (a bare CR inside a line is still one line).
        return Arbitraries.oneOf(
                Arbitraries.of((byte)'.', (byte)'\r', (byte)'a', (byte)' ', (byte)0x80),
                Arbitraries.bytes().filter(b -> b != '\n'))
            .array(byte[].class).ofMaxSize(20)
            .list().ofMaxSize(12);
    }

    @Property(tries = 300)
    void scannerReturnsExactlyTheStuffedBody(
        @ForAll("lines") final List<byte[]> lines,
        @ForAll @Size(max = 8) final List<Integer> cuts,
        @ForAll final boolean direct)
    {
        final ByteArrayOutputStream plain = new ByteArrayOutputStream();
        for (final byte[] line : lines)
        {
            plain.writeBytes(line);
            plain.writeBytes(new byte[]{'\r', '\n'});
        }
        final byte[] x = plain.toByteArray();
        final byte[] stuffed = stuff(x);
        assertArrayEquals(x, unstuff(stuffed));

        final ByteArrayOutputStream wire = new ByteArrayOutputStream();
        wire.writeBytes(stuffed);
        wire.writeBytes(new byte[]{'.', '\r', '\n', 'Q'});
        final byte[] input = wire.toByteArray();

        final ScanResult result = SplitHarness.runScanner(input, SplitHarness.pieceEnds(cuts, input.length), direct);
        assertTrue(result.ended());
        assertArrayEquals(stuffed, SplitHarness.ascii(result.body()));
        assertEquals("Q", result.rest());
        assertEquals(SplitHarness.runScanner(input, new int[]{input.length}, !direct), result);
    }

    @Property(tries = 300)
    void scannerNeverEndsWithoutCrLfDotCrLf(
        @ForAll("smuggling") final byte[] input,
        @ForAll @Size(max = 8) final List<Integer> cuts)
    {
        final String text = new String(input, java.nio.charset.StandardCharsets.ISO_8859_1);
        Assume.that(!text.contains("\r\n.\r\n") && !text.startsWith(".\r\n"));
        final ScanResult result = SplitHarness.runScanner(input, SplitHarness.pieceEnds(cuts, input.length), true);
        assertFalse(result.ended());
        assertEquals(text, result.body() + result.rest());
        assertEquals(SplitHarness.runScanner(input, new int[]{input.length}, false), result);
    }

    @Provide
    Arbitrary<byte[]> smuggling()
    {
        return Arbitraries.of((byte)'\r', (byte)'\n', (byte)'.', (byte)'x', (byte)0)
            .array(byte[].class).ofMaxSize(40);
    }

    @Property(tries = 300)
    void scannerGivesTheSameResultsForAnySplit(
        @ForAll("smtpish") final byte[] input,
        @ForAll @Size(max = 8) final List<Integer> cuts)
    {
        assertEquals(
            SplitHarness.runScanner(input, new int[]{input.length}, false),
            SplitHarness.runScanner(input, SplitHarness.pieceEnds(cuts, input.length), true));
    }

    /** RFC 5321 §4.5.2: a line starting with "." gets one more. */
    static byte[] stuff(final byte[] x)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        boolean lineStart = true;
        for (int i = 0; i < x.length; i++)
        {
            if (lineStart && x[i] == '.')
            {
                out.write('.');
            }
            out.write(x[i]);
            lineStart = x[i] == '\n' && i > 0 && x[i - 1] == '\r';
        }
        return out.toByteArray();
    }

    static byte[] unstuff(final byte[] wire)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        boolean lineStart = true;
        for (int i = 0; i < wire.length; i++)
        {
            if (!(lineStart && wire[i] == '.'))
            {
                out.write(wire[i]);
            }
            lineStart = wire[i] == '\n' && i > 0 && wire[i - 1] == '\r';
        }
        return out.toByteArray();
    }
}
