package dev.relay.smtp;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes the two body scanners against plain reference models, the input cut into reads at fuzzer-chosen offsets
 * (layout in {@link FuzzChecks#payload}; flag bit 3 puts the bytes in a direct buffer, bits 4-6 shift them by 0-7
 * bytes so the 8-byte fast path of {@link DataScanner} sees every alignment).
 * <ul>
 * <li>{@link DataScanner} as a DATA body after the 354: the body stored and the resume point equal those of the first
 * {@code CRLF.CRLF} in {@code CRLF + input}; each call keeps {@code from <= bodyEnd <= resumeAt <= to} and holds back
 * at most ".CR"; bare CR / LF, NUL, 8-bit, the longest line and the {@code Received:} count match the model.</li>
 * <li>{@link BdatContentScanner} over the same bytes as BDAT content: bare line ends (a final CR included), NUL,
 * 8-bit and the {@code Received:} count match the model.</li>
 * </ul>
 * Modes as in {@link SmtpParsingFuzzTest}; {@link #boundedRandomBodies()} runs on every build.
 */
class BodyScannerFuzzTest
{
    private static final String[] FRAGMENTS = {
        "\r\n", "\r\n.\r\n", ".", "..", "\r", "\n", "Received: x\r\n", "RECEIVED:", "received", "\r\n\r\n", "\0",
        "\u00e9", "abcdefgh", "0123456789abcdef", ".\r", "\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n",
    };

    @FuzzTest(maxDuration = "10s")
    void fuzz(final byte[] data)
    {
        check(data);
    }

    @Test
    @Timeout(60)
    void boundedRandomBodies()
    {
        final SplittableRandom random = new SplittableRandom(0xB0D1);
        final long deadline = System.nanoTime() + 2_000_000_000L;
        int runs = 0;
        while (runs < 200_000 && (runs < 1_000 || System.nanoTime() < deadline))
        {
            final StringBuilder text = new StringBuilder();
            final int cuts = random.nextInt(8);
            text.append((char)(cuts | (random.nextInt(32) << 3)));
            for (int i = 0; i < 2 * cuts; i++)
            {
                text.append((char)random.nextInt(256));
            }
            final int parts = random.nextInt(40);
            for (int i = 0; i < parts; i++)
            {
                text.append(random.nextInt(5) == 0 ?
                    String.valueOf((char)random.nextInt(256)) : FRAGMENTS[random.nextInt(FRAGMENTS.length)]);
            }
            check(text.toString().getBytes(StandardCharsets.ISO_8859_1));
            runs++;
        }
    }

    static void check(final byte[] data)
    {
        final int flags = data.length == 0 ? 0 : data[0] & 0xFF;
        final byte[] payload = FuzzChecks.payload(data);
        final int[] ends = FuzzChecks.pieceEnds(data);
        final int shift = (flags >> 4) & 7;
        final ByteBuffer buffer = (flags & 8) != 0 ?
            ByteBuffer.allocateDirect(payload.length + shift) : ByteBuffer.allocate(payload.length + shift);
        for (int i = 0; i < payload.length; i++)
        {
            buffer.put(shift + i, payload[i]);
        }
        checkDataScanner(payload, ends, buffer, shift);
        checkBdatScanner(payload, ends, buffer, shift);
    }

    private static void checkDataScanner(final byte[] payload, final int[] ends, final ByteBuffer buffer, final int shift)
    {
        final DataScanner scanner = new DataScanner();
        final ByteArrayOutputStream stored = new ByteArrayOutputStream();
        int position = shift;
        int result = DataScanner.NEED_MORE;
        for (final int end : ends)
        {
            final int to = shift + end;
            if (to < position)
            {
                continue;
            }
            result = scanner.scan(buffer, position, to);
            assertTrue(position <= scanner.bodyEnd() && scanner.bodyEnd() <= scanner.resumeAt() &&
                scanner.resumeAt() <= to, "indexes out of range");
            for (int i = position; i < scanner.bodyEnd(); i++)
            {
                stored.write(buffer.get(i));
            }
            if (result == DataScanner.END_FOUND)
            {
                position = scanner.resumeAt();
                break;
            }
            assertEquals(scanner.bodyEnd(), scanner.resumeAt());
            assertTrue(to - scanner.resumeAt() <= 2, "held back more than '.CR'");
            position = scanner.resumeAt();
        }

        final String input = new String(payload, StandardCharsets.ISO_8859_1);
        final int terminator = ("\r\n" + input).indexOf("\r\n.\r\n");
        if (terminator < 0)
        {
            assertEquals(DataScanner.NEED_MORE, result, "end found without CRLF.CRLF");
            return;
        }
        assertEquals(DataScanner.END_FOUND, result, "CRLF.CRLF missed");
        assertArrayEquals(java.util.Arrays.copyOfRange(payload, 0, terminator), stored.toByteArray(), "body");
        assertEquals(shift + terminator + 3, position, "resume point");

        final byte[] body = stored.toByteArray();
        final Model model = new Model(body);
        assertEquals(model.bareLf, scanner.sawBareLf(), "bare LF");
        assertEquals(model.bareCr, scanner.sawBareCr(), "bare CR");
        assertEquals(model.nul, scanner.sawNul(), "NUL");
        assertEquals(model.eightBit, scanner.sawEightBit(), "8-bit");
        if (!model.bareLf && !model.bareCr)
        {
            assertEquals(model.maxLine, scanner.maxLineLength(), "longest line");
            assertEquals(model.receivedHeaders, scanner.receivedHeaders(), "Received: headers");
        }
    }

    private static void checkBdatScanner(final byte[] payload, final int[] ends, final ByteBuffer buffer, final int shift)
    {
        final BdatContentScanner scanner = new BdatContentScanner();
        scanner.reset();
        int position = shift;
        for (final int end : ends)
        {
            scanner.scan(buffer, position, shift + end);
            position = shift + end;
        }
        final Model model = new Model(payload);
        assertEquals(model.bareLf || model.bareCr, scanner.sawBareLineEnd(), "bare line end");
        assertEquals(model.nul, scanner.sawNul(), "NUL");
        assertEquals(model.eightBit, scanner.sawEightBit(), "8-bit");
        if (!model.bareLf && !model.bareCr)
        {
            assertEquals(model.receivedHeaders, scanner.receivedHeaders(), "Received: headers");
        }
    }

    /** What a body holds, the slow way. Lines and headers are only meaningful without bare CR or LF. */
    private static final class Model
    {
        boolean bareLf;
        boolean bareCr;
        boolean nul;
        boolean eightBit;
        int maxLine;
        int receivedHeaders;

        Model(final byte[] body)
        {
            for (int i = 0; i < body.length; i++)
            {
                final byte b = body[i];
                bareLf |= b == '\n' && (i == 0 || body[i - 1] != '\r');
                bareCr |= b == '\r' && (i + 1 == body.length || body[i + 1] != '\n');
                nul |= b == 0;
                eightBit |= b < 0;
            }
            final String text = new String(body, StandardCharsets.ISO_8859_1);
            boolean inHeaders = true;
            int start = 0;
            while (start < text.length())
            {
                int end = text.indexOf("\r\n", start);
                if (end < 0)
                {
                    end = text.length();
                }
                final String line = text.substring(start, end);
                if (end < text.length())
                {
                    maxLine = Math.max(maxLine, line.length());
                }
                if (line.isEmpty())
                {
                    inHeaders = false;
                }
                if (inHeaders && line.length() >= 9 && asciiLower(line.substring(0, 9)).equals("received:"))
                {
                    receivedHeaders++;
                }
                start = end + 2;
            }
        }

        private static String asciiLower(final String text)
        {
            final StringBuilder out = new StringBuilder(text.length());
            for (int i = 0; i < text.length(); i++)
            {
                final char c = text.charAt(i);
                out.append(c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
            }
            return out.toString();
        }
    }
}
