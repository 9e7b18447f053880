package dev.relay.net;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The PROXY protocol header that a load balancer (HAProxy, or anything speaking its protocol) sends before the
 * client's first byte, naming the client it accepted (HAProxy's {@code doc/proxy-protocol.txt}, versions 1 and 2).
 * The first byte tells the version: {@code P} starts v1's text line, CR starts v2's binary signature; anything else
 * is not a header.
 * <ul>
 *   <li>v1 (§2.1): {@code PROXY TCP4 src dst sport dport\r\n}, {@code TCP6} the same with IPv6 text, or
 *   {@code PROXY UNKNOWN\r\n} with anything before the CRLF (the real peer is then the client). Single spaces, at
 *   most {@value #V1_MAX_BYTES} bytes with the CRLF, IPv4 in dotted decimal without leading zeros, IPv6 as RFC 4291
 *   §2.2 writes it, ports 0..65535; a bare CR or LF is malformed.</li>
 *   <li>v2 (§2.2): the 12-byte signature, version 2, the command (LOCAL: the proxy's own connection, a health check,
 *   so the real peer is the client; PROXY: a relayed one), family and transport, a 16-bit length, the addresses,
 *   then TLVs (§2.2.7), which are skipped as they stream by and never held. TCP over IPv4 or IPv6 names the client;
 *   the UNSPEC and UNIX families and the UNSPEC transport leave the real peer as the client (§2.2 lets a receiver
 *   accept them so); UDP, another version, command, family or transport, and an address block shorter than its
 *   family needs are malformed.</li>
 * </ul>
 * Incremental and pure: {@link #parse} takes whatever bytes have arrived, in any split, keeps the little it needs
 * (v1's line, v2's first {@value #V2_KEPT_BYTES} bytes) and answers {@link #NEED_MORE}, {@link #DONE} or
 * {@link #MALFORMED}; bytes after the header are left to the caller ({@link #consumedTo()}). No sockets, threads or
 * clock. One parser per connection, on its loop's thread; nothing is allocated after construction but the array
 * {@link #sourceAddress()} returns.
 */
public final class ProxyHeaderParser
{
    public static final int NEED_MORE = 0;
    public static final int DONE = 1;
    public static final int MALFORMED = 2;

    /** v1's longest line: {@code "PROXY UNKNOWN "} and two full IPv6 addresses and ports, with the CRLF (§2.1). */
    public static final int V1_MAX_BYTES = 107;
    /** v2's fixed part: signature, version and command, family and transport, length. */
    public static final int V2_HEADER_BYTES = 16;

    private static final byte[] V1_PREFIX = "PROXY ".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TCP4 = "TCP4 ".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] TCP6 = "TCP6 ".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] UNKNOWN = "UNKNOWN".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] V2_SIGNATURE =
        {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    private static final int V2_INET_BYTES = 12;
    private static final int V2_INET6_BYTES = 36;
    private static final int V2_UNIX_BYTES = 216;
    /** What v2 keeps: the fixed part and the largest address block it reads (TCP over IPv6). */
    static final int V2_KEPT_BYTES = V2_HEADER_BYTES + V2_INET6_BYTES;
    private static final int V2_LOCAL = 0x0;
    private static final int V2_PROXY = 0x1;
    private static final int FAMILY_UNSPEC = 0x0;
    private static final int FAMILY_INET = 0x1;
    private static final int FAMILY_INET6 = 0x2;
    private static final int FAMILY_UNIX = 0x3;
    private static final int TRANSPORT_UNSPEC = 0x0;
    private static final int TRANSPORT_STREAM = 0x1;
    private static final int TRANSPORT_DGRAM = 0x2;

    static final String NOT_A_HEADER = "not a PROXY header";
    static final String V1_TOO_LONG = "PROXY v1 line longer than 107 bytes";
    static final String V1_BAD_LINE_END = "PROXY v1 line with a bare CR or LF";
    static final String V1_BAD_PROTOCOL = "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN";
    static final String V1_BAD_ADDRESS = "PROXY v1 address or port malformed";
    static final String V2_BAD_VERSION = "PROXY v2 version or command unknown";
    static final String V2_BAD_FAMILY = "PROXY v2 family or transport unknown";
    static final String V2_DATAGRAM = "PROXY v2 names a UDP flow";
    static final String V2_SHORT_ADDRESSES = "PROXY v2 address block shorter than its family needs";

    private final byte[] kept = new byte[Math.max(V1_MAX_BYTES, V2_KEPT_BYTES)];
    private final byte[] source = new byte[16];
    /** v1's destination address: checked, not used. */
    private final byte[] destination = new byte[16];
    private int keptLength;
    /** 0 until the first byte arrived, then 1 or 2. */
    private int version;
    private int status = NEED_MORE;
    private int consumedTo;
    /** v2: what the length field says follows the fixed part, and how much of it is still to come. */
    private int v2Length;
    private int v2Remaining;
    private boolean peerIsClient;
    private int sourceLength;
    private int sourcePort;
    private String problem;

    /**
     * Reads {@code buffer[from, to)} (absolute indexes; position and limit untouched) as the next bytes of the
     * connection.
     *
     * @return {@link #NEED_MORE} when every byte was taken and the header is not complete yet; {@link #DONE} when it
     * is ({@link #consumedTo()} is the index after its last byte); {@link #MALFORMED} when these bytes cannot start
     * or continue a header ({@link #problem()} says why). Once done or malformed, the same answer again, taking
     * nothing.
     */
    public int parse(final ByteBuffer buffer, final int from, final int to)
    {
        consumedTo = from;
        if (status != NEED_MORE)
        {
            return status;
        }
        int i = from;
        while (i < to)
        {
            final byte b = buffer.get(i);
            if (version == 0)
            {
                if (b == V1_PREFIX[0])
                {
                    version = 1;
                }
                else if (b == V2_SIGNATURE[0])
                {
                    version = 2;
                }
                else
                {
                    return malformed(NOT_A_HEADER);
                }
            }
            if (version == 1)
            {
                if (keptLength < V1_PREFIX.length && b != V1_PREFIX[keptLength])
                {
                    return malformed(NOT_A_HEADER);
                }
                final boolean afterCr = keptLength > 0 && kept[keptLength - 1] == '\r';
                if (afterCr != (b == '\n'))
                {
                    return malformed(V1_BAD_LINE_END);
                }
                if (keptLength == V1_MAX_BYTES)
                {
                    return malformed(V1_TOO_LONG);
                }
                kept[keptLength++] = b;
                i++;
                if (b == '\n')
                {
                    consumedTo = i;
                    return finishV1();
                }
            }
            else if (keptLength < V2_HEADER_BYTES)
            {
                if (keptLength < V2_SIGNATURE.length && b != V2_SIGNATURE[keptLength])
                {
                    return malformed(NOT_A_HEADER);
                }
                kept[keptLength++] = b;
                i++;
                if (keptLength == V2_HEADER_BYTES)
                {
                    final String wrong = startV2();
                    if (wrong != null)
                    {
                        return malformed(wrong);
                    }
                    if (v2Remaining == 0)
                    {
                        consumedTo = i;
                        return finishV2();
                    }
                }
            }
            else
            {
                // the address block, then TLVs: keep what the addresses need, skip the rest
                final int taken = Math.min(to - i, v2Remaining);
                final int keep = Math.min(taken, V2_KEPT_BYTES - keptLength);
                if (keep > 0)
                {
                    buffer.get(i, kept, keptLength, keep);
                    keptLength += keep;
                }
                i += taken;
                v2Remaining -= taken;
                if (v2Remaining == 0)
                {
                    consumedTo = i;
                    return finishV2();
                }
            }
        }
        consumedTo = to;
        return NEED_MORE;
    }

    /** After {@link #parse}: the index after the last byte it took (the header's end once {@link #DONE}). */
    public int consumedTo()
    {
        return consumedTo;
    }

    /** 1 or 2 once the first byte was seen, else 0. */
    public int version()
    {
        return version;
    }

    /**
     * Once {@link #DONE}: true when the header names no client (v1 UNKNOWN, v2 LOCAL, an UNSPEC or UNIX family):
     * the peer that connected is the client.
     */
    public boolean peerIsClient()
    {
        return peerIsClient;
    }

    /** Once {@link #DONE} and not {@link #peerIsClient()}: the client's address, 4 or 16 bytes (a new array). */
    public byte[] sourceAddress()
    {
        return Arrays.copyOf(source, sourceLength);
    }

    /** Once {@link #DONE} and not {@link #peerIsClient()}: the client's port. */
    public int sourcePort()
    {
        return sourcePort;
    }

    /** Once {@link #MALFORMED}: why, for the log (a constant). */
    public String problem()
    {
        return problem;
    }

    private int malformed(final String why)
    {
        problem = why;
        status = MALFORMED;
        return MALFORMED;
    }

    private int done()
    {
        status = DONE;
        return DONE;
    }

    /** The line, CRLF included, is {@code kept[0, keptLength)} and starts with "PROXY ". */
    private int finishV1()
    {
        final int end = keptLength - 2;
        int at = V1_PREFIX.length;
        if (startsWith(at, end, UNKNOWN) && (at + UNKNOWN.length == end || kept[at + UNKNOWN.length] == ' '))
        {
            // §2.1: with UNKNOWN the receiver ignores the rest of the line and uses the real connection's addresses
            peerIsClient = true;
            return done();
        }
        final int length;
        if (startsWith(at, end, TCP4))
        {
            length = 4;
        }
        else if (startsWith(at, end, TCP6))
        {
            length = 16;
        }
        else
        {
            return malformed(V1_BAD_PROTOCOL);
        }
        at += TCP4.length;
        // source, destination, source port, destination port, one space between each
        final int sourceEnd = nextSpace(at, end);
        final int destinationEnd = sourceEnd < end ? nextSpace(sourceEnd + 1, end) : end;
        final int sourcePortEnd = destinationEnd < end ? nextSpace(destinationEnd + 1, end) : end;
        if (sourcePortEnd == end ||
            !parseAddress(kept, at, sourceEnd, source, length) ||
            !parseAddress(kept, sourceEnd + 1, destinationEnd, destination, length))
        {
            return malformed(V1_BAD_ADDRESS);
        }
        final int port = IpAddressText.parsePort(kept, destinationEnd + 1, sourcePortEnd);
        if (port < 0 || IpAddressText.parsePort(kept, sourcePortEnd + 1, end) < 0)
        {
            return malformed(V1_BAD_ADDRESS);
        }
        sourceLength = length;
        sourcePort = port;
        return done();
    }

    private boolean startsWith(final int at, final int end, final byte[] word)
    {
        if (end - at < word.length)
        {
            return false;
        }
        for (int i = 0; i < word.length; i++)
        {
            if (kept[at + i] != word[i])
            {
                return false;
            }
        }
        return true;
    }

    /** The index of the next space in {@code kept[from, end)}, or {@code end}. */
    private int nextSpace(final int from, final int end)
    {
        int i = from;
        while (i < end && kept[i] != ' ')
        {
            i++;
        }
        return i;
    }

    /** Parses the text address {@code s[from, to)} of {@code length} bytes (4: dotted decimal; 16: IPv6) into out. */
    private static boolean parseAddress(
        final byte[] s, final int from, final int to, final byte[] out, final int length)
    {
        return length == 4 ? IpAddressText.parseIpv4(s, from, to, out, 0) : IpAddressText.parseIpv6(s, from, to, out);
    }

    /** The fixed part is in {@code kept[0, 16)}: version, command, family, length; null when they are valid. */
    private String startV2()
    {
        final int versionAndCommand = kept[12] & 0xFF;
        final int command = versionAndCommand & 0x0F;
        if (versionAndCommand >> 4 != 2 || command != V2_LOCAL && command != V2_PROXY)
        {
            return V2_BAD_VERSION;
        }
        final int family = (kept[13] & 0xFF) >> 4;
        final int transport = kept[13] & 0x0F;
        if (family > FAMILY_UNIX || transport > TRANSPORT_DGRAM)
        {
            // §2.2: other values must be rejected as invalid
            return V2_BAD_FAMILY;
        }
        v2Length = (kept[14] & 0xFF) << 8 | kept[15] & 0xFF;
        v2Remaining = v2Length;
        return null;
    }

    /** The whole v2 header went by; {@code kept} holds the fixed part and the first address bytes. */
    private int finishV2()
    {
        if ((kept[12] & 0x0F) == V2_LOCAL)
        {
            // §2.2: LOCAL is the proxy's own connection (a health check); the real addresses are the ones to use
            peerIsClient = true;
            return done();
        }
        final int family = (kept[13] & 0xFF) >> 4;
        final int transport = kept[13] & 0x0F;
        if (transport == TRANSPORT_DGRAM)
        {
            return malformed(V2_DATAGRAM);
        }
        final int needed = family == FAMILY_INET ? V2_INET_BYTES : family == FAMILY_INET6 ? V2_INET6_BYTES :
            family == FAMILY_UNIX ? V2_UNIX_BYTES : 0;
        if (v2Length < needed)
        {
            return malformed(V2_SHORT_ADDRESSES);
        }
        if (family == FAMILY_UNSPEC || family == FAMILY_UNIX || transport == TRANSPORT_UNSPEC)
        {
            peerIsClient = true;
            return done();
        }
        // source address, destination address, source port, destination port (§2.2)
        final int length = family == FAMILY_INET ? 4 : 16;
        System.arraycopy(kept, V2_HEADER_BYTES, source, 0, length);
        final int portAt = V2_HEADER_BYTES + 2 * length;
        sourceLength = length;
        sourcePort = (kept[portAt] & 0xFF) << 8 | kept[portAt + 1] & 0xFF;
        return done();
    }
}
