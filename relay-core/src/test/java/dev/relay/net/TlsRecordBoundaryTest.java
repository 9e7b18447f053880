package dev.relay.net;

import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TLS records split at every offset, through the {@link LoopDouble} (the real {@link TlsLayer} over in-memory
 * reads and writes): the handler is offered exactly the plaintext sent, whatever the read boundaries (inside a
 * record header, inside a body, between records, one byte at a time); and the peer gets exactly what the handler
 * wrote, whatever the writes the peer's window allows (records cut anywhere, output pending between passes).
 * A few seconds.
 */
@Timeout(120)
class TlsRecordBoundaryTest
{
    private static final long HANDSHAKE_MS = 10_000;

    /** The server engine under test: the JDK's here, BoringSSL's in {@link TlsRecordBoundaryOpenSslTest}. */
    javax.net.ssl.SSLEngine serverEngine()
    {
        return TestCertificates.get().serverEngine(TestCertificates.KeyType.EC);
    }

    private final class Connected
    {
        final LoopDouble loop = new LoopDouble(64 * 1024, 16 * 1024);
        final ScriptedHandler handler = new ScriptedHandler();
        final LoopDouble.Peer peer;
        final ByteArrayOutputStream offered = new ByteArrayOutputStream();

        Connected()
        {
            handler.onOpen = h -> h.connection.startTls(serverEngine(), HANDSHAKE_MS);
            handler.onInput = (h, text) ->
            {
                offered.writeBytes(text.getBytes(StandardCharsets.ISO_8859_1));
                return text.length();
            };
            loop.handlerFactory(handler::attach);
            peer = loop.accept(new InetSocketAddress("127.0.0.1", 40_000));
            loop.runUntilIdle();
            peer.startTls(TestCertificates.get().clientEngine());
            assertTrue(loop.runUntil(() -> handler.has("tlsEstablished") && peer.tls().isEstablished(), 5_000),
                handler.kinds().toString());
        }

        /** The records the peer's engine makes of {@code pieces}, one or more records each, not sent. */
        byte[] records(final byte[]... pieces)
        {
            final ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (final byte[] piece : pieces)
            {
                peer.tls().send(piece);
                out.writeBytes(peer.tls().pump());
            }
            return out.toByteArray();
        }

        byte[] takeOffered()
        {
            final byte[] bytes = offered.toByteArray();
            offered.reset();
            return bytes;
        }
    }

    private static byte[] text(final String prefix, final int length)
    {
        final byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)(i < prefix.length() ? prefix.charAt(i) : 'a' + (i * 7) % 26);
        }
        return bytes;
    }

    private static byte[] concat(final byte[]... pieces)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (final byte[] piece : pieces)
        {
            out.writeBytes(piece);
        }
        return out.toByteArray();
    }

    @Test
    void threeSmallRecordsSplitAtEveryOffsetAreOfferedExactly()
    {
        final Connected c = new Connected();
        final byte[] probe = c.records(text("1:", 17), text("2:", 1), text("3:", 60));
        final int length = probe.length;
        c.peer.sendRaw(probe);
        c.loop.runUntilIdle();
        c.takeOffered();
        for (int split = 0; split <= length; split++)
        {
            final byte[] first = text("a" + split + ":", 17);
            final byte[] second = text("b" + split + ":", 1);
            final byte[] third = text("c" + split + ":", 60);
            final byte[] records = c.records(first, second, third);
            assertEquals(length, records.length, "record sizes changed");
            c.peer.sendRaw(Arrays.copyOfRange(records, 0, split));
            c.loop.runUntilIdle();
            c.peer.sendRaw(Arrays.copyOfRange(records, split, records.length));
            c.loop.runUntilIdle();
            assertArrayEquals(concat(first, second, third), c.takeOffered(), "split at " + split);
            assertEquals(0, c.loop.tlsBuffersInUse(), "an idle TLS connection holds a wire buffer");
        }
        assertEquals(0, c.handler.count("tlsFailed"));
        assertEquals(0, c.handler.count("close"));
    }

    @Test
    void fullRecordsReadOneByteAtATimeOrInOddChunksAreOfferedExactly()
    {
        final Connected c = new Connected();
        // 40,000 bytes: two full 16 KiB records and a partial one
        final byte[] plaintext = text("big:", 40_000);
        for (final int chunk : new int[]{1, 2, 3, 5, 7, 21, 22, 100, 4_096, 16_405, 16_406, 16_407, 33_000})
        {
            c.peer.maxBytesPerRead(chunk);
            c.peer.sendRaw(c.records(plaintext));
            c.loop.runUntilIdle();
            assertArrayEquals(plaintext, c.takeOffered(), "reads of " + chunk);
            assertEquals(0, c.loop.tlsBuffersInUse(), "an idle TLS connection holds a wire buffer");
        }
    }

    @Test
    void randomReadBoundariesOverManyRecordsGiveTheSameBytes()
    {
        final Connected c = new Connected();
        final Random random = new Random(20_262_026);
        for (int round = 0; round < 200; round++)
        {
            final byte[] plaintext = text("r" + round + ":", 1 + random.nextInt(20_000));
            final byte[] records = c.records(plaintext);
            int at = 0;
            while (at < records.length)
            {
                final int piece = Math.min(records.length - at, 1 + random.nextInt(random.nextBoolean() ? 40 : 20_000));
                c.peer.sendRaw(Arrays.copyOfRange(records, at, at + piece));
                c.loop.runUntilIdle();
                at += piece;
            }
            assertArrayEquals(plaintext, c.takeOffered(), "round " + round);
        }
    }

    @Test
    void outputCutAnywhereByThePeersWindowArrivesExactly()
    {
        final Connected c = new Connected();
        for (final int window : new int[]{1, 5, 21, 22, 23, 100, 16_400, 16_405, 16_406, 16_407, 20_000})
        {
            final long before = c.peer.receivedTotal();
            c.peer.takeReceivedBytes();
            c.peer.window(window);
            c.loop.execute(() -> c.handler.stream(48_000, false));
            assertTrue(c.loop.runUntil(() -> c.peer.receivedTotal() - before == 48_000, 60_000),
                "window " + window + ": " + (c.peer.receivedTotal() - before));
            final byte[] received = c.peer.takeReceivedBytes();
            for (int i = 0; i < received.length; i++)
            {
                if (received[i] != ScriptedHandler.pattern(i))
                {
                    throw new AssertionError("window " + window + ": byte " + i + " differs");
                }
            }
        }
        assertEquals(0, c.handler.count("tlsFailed"));
        assertEquals(0, c.loop.tlsBuffersInUse(), "an idle TLS connection holds a wire buffer");
    }
}
