package dev.relay.net;

import org.junit.jupiter.api.Test;

import java.net.InetAddress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClientRatesTest
{
    private static final long T0 = 1_700_000_000_000L;

    @Test
    void connectionsOverTheRateAreRefusedUntilTheWindowSlides() throws Exception
    {
        final ClientRates rates = new ClientRates(3, 0);
        final InetAddress client = InetAddress.getByName("192.0.2.1");
        final InetAddress other = InetAddress.getByName("192.0.2.2");
        assertTrue(rates.tryConnection(client, T0));
        assertTrue(rates.tryConnection(client, T0 + 1));
        assertTrue(rates.tryConnection(client, T0 + 2));
        assertFalse(rates.tryConnection(client, T0 + 3));
        assertTrue(rates.tryConnection(other, T0 + 3), "limits are per client");
        // half a minute into the next window half of the previous minute still counts: 1.5 + 0 < 3
        assertTrue(rates.tryConnection(client, T0 + 90_000));
        assertTrue(rates.tryConnection(client, T0 + 200_000));
    }

    @Test
    void messagesHaveTheirOwnRateAndZeroMeansUnlimited() throws Exception
    {
        final ClientRates rates = new ClientRates(0, 2);
        final InetAddress client = InetAddress.getByName("2001:db8::1");
        for (int i = 0; i < 1000; i++)
        {
            assertTrue(rates.tryConnection(client, T0 + i));
        }
        assertTrue(rates.tryMessage(client, T0));
        assertTrue(rates.tryMessage(client, T0));
        assertFalse(rates.tryMessage(client, T0 + 10));
        assertTrue(rates.tryMessage(client, T0 + 130_000));
    }

    @Test
    void trackedClientsAreBounded() throws Exception
    {
        final ClientRates rates = new ClientRates(10, 0);
        final byte[] address = {10, 0, 0, 0};
        for (int i = 0; i < ClientRates.MAX_CLIENTS + 500; i++)
        {
            address[1] = (byte)(i >> 16);
            address[2] = (byte)(i >> 8);
            address[3] = (byte)i;
            rates.tryConnection(InetAddress.getByAddress(address), T0);
        }
        assertTrue(rates.trackedClients() <= ClientRates.MAX_CLIENTS, "tracked " + rates.trackedClients());
        assertEquals(true, rates.trackedClients() > 0);
    }
}
