package dev.relay.smtp;

import dev.relay.Relay;
import dev.relay.config.SmtpServerSettings;
import dev.relay.net.BufferPool;
import dev.relay.net.LoopDouble;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Any split of the same client bytes into reads gives the same replies and the same spooled messages (through the
 * {@link LoopDouble}, whose read buffers are direct like the real loop's; the parsers' own split tests cover heap
 * buffers too).
 */
class SmtpSessionSplitPropertyTest
{
    /** One loop's pools, shared by the runs (one at a time), which give their buffers back when stopped. */
    private static final BufferPool READ_BUFFERS = new BufferPool(SessionDriver.READ_BUFFER_BYTES, 4);
    private static final BufferPool WRITE_BUFFERS = new BufferPool(Relay.WRITE_BUFFER_BYTES, 4);
    private static final String[] TRANSCRIPTS = {
        "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n" +
            "Subject: s\r\n\r\n..stuffed\r\n.\r\nline\r\n\r\n.\r\nQUIT\r\n",
        "HELO c\r\nFOO\r\nMAIL FROM:<> SIZE=10\r\nRCPT TO:<postmaster>\r\nDATA\r\n.\r\nRSET\r\nNOOP\r\n",
        "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 3\r\nabcBDAT 4 LAST\r\nd\r\n\r\n" +
            "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nsmuggle\n.\nMAIL FROM:<e@x>\r\n.\r\nQUIT\r\n",
        "EHLO c\r\n" + "x".repeat(700) + "\r\nEHLO d\nEHLO e\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n" +
            "a\r\n.\r\n.\r\n",
    };

    @Property(tries = 300)
    void anySplitGivesTheSameResult(@ForAll("transcripts") final String transcript,
        @ForAll("cuts") final List<Integer> cuts)
    {
        final byte[] input = transcript.getBytes(StandardCharsets.ISO_8859_1);
        final Result whole = run(List.of(input));
        final List<byte[]> pieces = split(input, cuts);
        final Result parts = run(pieces);
        assertEquals(whole.replies, parts.replies);
        assertEquals(whole.bodies.size(), parts.bodies.size());
        for (int i = 0; i < whole.bodies.size(); i++)
        {
            assertArrayEquals(whole.bodies.get(i), parts.bodies.get(i));
        }
    }

    @Provide
    Arbitrary<String> transcripts()
    {
        return Arbitraries.of(TRANSCRIPTS);
    }

    @Provide
    Arbitrary<List<Integer>> cuts()
    {
        return Arbitraries.integers().between(0, 1000).list().ofMaxSize(40);
    }

    private static List<byte[]> split(final byte[] input, final List<Integer> cuts)
    {
        final List<Integer> points = new ArrayList<>();
        for (final int cut : cuts)
        {
            points.add(cut % (input.length + 1));
        }
        points.add(0);
        points.add(input.length);
        points.sort(Integer::compare);
        final List<byte[]> pieces = new ArrayList<>();
        for (int i = 1; i < points.size(); i++)
        {
            final byte[] piece = new byte[points.get(i) - points.get(i - 1)];
            System.arraycopy(input, points.get(i - 1), piece, 0, piece.length);
            pieces.add(piece);
        }
        return pieces;
    }

    private static Result run(final List<byte[]> reads)
    {
        final SessionDriver driver = new SessionDriver(SmtpServerSettings.defaults("relay.test"), "127.0.0.1",
            new LoopDouble(READ_BUFFERS, WRITE_BUFFERS));
        final StringBuilder replies = new StringBuilder(driver.output());
        for (final byte[] read : reads)
        {
            replies.append(driver.send(read));
        }
        final Result result = new Result();
        // queue ids differ between runs only by sequence: mask them
        result.replies = replies.toString().replaceAll("queued as [0-9A-Z]{13}", "queued as ID");
        for (final MemorySink.Stored stored : driver.sink.committed)
        {
            result.bodies.add(stored.body);
        }
        driver.loop.stop();
        return result;
    }

    private static final class Result
    {
        String replies;
        final List<byte[]> bodies = new ArrayList<>();
    }
}
