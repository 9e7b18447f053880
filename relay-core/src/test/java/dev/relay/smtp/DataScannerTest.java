package dev.relay.smtp;

import java.nio.ByteBuffer;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import dev.relay.smtp.SplitHarness.ScanResult;

import static dev.relay.smtp.SplitHarness.ascii;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DataScannerTest
{
    /** ended, body, rest, bareLf, bareCr, nul, eightBit, maxLine, received, headersEnded. */
    private static ScanResult r(
        final boolean ended, final String body, final String rest, final boolean bareLf, final boolean bareCr,
        final boolean nul, final boolean eightBit, final int maxLine, final int received, final boolean headersEnded)
    {
        return new ScanResult(ended, body, rest, bareLf, bareCr, nul, eightBit, maxLine, received, headersEnded);
    }

    static Stream<Arguments> bodies()
    {
        final String longLine = "0123456789abcdef".repeat(8);
        return Stream.of(
            Arguments.of(".\r\n", r(true, "", "", false, false, false, false, 0, 0, false)),
            Arguments.of(".\r\nQUIT\r\n", r(true, "", "QUIT\r\n", false, false, false, false, 0, 0, false)),
            Arguments.of("a\r\n.\r\n", r(true, "a\r\n", "", false, false, false, false, 1, 0, false)),
            Arguments.of("\r\n.\r\n", r(true, "\r\n", "", false, false, false, false, 0, 0, true)),
            Arguments.of("a\r\n..b\r\n.\r\nMAIL", r(true, "a\r\n..b\r\n", "MAIL", false, false, false, false, 3, 0, false)),
            Arguments.of("..\r\n.\r\n", r(true, "..\r\n", "", false, false, false, false, 2, 0, false)),
            Arguments.of(".x\r\n.\r\n", r(true, ".x\r\n", "", false, false, false, false, 2, 0, false)),
            Arguments.of(longLine + "\r\n.\r\n",
                r(true, longLine + "\r\n", "", false, false, false, false, 128, 0, false)),
            Arguments.of("Received: a\r\nreceived: b\r\nRECEIVED:c\r\nReceived-SPF: x\r\nReceive: y\r\n" +
                    " Received: z\r\nX\r\n\r\nReceived: body\r\n.\r\n",
                r(true, "Received: a\r\nreceived: b\r\nRECEIVED:c\r\nReceived-SPF: x\r\nReceive: y\r\n" +
                    " Received: z\r\nX\r\n\r\nReceived: body\r\n", "", false, false, false, false, 15, 3, true)),
            Arguments.of("Received\u001a x\r\n.\r\n", r(true, "Received\u001a x\r\n", "", false, false, false, false, 11, 0, false)),
            Arguments.of("h\u00e9\0\r\n.\r\n", r(true, "h\u00e9\0\r\n", "", false, false, true, true, 3, 0, false)),
            // SMTP smuggling variants (CVE-2023-51764 family): none of them ends the data.
            Arguments.of("a\n.\nb", r(false, "a\n.\nb", "", true, false, false, false, 1, 0, false)),
            Arguments.of("a\r\n.\nb", r(false, "a\r\n.\nb", "", true, false, false, false, 1, 0, false)),
            Arguments.of("a\n.\r\nb", r(false, "a\n.\r\nb", "", true, false, false, false, 1, 0, false)),
            Arguments.of("a\r.\rb", r(false, "a\r.\rb", "", false, true, false, false, 0, 0, false)),
            Arguments.of("a\r\n.\rb\r\n", r(false, "a\r\n.\rb\r\n", "", false, true, false, false, 3, 0, false)),
            Arguments.of("a\r\n.\r\r\n", r(false, "a\r\n.\r\r\n", "", false, true, false, false, 2, 0, false)),
            Arguments.of("a\r\n\n.\r\n", r(false, "a\r\n\n.\r\n", "", true, false, false, false, 1, 0, true)),
            Arguments.of("a\r\n.", r(false, "a\r\n", ".", false, false, false, false, 1, 0, false)),
            Arguments.of("a\r\n.\r", r(false, "a\r\n", ".\r", false, false, false, false, 1, 0, false)),
            Arguments.of("a\r", r(false, "a\r", "", false, false, false, false, 0, 0, false)));
    }

    @ParameterizedTest
    @MethodSource("bodies")
    void scansTheSameWhateverTheSplit(final String input, final ScanResult expected)
    {
        final byte[] bytes = ascii(input);
        for (final boolean direct : new boolean[]{false, true})
        {
            for (final int[] split : SplitHarness.splits(bytes.length))
            {
                assertEquals(expected, SplitHarness.runScanner(bytes, split, direct),
                    () -> "split " + java.util.Arrays.toString(split) + " direct=" + direct);
            }
        }
    }

    @Test
    void resetStartsANewBody()
    {
        final DataScanner scanner = new DataScanner();
        final ByteBuffer buf = ByteBuffer.wrap(ascii("x\n\0\u00ff\r\n.\r\n"));
        assertEquals(DataScanner.END_FOUND, scanner.scan(buf, 0, buf.capacity()));
        assertTrue(scanner.isDone());
        assertTrue(scanner.sawBareLf() && scanner.sawNul() && scanner.sawEightBit());
        assertEquals(DataScanner.END_FOUND, scanner.scan(buf, 0, buf.capacity()));
        assertEquals(0, scanner.bodyEnd());

        scanner.reset();
        assertFalse(scanner.isDone() || scanner.sawBareLf() || scanner.sawNul() || scanner.sawEightBit());
        assertEquals(DataScanner.NEED_MORE, scanner.scan(buf, 0, 1));
        assertEquals(1, scanner.bodyEnd());
    }
}
