package dev.relay.delivery.client;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A raw body sent without CHUNKING, read in any part sizes through any output buffer size, goes out as exactly the
 * reference stuffing of its CRLF-normalised form; and un-stuffing what went out gives that form back.
 */
class SmtpClientStuffingPropertyTest
{
    @Property(tries = 400)
    void stuffingDoesNotDependOnPartOrBufferSizes(@ForAll("bodies") final byte[] raw,
        @ForAll @IntRange(min = 1, max = 50) final int partBytes,
        @ForAll @IntRange(min = 2, max = 64) final int outputCapacity)
    {
        final ClientDriver driver = ClientDriver.ready(outputCapacity + 62, "PIPELINING");
        final TestMessage message = TestMessage.to("b@y");
        message.body = raw;
        message.dotStuffed = false;
        message.partBytes = partBytes;
        driver.send(message);
        final String header = new String(message.header, StandardCharsets.ISO_8859_1);
        final String out = driver.peer("250 ok\r\n250 ok\r\n354 go\r\n");
        final byte[] normalised = normalise(raw);
        final byte[] stuffed = stuff(normalised);
        final boolean endsCrlf = normalised.length == 0 || normalised[normalised.length - 1] == '\n';
        final String expected = header + new String(stuffed, StandardCharsets.ISO_8859_1) +
            (endsCrlf ? "" : "\r\n") + ".\r\n";
        assertEquals(expected, out);
        assertArrayEquals(normalised, unstuff(stuffed));
    }

    @Property(tries = 200)
    void tinyOutputBuffers(@ForAll("bodies") final byte[] raw,
        @ForAll @IntRange(min = 2, max = 16) final int outputCapacity,
        @ForAll @IntRange(min = 1, max = 9) final int partBytes)
    {
        final ClientDriver driver = new ClientDriver(ClientDriver.settings(), outputCapacity);
        driver.peer("220 x\r\n");
        driver.peer("250-x\r\n250 PIPELINING\r\n");
        final TestMessage message = TestMessage.to("b@y");
        message.body = raw;
        message.dotStuffed = false;
        message.partBytes = partBytes;
        driver.send(message);
        final String out = driver.peer("250 ok\r\n250 ok\r\n354 go\r\n");
        final byte[] normalised = normalise(raw);
        final boolean endsCrlf = normalised.length == 0 || normalised[normalised.length - 1] == '\n';
        assertEquals(new String(message.header, StandardCharsets.ISO_8859_1) +
            new String(stuff(normalised), StandardCharsets.ISO_8859_1) + (endsCrlf ? "" : "\r\n") + ".\r\n", out);
    }

    @Provide
    Arbitrary<byte[]> bodies()
    {
        return Arbitraries.of((byte)'.', (byte)'\r', (byte)'\n', (byte)'a').array(byte[].class).ofMaxSize(60);
    }

    /** Bare LF → CRLF. */
    private static byte[] normalise(final byte[] raw)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte previous = 0;
        for (final byte b : raw)
        {
            if (b == '\n' && previous != '\r')
            {
                out.write('\r');
            }
            out.write(b);
            previous = b;
        }
        return out.toByteArray();
    }

    /** RFC 5321 §4.5.2: a line starting with a dot gets one more. */
    private static byte[] stuff(final byte[] text)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        boolean lineStart = true;
        for (final byte b : text)
        {
            if (lineStart && b == '.')
            {
                out.write('.');
            }
            out.write(b);
            lineStart = b == '\n';
        }
        return out.toByteArray();
    }

    private static byte[] unstuff(final byte[] wire)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        boolean lineStart = true;
        for (final byte b : wire)
        {
            if (!(lineStart && b == '.'))
            {
                out.write(b);
                lineStart = b == '\n';
            }
            else
            {
                lineStart = false;
            }
        }
        return out.toByteArray();
    }
}
