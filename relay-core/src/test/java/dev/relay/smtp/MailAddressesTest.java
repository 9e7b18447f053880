package dev.relay.smtp;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one reading of an address's domain that the server's relay check and delivery's routing share. */
@Timeout(10)
class MailAddressesTest
{
    @Test
    void theDomainIsAfterTheLastAtLowerCaseWithoutATrailingDot()
    {
        assertEquals("example.test", MailAddresses.domainOf(bytes("Bob@Example.TEST")));
        assertEquals("example.test", MailAddresses.domainOf(bytes("bob@example.test.")));
        assertEquals("b.test", MailAddresses.domainOf(bytes("\"a@x\"@B.test")));
        assertEquals("[192.0.2.1]", MailAddresses.domainOf(bytes("bob@[192.0.2.1]")));
        assertEquals("bücher.test", MailAddresses.domainOf(bytes("bob@BÜCHER.test")));
        assertTrue(MailAddresses.domainOf(bytes("postmaster")).isEmpty());
    }

    @Test
    void aRangeOfBytesIsReadTheSameWay()
    {
        final byte[] line = bytes("RCPT TO:<bob@Relay.Test.>");
        assertEquals("relay.test", MailAddresses.domain(line, 13, line.length - 1));
    }

    private static byte[] bytes(final String text)
    {
        return text.getBytes(StandardCharsets.UTF_8);
    }
}
