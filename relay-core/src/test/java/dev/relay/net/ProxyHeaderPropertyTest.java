package dev.relay.net;

import dev.relay.testing.ProxyHeaders;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.Size;

import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Property tests (jqwik) of {@link ProxyHeaderParser}: it never throws nor reads outside what it is given, any split
 * of the same bytes gives the same result, every well-formed header names its client and leaves exactly the bytes
 * after it, and IPv6 text in every form RFC 4291 allows reads back as its address.
 */
class ProxyHeaderPropertyTest
{
    private static final byte[][] FRAGMENTS = {
        ascii("PROXY "), ascii("TCP4 "), ascii("TCP6 "), ascii("UNKNOWN"), ascii("192.0.2.1"), ascii("::1"),
        ascii("ffff:"), ascii(" "), ascii("."), ascii(":"), ascii("65535"), ascii("0"), ascii("\r\n"), ascii("\r"),
        ascii("\n"), ProxyHeaders.V2_SIGNATURE, {0x21}, {0x20}, {0x11}, {0x21, 0x11, 0x00, 0x0C}, {0x00}, {(byte)0xFF},
    };

    /** Bytes made mostly of the grammar's pieces, so near misses of both versions are common. */
    @Provide
    Arbitrary<byte[]> proxyish()
    {
        final Arbitrary<byte[]> piece = Arbitraries.oneOf(Arbitraries.of(FRAGMENTS),
            Arbitraries.bytes().array(byte[].class).ofMaxSize(4));
        return piece.list().ofMaxSize(24).map(ProxyHeaderPropertyTest::join);
    }

    @Property(tries = 1000)
    void anySplitGivesTheSameResult(
        @ForAll("proxyish") final byte[] input, @ForAll @Size(max = 8) final List<Integer> cuts)
    {
        assertEquals(ProxyParsing.whole(input), ProxyParsing.run(input, ProxyParsing.pieceEnds(cuts, input.length)));
    }

    @Property(tries = 300)
    void arbitraryBytesNeverThrow(
        @ForAll @Size(max = 300) final byte[] input, @ForAll @Size(max = 4) final List<Integer> cuts)
    {
        assertEquals(ProxyParsing.whole(input), ProxyParsing.run(input, ProxyParsing.pieceEnds(cuts, input.length)));
    }

    @Provide
    Arbitrary<byte[]> addresses()
    {
        return Arbitraries.oneOf(Arbitraries.bytes().array(byte[].class).ofSize(4),
            Arbitraries.bytes().array(byte[].class).ofSize(16));
    }

    @Property(tries = 500)
    void wellFormedHeadersNameTheirClient(
        @ForAll("addresses") final byte[] address,
        @ForAll @IntRange(min = 0, max = 65535) final int port,
        @ForAll final boolean v2,
        @ForAll @Size(max = 40) final byte[] tlvValue,
        @ForAll @Size(max = 40) final byte[] after,
        @ForAll @Size(max = 6) final List<Integer> cuts) throws UnknownHostException
    {
        final InetAddress client = InetAddress.getByAddress(address);
        final InetSocketAddress source = new InetSocketAddress(client, port);
        final InetSocketAddress destination = new InetSocketAddress(
            InetAddress.getByAddress(new byte[address.length]), 25);
        // a v4-mapped IPv6 address becomes an Inet4Address in Java: its header is then a TCP4 one
        final byte[] header = v2 ? ProxyHeaders.v2(source, destination, ProxyHeaders.tlv(0xE1, tlvValue)) :
            ProxyHeaders.v1(source, destination);
        final byte[] input = ProxyHeaders.concat(header, after);
        final String expected = "DONE v" + (v2 ? 2 : 1) + " " + client.getHostAddress() + ":" + port + " +" +
            after.length;
        assertEquals(expected, ProxyParsing.run(input, ProxyParsing.pieceEnds(cuts, input.length)));
    }

    @Property(tries = 1000)
    void ipv6TextInEveryFormReadsBack(
        @ForAll("sparse16") final byte[] address, @ForAll final boolean compress, @ForAll final boolean dottedTail,
        @ForAll final boolean upper)
    {
        String text = ipv6Text(address, compress, dottedTail);
        if (upper)
        {
            text = text.toUpperCase(java.util.Locale.ROOT);
        }
        final byte[] bytes = ascii(text);
        final byte[] parsed = new byte[16];
        assertTrue(IpAddressText.parseIpv6(bytes, 0, bytes.length, parsed), text);
        assertArrayEquals(address, parsed, text);
    }

    /** 16 bytes with many zero groups, so compression has runs to take. */
    @Provide
    Arbitrary<byte[]> sparse16()
    {
        return Arbitraries.integers().between(0, 0xFFFF)
            .map(group -> group % 3 == 0 ? 0 : group)
            .list().ofSize(8)
            .map(groups ->
            {
                final byte[] bytes = new byte[16];
                for (int i = 0; i < 8; i++)
                {
                    bytes[2 * i] = (byte)(groups.get(i) >> 8);
                    bytes[2 * i + 1] = (byte)(int)groups.get(i);
                }
                return bytes;
            });
    }

    /** RFC 4291 §2.2 text: full groups, or the longest zero run as "::" (RFC 5952), and the last 32 bits dotted. */
    static String ipv6Text(final byte[] address, final boolean compress, final boolean dottedTail)
    {
        final int groups = dottedTail ? 6 : 8;
        int bestStart = -1;
        int bestLength = 0;
        for (int i = 0; compress && i < groups; )
        {
            int j = i;
            while (j < groups && address[2 * j] == 0 && address[2 * j + 1] == 0)
            {
                j++;
            }
            if (j - i > bestLength)
            {
                bestStart = i;
                bestLength = j - i;
            }
            i = j == i ? i + 1 : j;
        }
        final StringBuilder text = new StringBuilder();
        for (int i = 0; i < groups; i++)
        {
            if (i == bestStart)
            {
                text.append(i == 0 ? "::" : ":");
                i += bestLength - 1;
                continue;
            }
            text.append(Integer.toHexString((address[2 * i] & 0xFF) << 8 | address[2 * i + 1] & 0xFF));
            if (i < groups - 1 || dottedTail)
            {
                text.append(':');
            }
        }
        if (dottedTail)
        {
            text.append(address[12] & 0xFF).append('.').append(address[13] & 0xFF).append('.')
                .append(address[14] & 0xFF).append('.').append(address[15] & 0xFF);
        }
        return text.toString();
    }

    @Property(tries = 200)
    void aHeaderArrivingWholeOrInPiecesLeavesTheSameBytes(
        @ForAll("proxyish") final byte[] noise, @ForAll @Size(max = 5) final List<Integer> cuts)
    {
        final byte[] input = ProxyHeaders.concat(ProxyHeaders.v1("192.0.2.77", 2525), noise);
        assertEquals("DONE v1 192.0.2.77:2525 +" + noise.length,
            ProxyParsing.run(input, ProxyParsing.pieceEnds(cuts, input.length)));
    }

    static byte[] join(final List<byte[]> pieces)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        pieces.forEach(out::writeBytes);
        return out.toByteArray();
    }

    private static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }
}
