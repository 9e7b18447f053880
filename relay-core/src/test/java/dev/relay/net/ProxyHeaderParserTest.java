package dev.relay.net;

import dev.relay.testing.ProxyHeaders;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.stream.Stream;

import static dev.relay.testing.ProxyHeaders.concat;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link ProxyHeaderParser} on HAProxy's proxy-protocol.txt examples and their near misses: each input whole, byte by
 * byte and cut at every offset gives the same result.
 */
@Timeout(60)
class ProxyHeaderParserTest
{
    private static final byte[] EHLO = ascii("EHLO client.example\r\n");
    private static final String IPV6_MAX = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

    static Stream<Arguments> headers()
    {
        final InetSocketAddress v4 = new InetSocketAddress("192.0.2.1", 56324);
        final InetSocketAddress v4To = new InetSocketAddress("198.51.100.2", 25);
        final InetSocketAddress v6 = new InetSocketAddress("2001:db8::1", 4000);
        final InetSocketAddress v6To = new InetSocketAddress("2001:db8::2", 25);
        final byte[] tlvs = concat(ProxyHeaders.tlv(0x01, ascii("smtp")), ProxyHeaders.tlv(0x04, new byte[0]));
        final byte[] v4Block = java.util.Arrays.copyOf(ProxyHeaders.v2(v4, v4To, new byte[0]), 28);
        return Stream.of(
            // v1 (§2.1)
            Arguments.of("TCP4", concat(ascii("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n"), EHLO),
                "DONE v1 192.0.2.1:56324 +21"),
            Arguments.of("TCP6", concat(ProxyHeaders.v1(v6, v6To), EHLO), "DONE v1 2001:db8:0:0:0:0:0:1:4000 +21"),
            Arguments.of("TCP6 compressed", ascii("PROXY TCP6 ::1 :: 0 65535\r\n"), "DONE v1 0:0:0:0:0:0:0:1:0 +0"),
            Arguments.of("TCP6 v4-mapped", ascii("PROXY TCP6 ::ffff:192.0.2.9 ::1 1 2\r\n"), "DONE v1 192.0.2.9:1 +0"),
            Arguments.of("TCP6 full hex", ascii("PROXY TCP6 " + IPV6_MAX + " " + IPV6_MAX + " 65535 65535\r\n"),
                "DONE v1 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:65535 +0"),
            Arguments.of("UNKNOWN", concat(ascii("PROXY UNKNOWN\r\n"), EHLO), "DONE v1 peer +21"),
            Arguments.of("UNKNOWN, longest line",
                ascii("PROXY UNKNOWN " + IPV6_MAX + " " + IPV6_MAX + " 65535 65535\r\n"), "DONE v1 peer +0"),
            Arguments.of("UNKNOWN, one byte too long",
                ascii("PROXY UNKNOWN " + IPV6_MAX + " " + IPV6_MAX + " 65535 655350\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_TOO_LONG),
            Arguments.of("no line end within 107 bytes", ascii("PROXY UNKNOWN " + "x".repeat(200)),
                "MALFORMED " + ProxyHeaderParser.V1_TOO_LONG),
            Arguments.of("partial", ascii("PROXY TCP4 192.0.2.1 19"), "NEED_MORE"),
            Arguments.of("nothing", new byte[0], "NEED_MORE"),
            Arguments.of("bare LF", ascii("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_LINE_END),
            Arguments.of("bare CR", ascii("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\rEHLO"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_LINE_END),
            Arguments.of("UNKNOWN with a bare LF", ascii("PROXY UNKNOWN x\ny\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_LINE_END),
            Arguments.of("two spaces", ascii("PROXY TCP4  192.0.2.1 198.51.100.2 56324 25\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("trailing space", ascii("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25 \r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("no destination port", ascii("PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("octet over 255", ascii("PROXY TCP4 256.0.2.1 198.51.100.2 56324 25\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("leading zero", ascii("PROXY TCP4 192.0.2.01 198.51.100.2 56324 25\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("three octets", ascii("PROXY TCP4 192.0.2 198.51.100.2 56324 25\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("IPv6 under TCP4", ascii("PROXY TCP4 ::1 ::1 1 2\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("IPv4 under TCP6", ascii("PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("two gaps", ascii("PROXY TCP6 1::2::3 ::1 1 2\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("nine groups", ascii("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("gap for nothing", ascii("PROXY TCP6 1:2:3:4::5:6:7:8 ::1 1 2\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("zone", ascii("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("port over 65535", ascii("PROXY TCP4 192.0.2.1 198.51.100.2 65536 25\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("negative port", ascii("PROXY TCP4 192.0.2.1 198.51.100.2 -1 25\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_ADDRESS),
            Arguments.of("lower case", ascii("proxy tcp4 192.0.2.1 198.51.100.2 56324 25\r\n"),
                "MALFORMED " + ProxyHeaderParser.NOT_A_HEADER),
            Arguments.of("TCP5", ascii("PROXY TCP5 192.0.2.1 198.51.100.2 56324 25\r\n"),
                "MALFORMED " + ProxyHeaderParser.V1_BAD_PROTOCOL),
            Arguments.of("UNKNOWNX", ascii("PROXY UNKNOWNX\r\n"), "MALFORMED " + ProxyHeaderParser.V1_BAD_PROTOCOL),
            Arguments.of("no header: SMTP", EHLO, "MALFORMED " + ProxyHeaderParser.NOT_A_HEADER),
            Arguments.of("no header: P", ascii("POST / HTTP/1.0\r\n"), "MALFORMED " + ProxyHeaderParser.NOT_A_HEADER),
            // v2 (§2.2)
            Arguments.of("v2 TCP4", concat(ProxyHeaders.v2(v4, v4To, new byte[0]), EHLO),
                "DONE v2 192.0.2.1:56324 +21"),
            Arguments.of("v2 TCP6", concat(ProxyHeaders.v2(v6, v6To, new byte[0]), EHLO),
                "DONE v2 2001:db8:0:0:0:0:0:1:4000 +21"),
            Arguments.of("v2 TCP4 with TLVs", concat(ProxyHeaders.v2(v4, v4To, tlvs), EHLO),
                "DONE v2 192.0.2.1:56324 +21"),
            Arguments.of("v2 TCP6 with 60000 bytes of TLVs",
                concat(ProxyHeaders.v2(v6, v6To, ProxyHeaders.tlv(0xE0, new byte[60_000])), EHLO),
                "DONE v2 2001:db8:0:0:0:0:0:1:4000 +21"),
            Arguments.of("v2 LOCAL", concat(ProxyHeaders.v2Local(), EHLO), "DONE v2 peer +21"),
            Arguments.of("v2 LOCAL with addresses",
                ProxyHeaders.v2(ProxyHeaders.V2_LOCAL, ProxyHeaders.TCP_OVER_IPV4, new byte[12]), "DONE v2 peer +0"),
            Arguments.of("v2 UNSPEC", ProxyHeaders.v2(ProxyHeaders.V2_PROXY, ProxyHeaders.UNSPEC, new byte[0]),
                "DONE v2 peer +0"),
            Arguments.of("v2 UNIX", ProxyHeaders.v2(ProxyHeaders.V2_PROXY, ProxyHeaders.UNIX_STREAM, new byte[216]),
                "DONE v2 peer +0"),
            Arguments.of("v2 UNIX short", ProxyHeaders.v2(ProxyHeaders.V2_PROXY, ProxyHeaders.UNIX_STREAM,
                new byte[215]), "MALFORMED " + ProxyHeaderParser.V2_SHORT_ADDRESSES),
            Arguments.of("v2 TCP4 short", ProxyHeaders.v2(ProxyHeaders.V2_PROXY, ProxyHeaders.TCP_OVER_IPV4,
                new byte[11]), "MALFORMED " + ProxyHeaderParser.V2_SHORT_ADDRESSES),
            Arguments.of("v2 TCP6 with a TCP4 block", ProxyHeaders.v2(ProxyHeaders.V2_PROXY,
                ProxyHeaders.TCP_OVER_IPV6, java.util.Arrays.copyOfRange(v4Block, 16, 28)),
                "MALFORMED " + ProxyHeaderParser.V2_SHORT_ADDRESSES),
            Arguments.of("v2 UDP", ProxyHeaders.v2(ProxyHeaders.V2_PROXY, ProxyHeaders.UDP_OVER_IPV4, new byte[12]),
                "MALFORMED " + ProxyHeaderParser.V2_DATAGRAM),
            Arguments.of("v2 version 1", ProxyHeaders.v2(0x11, ProxyHeaders.TCP_OVER_IPV4, new byte[12]),
                "MALFORMED " + ProxyHeaderParser.V2_BAD_VERSION),
            Arguments.of("v2 command 2", ProxyHeaders.v2(0x22, ProxyHeaders.TCP_OVER_IPV4, new byte[12]),
                "MALFORMED " + ProxyHeaderParser.V2_BAD_VERSION),
            Arguments.of("v2 family 4", ProxyHeaders.v2(ProxyHeaders.V2_PROXY, 0x41, new byte[12]),
                "MALFORMED " + ProxyHeaderParser.V2_BAD_FAMILY),
            Arguments.of("v2 transport 3", ProxyHeaders.v2(ProxyHeaders.V2_PROXY, 0x13, new byte[12]),
                "MALFORMED " + ProxyHeaderParser.V2_BAD_FAMILY),
            Arguments.of("v2 signature broken at its end", broken(ProxyHeaders.v2("192.0.2.1", 1), 11),
                "MALFORMED " + ProxyHeaderParser.NOT_A_HEADER),
            Arguments.of("v2 partial", java.util.Arrays.copyOf(ProxyHeaders.v2("192.0.2.1", 1), 20), "NEED_MORE"),
            Arguments.of("v2 partial TLVs", java.util.Arrays.copyOf(ProxyHeaders.v2(v4, v4To, tlvs), 30),
                "NEED_MORE"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("headers")
    void parsesWholeByteByByteAndSplitAtEveryOffset(final String name, final byte[] input, final String expected)
    {
        assertEquals(expected, ProxyParsing.whole(input), "whole");
        if (input.length < 1000)
        {
            assertEquals(expected, ProxyParsing.byteByByte(input), "byte by byte");
        }
        final int step = input.length < 1000 ? 1 : 997;
        for (int cut = 0; cut <= input.length; cut += step)
        {
            assertEquals(expected, ProxyParsing.split(input, cut), "cut at " + cut);
        }
    }

    @Test
    void aFinishedParserTakesNothingMore()
    {
        final ProxyHeaderParser parser = new ProxyHeaderParser();
        final byte[] input = concat(ProxyHeaders.v1("192.0.2.1", 7), EHLO);
        final ByteBuffer buffer = ByteBuffer.wrap(input);
        assertEquals(ProxyHeaderParser.DONE, parser.parse(buffer, 0, input.length));
        final int end = parser.consumedTo();
        assertEquals(input.length - EHLO.length, end);
        assertEquals(ProxyHeaderParser.DONE, parser.parse(buffer, end, input.length));
        assertEquals(end, parser.consumedTo());

        final ProxyHeaderParser refused = new ProxyHeaderParser();
        assertEquals(ProxyHeaderParser.MALFORMED, refused.parse(ByteBuffer.wrap(EHLO), 0, EHLO.length));
        assertEquals(ProxyHeaderParser.MALFORMED, refused.parse(ByteBuffer.wrap(input), 0, input.length));
    }

    @Test
    void aMalformedV2HeaderIsToldAtItsFirstWrongByte()
    {
        // a client speaking SMTP to a PROXY listener is refused at its first byte, not after 107 of them
        final ProxyHeaderParser parser = new ProxyHeaderParser();
        assertEquals(ProxyHeaderParser.MALFORMED, parser.parse(ByteBuffer.wrap(ascii("E")), 0, 1));
        final ProxyHeaderParser v2 = new ProxyHeaderParser();
        final byte[] header = broken(ProxyHeaders.v2("192.0.2.1", 1), 5);
        assertEquals(ProxyHeaderParser.MALFORMED, v2.parse(ByteBuffer.wrap(header), 0, 6));
    }

    private static byte[] broken(final byte[] header, final int at)
    {
        final byte[] copy = header.clone();
        copy[at] ^= 0x40;
        return copy;
    }

    private static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }
}
