package dev.relay.config;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.util.Arrays;

/**
 * An IPv4 or IPv6 network in CIDR notation ({@code 10.0.0.0/8}, {@code 2001:db8::/32}); a bare address means a
 * single host ({@code /32} or {@code /128}).
 * <p>
 * As Postfix accepts {@code mynetworks} entries with host bits set, {@link #parse(String)} accepts
 * {@code 10.1.2.3/8} and normalises it to {@code 10.0.0.0/8}. IPv4-mapped IPv6 addresses
 * ({@code ::ffff:a.b.c.d}) are treated as the IPv4 address they carry, in both directions: an IPv4 network
 * matches a 16-byte mapped address, and an IPv6 network inside {@code ::ffff:0:0/96} matches a 4-byte
 * IPv4 address. Other IPv6 networks never match IPv4 addresses: {@code ::/0} is "all IPv6", not "everything".
 * <p>
 * Immutable and thread-safe. {@link #matches(byte[])} does not allocate; {@link #matches(InetAddress)} does
 * ({@link InetAddress#getAddress()} returns a copy), so hot paths should keep the raw address bytes.
 */
public final class Cidr
{
    private static final int V4_MAPPED_PREFIX_LENGTH = 12;

    private final byte[] network;
    private final int prefixLength;

    private Cidr(final byte[] network, final int prefixLength)
    {
        this.network = network;
        this.prefixLength = prefixLength;
    }

    /**
     * Parses {@code address[/prefix]}. Parsing an IP literal never queries DNS.
     *
     * @param text an IPv4 or IPv6 literal (no brackets), optionally followed by {@code /prefix}.
     * @return the network, host bits cleared.
     * @throws IllegalArgumentException with a reason that reads after the quoted value ("is not ...").
     */
    public static Cidr parse(final String text)
    {
        final String trimmed = text.trim();
        final int slash = trimmed.indexOf('/');
        final String addressText = slash < 0 ? trimmed : trimmed.substring(0, slash);
        final byte[] address = parseAddress(addressText);
        if (null == address)
        {
            throw new IllegalArgumentException("is not a valid CIDR network: \"" + addressText + "\" is not an IP address");
        }

        final int maxPrefix = address.length * 8;
        int prefix = maxPrefix;
        if (slash >= 0)
        {
            final String prefixText = trimmed.substring(slash + 1);
            if (prefixText.isEmpty() || prefixText.length() > 3 || !isDigits(prefixText))
            {
                throw new IllegalArgumentException("is not a valid CIDR network: prefix length must be 0.." + maxPrefix);
            }
            prefix = Integer.parseInt(prefixText);
            if (prefix > maxPrefix)
            {
                throw new IllegalArgumentException("is not a valid CIDR network: prefix length must be 0.." + maxPrefix);
            }
        }

        for (int bit = prefix; bit < maxPrefix; bit++)
        {
            address[bit >>> 3] &= (byte)~(0x80 >>> (bit & 7));
        }

        return new Cidr(address, prefix);
    }

    /**
     * @param address an IP address.
     * @return true when the address is in this network (IPv4-mapped IPv6 addresses count as IPv4).
     */
    public boolean matches(final InetAddress address)
    {
        return matches(address.getAddress());
    }

    /**
     * @param address 4 (IPv4) or 16 (IPv6) address bytes in network order; any other length never matches.
     * @return true when the address is in this network (IPv4-mapped IPv6 addresses count as IPv4). No allocation.
     */
    public boolean matches(final byte[] address)
    {
        final int length = address.length;
        if (length == network.length)
        {
            return prefixMatches(address, 0);
        }
        if (4 == network.length && 16 == length)
        {
            return isV4Mapped(address) && prefixMatches(address, V4_MAPPED_PREFIX_LENGTH);
        }
        if (16 == network.length && 4 == length)
        {
            return mappedPrefixMatches(address);
        }

        return false;
    }

    /**
     * @return 4 for an IPv4 network, 16 for IPv6.
     */
    public int addressLength()
    {
        return network.length;
    }

    /**
     * @return the prefix length in bits.
     */
    public int prefixLength()
    {
        return prefixLength;
    }

    /**
     * @return the network address (host bits cleared) as a new array.
     */
    public byte[] networkAddress()
    {
        return network.clone();
    }

    private boolean prefixMatches(final byte[] address, final int addressOffset)
    {
        return bitsMatch(0, address, addressOffset, prefixLength);
    }

    /**
     * An IPv6 network matches a 4-byte address only when it lies inside {@code ::ffff:0:0/96}: {@code ::/0}
     * means "all IPv6", and must not quietly let every IPv4 client relay.
     */
    private boolean mappedPrefixMatches(final byte[] v4)
    {
        return prefixLength >= 96 && isV4Mapped(network) &&
            bitsMatch(V4_MAPPED_PREFIX_LENGTH, v4, 0, prefixLength - 96);
    }

    private boolean bitsMatch(final int networkOffset, final byte[] address, final int addressOffset, final int bits)
    {
        final int fullBytes = bits >>> 3;
        for (int i = 0; i < fullBytes; i++)
        {
            if (network[networkOffset + i] != address[addressOffset + i])
            {
                return false;
            }
        }

        final int remainingBits = bits & 7;
        if (0 == remainingBits)
        {
            return true;
        }
        final int mask = (0xFF00 >>> remainingBits) & 0xFF;

        return (network[networkOffset + fullBytes] & mask) == (address[addressOffset + fullBytes] & mask);
    }

    private static boolean isV4Mapped(final byte[] address)
    {
        for (int i = 0; i < 10; i++)
        {
            if (0 != address[i])
            {
                return false;
            }
        }

        return (byte)0xFF == address[10] && (byte)0xFF == address[11];
    }

    /**
     * Parses an IP literal without DNS: dotted-quad IPv4 (exactly four decimal parts) or IPv6 (must contain a
     * colon). An IPv6 literal that carries an IPv4-mapped address keeps its 16-byte form.
     *
     * @return the address bytes, or null when {@code text} is not an IP literal.
     */
    static byte[] parseAddress(final String text)
    {
        if (text.indexOf(':') >= 0)
        {
            if (text.indexOf('%') >= 0 || text.indexOf('[') >= 0)
            {
                return null;
            }
            final InetAddress address;
            try
            {
                // a string containing ':' is parsed as an IPv6 literal and never looked up in DNS
                address = InetAddress.getByName(text);
            }
            catch (final Exception ex)
            {
                return null;
            }
            final byte[] bytes = address.getAddress();
            if (address instanceof Inet4Address)
            {
                final byte[] mapped = new byte[16];
                mapped[10] = (byte)0xFF;
                mapped[11] = (byte)0xFF;
                System.arraycopy(bytes, 0, mapped, V4_MAPPED_PREFIX_LENGTH, 4);
                return mapped;
            }

            return bytes;
        }

        return parseIpv4(text);
    }

    static byte[] parseIpv4(final String text)
    {
        final String[] parts = text.split("\\.", -1);
        if (4 != parts.length)
        {
            return null;
        }
        final byte[] bytes = new byte[4];
        for (int i = 0; i < 4; i++)
        {
            final String part = parts[i];
            if (part.isEmpty() || part.length() > 3 || !isDigits(part))
            {
                return null;
            }
            final int value = Integer.parseInt(part);
            if (value > 255)
            {
                return null;
            }
            bytes[i] = (byte)value;
        }

        return bytes;
    }

    private static boolean isDigits(final String text)
    {
        for (int i = 0; i < text.length(); i++)
        {
            final char c = text.charAt(i);
            if (c < '0' || c > '9')
            {
                return false;
            }
        }

        return true;
    }

    /**
     * {@inheritDoc}
     */
    public boolean equals(final Object o)
    {
        if (this == o)
        {
            return true;
        }
        if (!(o instanceof Cidr))
        {
            return false;
        }
        final Cidr that = (Cidr)o;

        return prefixLength == that.prefixLength && Arrays.equals(network, that.network);
    }

    /**
     * {@inheritDoc}
     */
    public int hashCode()
    {
        return 31 * Arrays.hashCode(network) + prefixLength;
    }

    /**
     * @return canonical {@code address/prefix}, for example {@code 10.0.0.0/8} or {@code 2001:db8:0:0:0:0:0:0/32}.
     */
    public String toString()
    {
        final StringBuilder sb = new StringBuilder();
        if (4 == network.length)
        {
            for (int i = 0; i < 4; i++)
            {
                if (i > 0)
                {
                    sb.append('.');
                }
                sb.append(network[i] & 0xFF);
            }
        }
        else
        {
            for (int i = 0; i < 16; i += 2)
            {
                if (i > 0)
                {
                    sb.append(':');
                }
                sb.append(Integer.toHexString(((network[i] & 0xFF) << 8) | (network[i + 1] & 0xFF)));
            }
        }

        return sb.append('/').append(prefixLength).toString();
    }
}
