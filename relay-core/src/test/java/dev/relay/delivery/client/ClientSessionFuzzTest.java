package dev.relay.delivery.client;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.relay.Relay;
import dev.relay.config.TlsLevel;
import dev.relay.net.BufferPool;
import dev.relay.net.LoopDouble;
import dev.relay.smtp.FuzzChecks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes the outbound side with arbitrary peer bytes, cut into reads at fuzzer-chosen offsets (layout in
 * {@link FuzzChecks#payload}; flag bit 3: a 100-byte output buffer, bit 4: a raw BDAT-received body, bit 5: 8-bit
 * content, bit 6: three recipients, bit 7: a timeout at the end).
 * <ul>
 * <li>{@link SmtpReplyParser} alone: the same replies whatever the split; codes 100-599; text within
 * {@link SmtpReplyParser#MAX_REPLY_BYTES}; a protocol error stays; never more than a line left unconsumed.</li>
 * <li>{@link SmtpClientSession} on the {@link LoopDouble} ({@link ClientDriver}), sending a message whenever idle (at
 * most two): no exception (a write beyond the output space throws); unconsumed input stays under a line while
 * reading; every message gets exactly one result, every recipient DELIVERED, DEFERRED or FAILED; each body opened is
 * closed; a protocol error (or any end but a lost connection) closes the connection; exactly one onClosed. The
 * session is at TLS level {@code may}: a peer offering STARTTLS gets it, and its 220 hands what follows to the TLS
 * engine (garbage to it: the handshake fails and the session ends like any other).</li>
 * </ul>
 * Modes as in {@code dev.relay.smtp.SmtpParsingFuzzTest}; {@link #boundedRandomPeers()} runs on every build.
 */
class ClientSessionFuzzTest
{
    private static final int MAX_INPUT = 64 * 1024;
    /** One loop's pools, shared by the conversations (one at a time), which give their buffers back when stopped. */
    private static final BufferPool READ_BUFFERS = new BufferPool(Relay.DELIVERY_READ_BUFFER_BYTES, 4);
    private static final BufferPool WRITE_BUFFERS = new BufferPool(Relay.DELIVERY_WRITE_BUFFER_BYTES, 4);
    private static final BufferPool SMALL_WRITE_BUFFERS = new BufferPool(100, 4);
    private static final String[] FRAGMENTS = {
        "220 mx ESMTP\r\n", "220-mx\r\n", "250-mx\r\n", "250-PIPELINING\r\n", "250-CHUNKING\r\n", "250-8BITMIME\r\n",
        "250-SIZE 100\r\n", "250 SMTPUTF8\r\n", "250 ok\r\n", "250 2.1.5 ok\r\n", "354 go\r\n", "421 4.3.2 bye\r\n",
        "450 4.2.0 later\r\n", "550 5.1.1 unknown\r\n", "552-5.3.4 big\r\n", "500\r\n", "250\n", "199 x\r\n",
        "600 x\r\n", "2", "\r\n", "\n", " ", "-", "5.7.1 ", "250-STARTTLS\r\n", "220 2.0.0 go ahead\r\n",
        "454 4.7.0 no TLS\r\n",
    };
    /** May: the JDK's trust store (nothing is verified at may; the handshakes here fail anyway). */
    private static final ClientTlsContext TLS = loadTls();

    private static ClientTlsContext loadTls()
    {
        try
        {
            return ClientTlsContext.load(null, dev.relay.net.ServerTlsContext.Provider.JDK);
        }
        catch (final java.io.IOException | java.security.GeneralSecurityException ex)
        {
            throw new IllegalStateException(ex);
        }
    }

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
    void boundedRandomPeers()
    {
        final SplittableRandom random = new SplittableRandom(0xC11E);
        final long deadline = System.nanoTime() + 3_000_000_000L;
        int runs = 0;
        while (runs < 100_000 && (runs < 500 || System.nanoTime() < deadline))
        {
            final StringBuilder text = new StringBuilder();
            final int cuts = random.nextInt(8);
            text.append((char)(cuts | (random.nextInt(32) << 3)));
            for (int i = 0; i < 2 * cuts; i++)
            {
                text.append((char)random.nextInt(256));
            }
            if (random.nextInt(3) != 0)
            {
                text.append("220 mx\r\n250-mx\r\n");
                text.append(random.nextBoolean() ? "250-PIPELINING\r\n" : "");
                text.append(random.nextBoolean() ? "250-CHUNKING\r\n" : "");
                text.append(random.nextInt(4) == 0 ? "250-STARTTLS\r\n" : "");
                text.append("250 8BITMIME\r\n");
            }
            final int parts = random.nextInt(20);
            for (int i = 0; i < parts; i++)
            {
                text.append(random.nextInt(6) == 0 ?
                    String.valueOf((char)random.nextInt(256)) : FRAGMENTS[random.nextInt(FRAGMENTS.length)]);
            }
            check(text.toString().getBytes(StandardCharsets.ISO_8859_1));
            runs++;
        }
    }

    static void check(final byte[] data)
    {
        final byte[] payload = FuzzChecks.payload(data);
        final int[] ends = FuzzChecks.pieceEnds(data);
        checkReplyParser(payload, ends);
        checkClientSession(data.length == 0 ? 0 : data[0] & 0xFF, payload, ends);
    }

    private static void checkReplyParser(final byte[] payload, final int[] ends)
    {
        assertEquals(parseReplies(payload, new int[]{payload.length}), parseReplies(payload, ends), "split changed");
    }

    /** Offers the pieces as a caller would (keeping unconsumed bytes); returns the replies seen, as text. */
    private static List<String> parseReplies(final byte[] payload, final int[] ends)
    {
        final ByteBuffer buffer = ByteBuffer.wrap(payload);
        final SmtpReplyParser parser = new SmtpReplyParser();
        final List<String> replies = new ArrayList<>();
        int position = 0;
        for (final int to : ends)
        {
            while (position < to)
            {
                final int result = parser.parse(buffer, position, to);
                assertTrue(parser.end() >= position && parser.end() <= to, "end out of range");
                position = parser.end();
                if (result == SmtpReplyParser.PROTOCOL_ERROR)
                {
                    assertNotNull(parser.error());
                    assertEquals(SmtpReplyParser.PROTOCOL_ERROR, parser.parse(buffer, position, to), "not sticky");
                    replies.add("error");
                    return replies;
                }
                if (result == SmtpReplyParser.NEED_MORE)
                {
                    assertTrue(to - position < SmtpReplyParser.MAX_LINE_BYTES, "kept more than a line");
                    break;
                }
                assertTrue(parser.code() >= 100 && parser.code() <= 599, "code " + parser.code());
                assertTrue(parser.text().length() <= SmtpReplyParser.MAX_REPLY_BYTES, "text too long");
                replies.add(parser.code() + "|" + parser.lineCount() + "|" + parser.enhancedCode() + "|" +
                    parser.text() + "|" + parser.detail());
            }
        }
        return replies;
    }

    private static void checkClientSession(final int flags, final byte[] payload, final int[] ends)
    {
        final ClientDriver driver = new ClientDriver(ClientDriver.settings(),
            new LoopDouble(READ_BUFFERS, (flags & 8) != 0 ? SMALL_WRITE_BUFFERS : WRITE_BUFFERS),
            new ClientTls(TlsLevel.MAY, TLS, "mx.test", 25));
        final List<TestMessage> sent = new ArrayList<>();
        int start = 0;
        for (final int end : ends)
        {
            if (driver.session.isIdle() && sent.size() < 2)
            {
                final TestMessage message = message(flags, sent.size());
                sent.add(message);
                driver.send(message);
            }
            driver.peer(Arrays.copyOfRange(payload, start, end));
            start = end;
            if (!driver.closed() && !driver.server.isInputPaused())
            {
                assertTrue(driver.unconsumed() < SmtpReplyParser.MAX_LINE_BYTES, "unbounded input kept");
            }
            if (driver.closedReason != null && !driver.closedReason.startsWith("connection lost"))
            {
                assertTrue(driver.server.isClosing(), "ended without closing: " + driver.closedReason);
            }
        }
        if ((flags & 128) != 0 && !driver.closed())
        {
            driver.timeout();
        }
        if (!driver.closed())
        {
            driver.lose();
        }
        driver.loop.stop();

        assertEquals(sent.size(), driver.results.size(), "results " + driver.events);
        for (int i = 0; i < sent.size(); i++)
        {
            final TransactionResult result = driver.results.get(i);
            assertEquals(sent.get(i).recipients.length, result.size());
            for (int r = 0; r < result.size(); r++)
            {
                assertNotNull(result.get(r), "no result for recipient " + r + " " + driver.events);
                assertNotNull(result.get(r).status());
            }
            assertEquals(sent.get(i).opened, sent.get(i).closed, "body left open");
            assertTrue(sent.get(i).opened <= 1, "body opened twice");
        }
        assertEquals(1, driver.events.stream().filter(event -> event.startsWith("closed")).count(), driver.events.toString());
    }

    private static TestMessage message(final int flags, final int index)
    {
        final TestMessage message = (flags & 64) != 0 ? TestMessage.to("b@y", "c@y", "d@z") : TestMessage.to("b@y");
        if ((flags & 16) != 0)
        {
            message.body("Subject: t\r\n\r\n.hello\nbare\r\nend" + index, false);
        }
        else
        {
            message.body("Subject: t\r\n\r\n..hello\r\n" + index + "\r\n", true);
        }
        message.eightBit = (flags & 32) != 0;
        message.partBytes = 7;
        return message;
    }
}
