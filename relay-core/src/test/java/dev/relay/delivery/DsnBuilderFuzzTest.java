package dev.relay.delivery;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes {@link DsnBuilder#build} with hostile diagnostic texts, addresses, host names, seeds and original headers.
 * The DSN must be wire form whatever comes in: only CRLF line ends (no bare CR or LF), no line over 998 octets, every
 * line that starts with "." stuffed; and its MIME structure must parse: a {@code multipart/report} boundary of RFC 2046
 * bchars, then exactly three parts and a close delimiter, no other line starting with the delimiter, each part with
 * a {@code Content-Type} and an empty line after its headers; every header line a field or a continuation.
 * <p>
 * Modes as in {@code dev.relay.smtp.SmtpParsingFuzzTest}: plain {@code mvn test} runs the seeds under
 * {@code DsnBuilderFuzzTestInputs/fuzz/}; {@link #boundedRandomDsns()} runs on every build.
 */
class DsnBuilderFuzzTest
{
    private static final String[] STATUSES = {"5.1.1", "4.4.2", "5.0.0", "2.0.0", "5.999.999"};
    private static final String[] ACTIONS = {"failed", "delayed", "delivered", "relayed", "expanded"};
    private static final Pattern BOUNDARY = Pattern.compile("boundary=\"([^\"]*)\"");
    private static final Pattern BCHARS = Pattern.compile("[0-9A-Za-z'()+_,\\-./:=? ]{0,69}[0-9A-Za-z'()+_,\\-./:=?]");
    private static final Pattern FIELD = Pattern.compile("[!-9;-~]+:.*|[ \t].*", Pattern.DOTALL);
    private static final String[] FRAGMENTS = {
        "\r\n", "\n", "\r", ".", "..", "--", "--S.1/h", "--S.1/h=1", "--S.1/h--", " ", "\t", "smtp;", "x;", "\u00e9",
        "\u20ac", "\ud83d\ude00", "\ud800", "\u0000", "\u007f", "\u2028", "a@b", "<", ">", "\"", "=", "Received: x",
    };

    @FuzzTest(maxDuration = "10s")
    void fuzz(final FuzzedDataProvider data)
    {
        final String mta = data.consumeString(100);
        final String queueId = data.consumeBoolean() ? null : data.consumeString(40);
        final String sender = data.consumeString(300);
        final String seed = data.consumeString(100);
        final List<DsnBuilder.Recipient> recipients = new ArrayList<>();
        final int count = data.consumeInt(1, 3);
        for (int i = 0; i < count; i++)
        {
            recipients.add(new DsnBuilder.Recipient(data.consumeString(300), data.pickValue(STATUSES),
                data.consumeBoolean() ? null : data.consumeString(100), data.consumeString(2500),
                data.pickValue(ACTIONS)));
        }
        check(mta, queueId, sender, recipients, data.consumeRemainingAsBytes(), seed, 1);
    }

    @Test
    @Timeout(60)
    void boundedRandomDsns()
    {
        final SplittableRandom random = new SplittableRandom(0xD5A);
        final long deadline = System.nanoTime() + 3_000_000_000L;
        int runs = 0;
        while (runs < 50_000 && (runs < 300 || System.nanoTime() < deadline))
        {
            final boolean known = random.nextBoolean();
            final List<DsnBuilder.Recipient> recipients = new ArrayList<>();
            final int count = 1 + random.nextInt(3);
            for (int i = 0; i < count; i++)
            {
                recipients.add(new DsnBuilder.Recipient(text(random, 8), STATUSES[random.nextInt(STATUSES.length)],
                    random.nextBoolean() ? null : text(random, 4), text(random, 30),
                    ACTIONS[random.nextInt(ACTIONS.length)]));
            }
            check(known ? "h" : text(random, 4), random.nextBoolean() ? null : text(random, 3), "s" + text(random, 6),
                recipients, text(random, 40).getBytes(StandardCharsets.UTF_8), known ? "S" : text(random, 3),
                known ? 1 : random.nextLong(0, 4_000_000_000_000L));
            runs++;
        }
    }

    private static String text(final SplittableRandom random, final int maxParts)
    {
        final StringBuilder text = new StringBuilder();
        final int parts = random.nextInt(maxParts + 1);
        for (int i = 0; i < parts; i++)
        {
            switch (random.nextInt(6))
            {
                case 0:
                    text.append((char)random.nextInt(0x3000));
                    break;
                case 1:
                    text.append("x".repeat(random.nextInt(1200)));
                    break;
                case 2:
                    text.append("\u00e9".repeat(random.nextInt(600)));
                    break;
                default:
                    text.append(FRAGMENTS[random.nextInt(FRAGMENTS.length)]);
                    break;
            }
        }
        return text.toString();
    }

    static void check(final String mta, final String queueId, final String sender,
        final List<DsnBuilder.Recipient> recipients, final byte[] headers, final String seed, final long nowMs)
    {
        if (sender.isEmpty())
        {
            assertThrows(IllegalArgumentException.class,
                () -> DsnBuilder.build(mta, queueId, sender, 0, recipients, headers, nowMs, seed));
            return;
        }
        final byte[] dsn = DsnBuilder.build(mta, queueId, sender, 0, recipients, headers, nowMs, seed);
        checkStructure(unstuff(dsn));
    }

    /** Checks wire form line by line; returns the un-stuffed lines. */
    static List<String> unstuff(final byte[] wire)
    {
        final List<String> lines = new ArrayList<>();
        int start = 0;
        while (start < wire.length)
        {
            int lf = start;
            while (lf < wire.length && wire[lf] != '\n')
            {
                lf++;
            }
            assertTrue(lf < wire.length, "last line not ended by CRLF");
            assertTrue(lf > start && wire[lf - 1] == '\r', "bare LF at " + lf);
            final int end = lf - 1;
            assertTrue(end - start <= DsnBuilder.MAX_LINE_OCTETS, "line of " + (end - start) + " octets");
            for (int i = start; i < end; i++)
            {
                assertTrue(wire[i] != '\r', "bare CR at " + i);
            }
            if (end > start && wire[start] == '.')
            {
                assertTrue(end - start >= 2 && wire[start + 1] == '.', "line starting with '.' not stuffed");
            }
            final int from = end > start && wire[start] == '.' ? start + 1 : start;
            lines.add(new String(wire, from, end - from, StandardCharsets.ISO_8859_1));
            start = lf + 1;
        }
        return lines;
    }

    private static void checkStructure(final List<String> lines)
    {
        int i = 0;
        final StringBuilder header = new StringBuilder();
        while (i < lines.size() && !lines.get(i).isEmpty())
        {
            final String line = lines.get(i);
            assertTrue(FIELD.matcher(line).matches(), "not a header field: " + line);
            header.append(line.charAt(0) == ' ' || line.charAt(0) == '\t' ? line.substring(1) : "\n" + line);
            i++;
        }
        assertTrue(i < lines.size(), "no end of the header section");
        final Matcher matcher = BOUNDARY.matcher(header);
        assertTrue(matcher.find(), "no boundary");
        final String boundary = matcher.group(1);
        assertTrue(BCHARS.matcher(boundary).matches(), "bad boundary: " + boundary);
        final String delimiter = "--" + boundary;

        int parts = 0;
        boolean closed = false;
        boolean inPartHeaders = false;
        boolean sawContentType = false;
        for (i++; i < lines.size(); i++)
        {
            final String line = lines.get(i);
            if (line.startsWith(delimiter))
            {
                assertTrue(!closed, "delimiter after the close delimiter");
                assertTrue(!inPartHeaders, "part without a header end");
                if (line.equals(delimiter + "--"))
                {
                    closed = true;
                    continue;
                }
                assertEquals(delimiter, line, "line starting with the delimiter");
                parts++;
                inPartHeaders = true;
                sawContentType = false;
                continue;
            }
            if (inPartHeaders)
            {
                if (line.isEmpty())
                {
                    assertTrue(sawContentType, "part without Content-Type");
                    inPartHeaders = false;
                }
                else
                {
                    sawContentType |= line.startsWith("Content-Type:");
                }
            }
            else if (parts == 3)
            {
                // text/rfc822-headers holds header fields only, whatever the original was
                assertTrue(line.isEmpty() || FIELD.matcher(line).matches(), "not a header field: " + line);
            }
        }
        assertTrue(closed, "no close delimiter");
        assertEquals(3, parts, "parts");
    }
}
