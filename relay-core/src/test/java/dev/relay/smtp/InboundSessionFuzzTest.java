package dev.relay.smtp;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.relay.Relay;
import dev.relay.config.SmtpServerSettings;
import dev.relay.net.BufferPool;
import dev.relay.net.LoopDouble;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes a whole inbound conversation: client bytes in, replies out, through {@link SmtpSession} driven as the loop
 * drives it: on the {@link LoopDouble} ({@link SessionDriver}, {@link MemorySink} committing in a loop hook).
 * <p>
 * Input layout: byte 0 holds flags (bits 0-2: number of cuts, bit 3: small limits, bit 4: drain before the last
 * read, bit 5: timeout at the end, bit 6: the smallest read buffer {@code smtp.buffer_size} allows, 4 KiB, instead of
 * the default, bit 7: a client that may not relay); then two bytes per cut
 * (big-endian offset into the payload, modulo its length + 1); the rest is what the client sends, one send per piece
 * (the loop reads it in as many reads as its buffer needs).
 * A seed is therefore {@code "\0"} followed by a plain transcript.
 * <p>
 * Invariants ({@link #check}): nothing is thrown; every reply line is {@code [2-5]dd[ -]...} ended by CRLF; replies
 * are bounded by the input (one per line, or per over-long stretch); the sink never sees two open transactions and
 * none is left open after close; nothing is committed without a {@code CRLF.CRLF} or a {@code BDAT ... LAST} in the
 * input; a committed body has no bare CR or LF (and a DATA body no terminator); one {@code queued as} per commit.
 * <p>
 * Modes as in {@link SmtpParsingFuzzTest}: plain {@code mvn test} runs only the seeds under
 * {@code InboundSessionFuzzTestInputs/fuzz/}; {@code JAZZER_FUZZ=1} with {@code -Dtest=InboundSessionFuzzTest}
 * fuzzes. {@link #boundedRandomConversations()} runs on every build.
 */
class InboundSessionFuzzTest
{
    private static final int MAX_INPUT = 16 * 1024;
    private static final Pattern REPLY_LINE = Pattern.compile("[2-5][0-9][0-9][ -][^\r\n]*");
    private static final Pattern BDAT_LAST = Pattern.compile("(?i)bdat[^\n]*last");
    private static final byte[] QUEUED = SmtpReplies.QUEUED_PREFIX;
    /** One loop's pools, shared by the conversations (run one at a time), which give their buffers back at close. */
    private static final BufferPool READ_BUFFERS = new BufferPool(SessionDriver.READ_BUFFER_BYTES, 4);
    private static final BufferPool SMALL_READ_BUFFERS = new BufferPool(4096, 4);
    private static final BufferPool WRITE_BUFFERS = new BufferPool(Relay.WRITE_BUFFER_BYTES, 4);
    /** Built once: a configuration load per input would slow fuzzing down. */
    private static final SmtpServerSettings DEFAULTS = SmtpServerSettings.defaults("relay.test");

    private static final String[] FRAGMENTS = {
        "EHLO client.test\r\n", "HELO c\r\n", "MAIL FROM:<a@b.test>\r\n", "MAIL FROM:<> BODY=8BITMIME SIZE=20\r\n",
        "MAIL FROM:<u@x> SMTPUTF8\r\n", "RCPT TO:<x@y.test>\r\n", "RCPT TO:<postmaster>\r\n", "DATA\r\n",
        "Received: a\r\n", "Subject: s\r\n", "\r\n", ".\r\n", "..x\r\n", "\r\n.\r\n", "body\r\n", "\n.\n", "\r.\r",
        "\r\n.\n", "\n.\r\n", "BDAT 5\r\n", "BDAT 3 LAST\r\n", "BDAT 0 LAST\r\n", "BDAT 12\r\n", "BDAT x\r\n",
        "RSET\r\n", "NOOP\r\n", "QUIT\r\n", "VRFY x\r\n", "STARTTLS\r\n", "\n", "\r", ".", "\0", "\u00e9", " ",
    };

    @FuzzTest(maxDuration = "10s")
    void fuzz(final byte[] data)
    {
        if (data.length <= MAX_INPUT)
        {
            check(data);
        }
    }

    @Test
    @Timeout(60)
    void boundedRandomConversations()
    {
        final SplittableRandom random = new SplittableRandom(0x5E55);
        final long deadline = System.nanoTime() + 3_000_000_000L;
        int runs = 0;
        while (runs < 100_000 && (runs < 500 || System.nanoTime() < deadline))
        {
            check(randomInput(random));
            runs++;
        }
    }

    static byte[] randomInput(final SplittableRandom random)
    {
        final StringBuilder text = new StringBuilder();
        final int cuts = random.nextInt(8);
        text.append((char)(cuts | (random.nextInt(32) << 3)));
        for (int i = 0; i < 2 * cuts; i++)
        {
            text.append((char)random.nextInt(256));
        }
        if (random.nextInt(4) != 0)
        {
            text.append(random.nextBoolean() ? "EHLO c\r\n" : "HELO c\r\n");
            text.append("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\n");
        }
        final int parts = random.nextInt(30);
        for (int i = 0; i < parts; i++)
        {
            if (random.nextInt(4) == 0)
            {
                text.append((char)random.nextInt(256));
            }
            else
            {
                text.append(FRAGMENTS[random.nextInt(FRAGMENTS.length)]);
            }
        }
        return text.toString().getBytes(StandardCharsets.ISO_8859_1);
    }

    /** Runs one conversation as laid out in the class javadoc and checks every invariant. */
    static void check(final byte[] data)
    {
        final int flags = data.length == 0 ? 0 : data[0] & 0xFF;
        final byte[] payload = FuzzChecks.payload(data);
        final int[] ends = FuzzChecks.pieceEnds(data);
        final int cuts = ends.length - 1;

        SmtpServerSettings settings = DEFAULTS;
        if ((flags & 8) != 0)
        {
            settings = settings.withMaxMessageSize(64).withMaxRecipients(2).withMaxErrors(4).withMaxHops(1);
        }
        final String clientIp = (flags & 128) != 0 ? "10.0.0.1" : "127.0.0.1";
        final SessionDriver driver = new SessionDriver(settings, clientIp,
            new LoopDouble((flags & 64) != 0 ? SMALL_READ_BUFFERS : READ_BUFFERS, WRITE_BUFFERS));
        final StringBuilder output = new StringBuilder(driver.output());
        int start = 0;
        for (int i = 0; i <= cuts; i++)
        {
            if (i == cuts && (flags & 16) != 0)
            {
                output.append(driver.drain());
            }
            if (driver.client.isClosing())
            {
                break;
            }
            output.append(driver.send(Arrays.copyOfRange(payload, start, ends[i])));
            start = ends[i];
        }
        if ((flags & 32) != 0 && !driver.client.isClosed())
        {
            output.append(driver.timeout());
        }
        driver.close();
        assertTrue(driver.client.isClosed(), "the loop did not see the client go");
        assertFalse(driver.sink.isOpen(), "transaction left open after close");
        driver.loop.stop();
        checkReplies(payload, settings, output.toString());
        checkCommitted(payload, driver.sink, output.toString());
    }

    private static void checkReplies(final byte[] payload, final SmtpServerSettings settings, final String output)
    {
        assertTrue(output.isEmpty() || output.endsWith("\r\n"), "reply not ended by CRLF");
        int replies = 0;
        for (final String line : output.split("\r\n"))
        {
            assertTrue(REPLY_LINE.matcher(line).matches(), () -> "bad reply line: " + line);
            if (line.charAt(3) == ' ')
            {
                replies++;
            }
        }
        int lineFeeds = 0;
        for (final byte b : payload)
        {
            if (b == '\n')
            {
                lineFeeds++;
            }
        }
        // greeting, one reply per line or per over-long stretch, and one 421 (errors, drain or timeout)
        final int bound = 2 + lineFeeds + payload.length / settings.maxCommandLength() + 1;
        assertTrue(replies <= bound, "replies " + replies + " > " + bound);
        assertTrue(output.length() <= replies * SmtpReplies.MAX_REPLY_BYTES, "output " + output.length());
    }

    private static void checkCommitted(final byte[] payload, final MemorySink sink, final String output)
    {
        final String input = new String(payload, StandardCharsets.ISO_8859_1);
        if (!sink.committed.isEmpty())
        {
            assertTrue(input.contains("\r\n.\r\n") || BDAT_LAST.matcher(input).find(),
                "committed without CRLF.CRLF or BDAT LAST");
        }
        int queued = 0;
        for (int i = output.indexOf(new String(QUEUED, StandardCharsets.ISO_8859_1)); i >= 0;
            i = output.indexOf(new String(QUEUED, StandardCharsets.ISO_8859_1), i + 1))
        {
            queued++;
        }
        assertEquals(sink.committed.size(), queued, "commits vs 'queued as' replies");
        for (final MemorySink.Stored stored : sink.committed)
        {
            assertFalse(stored.recipients.isEmpty(), "committed without recipients");
            final byte[] body = stored.body;
            for (int i = 0; i < body.length; i++)
            {
                if (body[i] == '\r')
                {
                    assertTrue(i + 1 < body.length && body[i + 1] == '\n', "accepted a bare CR at " + i);
                }
                else if (body[i] == '\n')
                {
                    assertTrue(i > 0 && body[i - 1] == '\r', "accepted a bare LF at " + i);
                }
            }
            if ((stored.flags & InboundMessage.FLAG_BDAT) == 0)
            {
                final String text = new String(body, StandardCharsets.ISO_8859_1);
                assertFalse(("\r\n" + text).contains("\r\n.\r\n"), "DATA body holds its terminator");
                assertTrue(text.isEmpty() || text.endsWith("\r\n"), "DATA body not ended by CRLF");
            }
        }
    }
}
