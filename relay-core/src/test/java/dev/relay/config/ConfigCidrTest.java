package dev.relay.config;

import java.net.InetAddress;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConfigCidrTest
{
    private static byte[] ip(final String literal) throws Exception
    {
        return InetAddress.getByName(literal).getAddress();
    }

    private static byte[] mapped(final String v4) throws Exception
    {
        final byte[] bytes = new byte[16];
        bytes[10] = (byte)0xFF;
        bytes[11] = (byte)0xFF;
        System.arraycopy(ip(v4), 0, bytes, 12, 4);

        return bytes;
    }

    @ParameterizedTest
    @CsvSource({
        "10.0.0.0/8, 10.0.0.0, true",
        "10.0.0.0/8, 10.255.255.255, true",
        "10.0.0.0/8, 11.0.0.0, false",
        "10.0.0.0/8, 9.255.255.255, false",
        "0.0.0.0/0, 1.2.3.4, true",
        "0.0.0.0/0, 255.255.255.255, true",
        "0.0.0.0/0, ::1, false",
        "192.168.1.7/32, 192.168.1.7, true",
        "192.168.1.7/32, 192.168.1.6, false",
        "192.168.1.7, 192.168.1.7, true",
        "192.168.1.7, 192.168.1.8, false",
        "172.16.0.0/12, 172.31.255.255, true",
        "172.16.0.0/12, 172.32.0.0, false",
        "10.1.2.128/25, 10.1.2.200, true",
        "10.1.2.128/25, 10.1.2.127, false",
        "::/0, ::1, true",
        "::/0, 2001:db8::1, true",
        "::/0, 10.0.0.1, false",
        "::1/128, ::1, true",
        "::1/128, ::2, false",
        "::1, ::1, true",
        "2001:db8::/32, 2001:db8:ffff:ffff:ffff:ffff:ffff:ffff, true",
        "2001:db8::/32, 2001:db9::, false",
        "2001:db8::/33, 2001:db8:7fff::1, true",
        "2001:db8::/33, 2001:db8:8000::1, false",
        "fe80::/10, febf::1, true",
        "fe80::/10, fec0::1, false",
        "127.0.0.0/8, ::ffff:127.0.0.1, true",
        "::ffff:0:0/96, 10.0.0.1, true",
        "::ffff:10.0.0.0/104, 10.9.8.7, true",
        "::ffff:10.0.0.0/104, 11.9.8.7, false",
        "::ffff:0:0/96, ::1, false"
    })
    void matches(final String cidr, final String address, final boolean expected) throws Exception
    {
        final Cidr network = Cidr.parse(cidr);

        assertEquals(expected, network.matches(InetAddress.getByName(address)), cidr + " vs " + address);
        assertEquals(expected, network.matches(ip(address)), cidr + " vs bytes of " + address);
    }

    @Test
    void ipv4NetworkMatchesMappedBytesAndV6NetworkMatchesV4Bytes() throws Exception
    {
        assertTrue(Cidr.parse("127.0.0.0/8").matches(mapped("127.0.0.1")));
        assertFalse(Cidr.parse("127.0.0.0/8").matches(mapped("128.0.0.1")));
        assertTrue(Cidr.parse("0.0.0.0/0").matches(mapped("8.8.8.8")));
        assertFalse(Cidr.parse("0.0.0.0/0").matches(ip("::1")));
        assertFalse(Cidr.parse("127.0.0.1/32").matches(ip("::7f00:1")), "IPv4-compatible is not mapped");
        assertTrue(Cidr.parse("::ffff:127.0.0.0/104").matches(mapped("127.1.2.3")));
        assertTrue(Cidr.parse("::ffff:127.0.0.0/104").matches(ip("127.1.2.3")));
        assertFalse(Cidr.parse("::/0").matches(ip("127.1.2.3")));
        assertFalse(Cidr.parse("::ffff:0:0/95").matches(ip("127.1.2.3")));
        assertFalse(Cidr.parse("::/96").matches(ip("127.1.2.3")));
        assertFalse(Cidr.parse("10.0.0.0/8").matches(new byte[5]));
    }

    @Test
    void hostBitsAreClearedLikePostfix()
    {
        final Cidr network = Cidr.parse("10.1.2.3/8");

        assertEquals("10.0.0.0/8", network.toString());
        assertEquals(Cidr.parse("10.0.0.0/8"), network);
        assertEquals(Cidr.parse("10.0.0.0/8").hashCode(), network.hashCode());
        assertEquals("2001:db8:0:0:0:0:0:0/32", Cidr.parse("2001:db8:1::5/32").toString());
        assertEquals(4, network.addressLength());
        assertEquals(8, network.prefixLength());
        assertEquals(16, Cidr.parse("::ffff:10.0.0.0/104").addressLength());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0/8", "10.0.0.256/8",
        "10.0.0.0/x", "::1/129", "::1/0128", "example.com/8", "[::1]/128", "fe80::1%eth0/64", "1:2:3/64", "01.2.3.4.5"
    })
    void rejectsBadNetworks(final String text)
    {
        final IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> Cidr.parse(text));

        assertTrue(ex.getMessage().startsWith("is not a valid CIDR network"), ex.getMessage());
    }

    @Test
    void networkList() throws Exception
    {
        final NetworkList list = AddressParsers.parseNetworks("10.0.0.0/8, 2001:db8::/32");

        assertTrue(list.contains(InetAddress.getByName("10.1.1.1")));
        assertTrue(list.contains(ip("2001:db8::1")));
        assertTrue(list.contains(mapped("10.2.3.4")));
        assertFalse(list.contains(InetAddress.getByName("192.168.0.1")));
        assertEquals(List.of(Cidr.parse("10.0.0.0/8"), Cidr.parse("2001:db8::/32")), list.cidrs());
        assertTrue(AddressParsers.parseNetworks("").isEmpty());
        assertFalse(AddressParsers.parseNetworks("").contains(ip("127.0.0.1")));
    }
}
