package dev.relay.it;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Clients that vanish mid-command (100), mid-DATA (100) and mid-BDAT (100), half closing normally and half with a
 * reset: nothing they sent is left deliverable. Delivery goes to a closed port, so every complete message stays in
 * the spool; after the relay stops, the spool holds exactly the normal clients' messages.
 */
@Tag("slow")
@Timeout(120)
class AdversarialDisconnectTest
{
    private static final int EACH = 100;

    @TempDir
    Path tmp;

    @Test
    void vanishingClientsLeaveNothingDeliverable() throws Exception
    {
        final int normalMessages;
        final AdversarialRelay relay = AdversarialRelay.start(tmp, AdversarialRelay.config(tmp.resolve("spool"),
            "smtp.max_connections_per_ip", "0"), 0);
        try (relay)
        {
            final AdversarialRelay.Resources baseline = relay.warmBaseline();
            final byte[] bulk = new byte[100_000];
            Arrays.fill(bulk, (byte)'x');
            for (int i = 0; i < bulk.length; i += 100)
            {
                bulk[i + 98] = '\r';
                bulk[i + 99] = '\n';
            }
            final long startNs = System.nanoTime();
            for (int i = 0; i < EACH; i++)
            {
                try (SmtpTestClient c = SmtpTestClient.connectEhlo(relay.port()))
                {
                    c.command("MAIL FROM:<gone-cmd" + i + "@client.test>").expect(250);
                    c.command("RCPT TO:<r@ours.test>").expect(250);
                    c.write(i % 2 == 0 ? "DAT" : "RCPT TO:<r2@ours.te");
                    c.socket().setSoLinger(i % 2 == 0, 0);
                }
                try (SmtpTestClient c = SmtpTestClient.connectEhlo(relay.port()))
                {
                    c.command("MAIL FROM:<gone-data" + i + "@client.test>").expect(250);
                    c.command("RCPT TO:<r@ours.test>").expect(250);
                    c.command("DATA").expect(354);
                    c.write("Subject: never finished\r\n\r\n");
                    c.write(bulk, 0, i % 3 == 0 ? bulk.length : 1000 + i);
                    // the last bytes look like the start of the terminator
                    c.write(i % 2 == 0 ? "\r\n." : "\r\n.\r");
                    c.socket().setSoLinger(i % 2 == 0, 0);
                }
                try (SmtpTestClient c = SmtpTestClient.connectEhlo(relay.port()))
                {
                    c.command("MAIL FROM:<gone-bdat" + i + "@client.test>").expect(250);
                    c.command("RCPT TO:<r@ours.test>").expect(250);
                    c.write("BDAT 50\r\n" + "y".repeat(48) + "\r\n");
                    c.read().expect(250);
                    c.write("BDAT 1000 LAST\r\n");
                    c.write(bulk, 0, 500);
                    c.socket().setSoLinger(i % 2 == 0, 0);
                }
            }
            System.out.printf("[adversarial] disconnects: %d mid-command, %d mid-DATA, %d mid-BDAT in %d ms%n", EACH,
                EACH, EACH, (System.nanoTime() - startNs) / 1_000_000);
            relay.assertRecovered(baseline, "disconnects");
            normalMessages = AdversarialRelay.WARM_MESSAGES + 1;
            relay.stop();
        }
        final List<AdversarialRelay.Stored> stored = relay.spooled();
        System.out.printf("[adversarial] disconnects: spool holds %d complete messages after stop: %s%n", stored.size(),
            stored.stream().map(AdversarialRelay.Stored::from).toList());
        for (final AdversarialRelay.Stored s : stored)
        {
            assertTrue(s.from().startsWith("normal@"), () -> "a vanished client's message is deliverable: " + s.from());
            assertTrue(!s.body().contains("never finished"), "partial body in a complete message");
        }
        assertEquals(normalMessages, stored.size());
    }
}
