package dev.relay.testing;

import java.io.ByteArrayOutputStream;
import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

/**
 * PROXY protocol headers as a load balancer writes them (HAProxy's doc/proxy-protocol.txt), for tests that play
 * the proxy: v1 text lines and v2 binary headers, well formed or built field by field.
 */
public final class ProxyHeaders
{
    /** v2's signature (§2.2). */
    public static final byte[] V2_SIGNATURE =
        {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    public static final int V2_LOCAL = 0x20;
    public static final int V2_PROXY = 0x21;
    public static final int TCP_OVER_IPV4 = 0x11;
    public static final int TCP_OVER_IPV6 = 0x21;
    public static final int UDP_OVER_IPV4 = 0x12;
    public static final int UNSPEC = 0x00;
    public static final int UNIX_STREAM = 0x31;

    private ProxyHeaders()
    {
    }

    /** {@code PROXY TCP4|TCP6 src dst sport dport\r\n}, the family of {@code source}. */
    public static byte[] v1(final InetSocketAddress source, final InetSocketAddress destination)
    {
        final String protocol = source.getAddress() instanceof Inet4Address ? "TCP4" : "TCP6";
        return ("PROXY " + protocol + " " + source.getAddress().getHostAddress() + " " +
            destination.getAddress().getHostAddress() + " " + source.getPort() + " " + destination.getPort() + "\r\n")
            .getBytes(StandardCharsets.US_ASCII);
    }

    /** {@code PROXY TCP4 src 127.0.0.1 sport 25}: the client {@code host:port}. */
    public static byte[] v1(final String host, final int port)
    {
        return v1(new InetSocketAddress(host, port), new InetSocketAddress("127.0.0.1", 25));
    }

    /** The v2 header of a TCP connection from {@code source} to {@code destination}, with {@code tlvs} after them. */
    public static byte[] v2(final InetSocketAddress source, final InetSocketAddress destination, final byte[] tlvs)
    {
        final byte[] from = source.getAddress().getAddress();
        final byte[] to = destination.getAddress().getAddress();
        final ByteArrayOutputStream block = new ByteArrayOutputStream();
        block.writeBytes(from);
        block.writeBytes(to);
        block.write(source.getPort() >> 8);
        block.write(source.getPort());
        block.write(destination.getPort() >> 8);
        block.write(destination.getPort());
        block.writeBytes(tlvs);
        return v2(V2_PROXY, from.length == 4 ? TCP_OVER_IPV4 : TCP_OVER_IPV6, block.toByteArray());
    }

    /** v2 for the client {@code host:port}, to 127.0.0.1:25, no TLVs. */
    public static byte[] v2(final String host, final int port)
    {
        return v2(new InetSocketAddress(host, port), new InetSocketAddress("127.0.0.1", 25), new byte[0]);
    }

    /** v2 LOCAL, no addresses: the proxy's own connection (a health check). */
    public static byte[] v2Local()
    {
        return v2(V2_LOCAL, UNSPEC, new byte[0]);
    }

    /** Field by field: signature, version and command, family and transport, length of {@code block}, block. */
    public static byte[] v2(final int versionCommand, final int familyTransport, final byte[] block)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(V2_SIGNATURE);
        out.write(versionCommand);
        out.write(familyTransport);
        out.write(block.length >> 8);
        out.write(block.length);
        out.writeBytes(block);
        return out.toByteArray();
    }

    /** One TLV (§2.2.7): type, 16-bit length, value. */
    public static byte[] tlv(final int type, final byte[] value)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(type);
        out.write(value.length >> 8);
        out.write(value.length);
        out.writeBytes(value);
        return out.toByteArray();
    }

    /** {@code a} then {@code b}. */
    public static byte[] concat(final byte[] a, final byte[] b)
    {
        final byte[] both = new byte[a.length + b.length];
        System.arraycopy(a, 0, both, 0, a.length);
        System.arraycopy(b, 0, both, a.length, b.length);
        return both;
    }
}
