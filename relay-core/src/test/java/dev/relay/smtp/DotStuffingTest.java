package dev.relay.smtp;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** RFC 5321 §4.5.2 transparency, whole and split into parts at every offset. */
@Timeout(10)
class DotStuffingTest
{
    private static final String RAW = ".leading\r\nmid.dle\n.\r\n..two\r\nlast";
    private static final String STUFFED = "..leading\r\nmid.dle\r\n..\r\n...two\r\nlast";

    @Test
    void aDotAtALineStartIsDoubledAndABareLineFeedGetsItsCarriageReturnWhateverTheSplit()
    {
        final byte[] raw = RAW.getBytes(StandardCharsets.US_ASCII);
        for (int cut = 0; cut <= raw.length; cut++)
        {
            final ByteArrayOutputStream out = new ByteArrayOutputStream();
            final DotStuffing stuffing = new DotStuffing();
            final byte[] first = java.util.Arrays.copyOfRange(raw, 0, cut);
            final byte[] second = java.util.Arrays.copyOfRange(raw, cut, raw.length);
            stuffing.stuff(first, first.length, into(out));
            final boolean endsLine = stuffing.stuff(second, second.length, into(out));
            assertEquals(STUFFED, out.toString(StandardCharsets.US_ASCII), "cut at " + cut);
            assertFalse(endsLine);
        }
    }

    @Test
    void aLineEndIsReportedAndResetStartsAfreshAtALineStart()
    {
        final DotStuffing stuffing = new DotStuffing();
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        assertTrue(stuffing.stuff(bytes("a\r\n"), 3, into(out)));
        assertFalse(stuffing.stuff(bytes("b"), 1, into(out)));
        stuffing.reset();
        stuffing.stuff(bytes(".c"), 2, into(out));
        assertEquals("a\r\nb..c", out.toString(StandardCharsets.US_ASCII));
    }

    @Test
    void aLineIsStuffedAndReadBackThroughTheSameRule()
    {
        final byte[] wire = bytes("..x");
        assertTrue(DotStuffing.needsDot(bytes(".x"), 0, 2));
        assertFalse(DotStuffing.needsDot(bytes("x."), 0, 2));
        assertEquals(1, DotStuffing.contentStart(wire, 0, wire.length));
        assertEquals(0, DotStuffing.contentStart(bytes("x"), 0, 1));
    }

    private static DotStuffing.Output into(final ByteArrayOutputStream out)
    {
        return (bytes, from, to) -> out.write(bytes, from, to - from);
    }

    private static byte[] bytes(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }
}
