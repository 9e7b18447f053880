package dev.relay.it;

import dev.relay.testing.Await;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Many idle connections, the per-client connection limit and the command timeout. */
@Timeout(60)
class InboundConnectionsTest
{
    @TempDir
    Path tmp;
    private InProcessRelay relay;
    private final List<SmtpTestClient> open = new ArrayList<>();

    private void start(final String... overrides) throws Exception
    {
        relay = InProcessRelay.start(tmp.resolve("spool"), overrides);
    }

    @AfterEach
    void stop() throws Exception
    {
        for (final SmtpTestClient client : open)
        {
            client.close();
        }
        if (relay != null)
        {
            relay.close();
        }
    }

    @Test
    void thousandIdleConnectionsDoNotStopAClient() throws Exception
    {
        start();
        for (int i = 0; i < 1000; i++)
        {
            final SmtpTestClient idle = SmtpTestClient.connect(relay.port());
            open.add(idle);
            idle.greeting().expect(220);
        }
        final long startNs = System.nanoTime();
        final String id;
        try (SmtpTestClient client = relay.connectEhlo())
        {
            id = client.sendMessage("busy@client.test", List.of("r@ours.test"),
                "Subject: among idlers\r\n\r\nx\r\n".getBytes(StandardCharsets.US_ASCII));
            client.command("QUIT").expect(221);
        }
        final Duration took = Duration.ofNanos(System.nanoTime() - startNs);
        assertTrue(took.compareTo(Duration.ofSeconds(3)) < 0, "transaction took " + took + " with 1000 idle clients");
        // the idle ones are still served
        open.get(0).command("NOOP").expect(250);
        open.get(999).command("NOOP").expect(250);
        for (final SmtpTestClient client : open)
        {
            client.close();
        }
        open.clear();
        assertEquals(id, SpoolContents.find(relay.spoolDir(), id).queueId());
    }

    @Test
    void connectionsPerIpLimitGets421() throws Exception
    {
        start("smtp.max_connections_per_ip", "2", "smtp.limits_exempt_relay_networks", "false");
        final SmtpTestClient first = SmtpTestClient.connect(relay.port());
        open.add(first);
        first.greeting().expect(220);
        final SmtpTestClient second = SmtpTestClient.connect(relay.port());
        open.add(second);
        second.greeting().expect(220);
        try (SmtpTestClient third = SmtpTestClient.connect(relay.port()))
        {
            third.greeting().expect(421, "4.7.0");
            assertTrue(third.awaitClosedByServer(Duration.ofSeconds(5)), "refused connection is closed");
        }
        first.command("QUIT").expect(221);
        assertTrue(first.awaitClosedByServer(Duration.ofSeconds(5)));
        // once one is gone, a new one gets in (the count is released when the server closes, so poll)
        final long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (true)
        {
            try (SmtpTestClient again = SmtpTestClient.connect(relay.port()))
            {
                if (again.greeting().code() == 220)
                {
                    break;
                }
                again.greeting().expect(421, "4.7.0");
            }
            assertTrue(System.nanoTime() < deadline, "the limit was not released after a client quit");
            Await.pause();
        }
    }

    @Test
    void commandTimeoutGets421AndClose() throws Exception
    {
        start("smtp.timeout.command", "1s");
        try (SmtpTestClient client = relay.connectEhlo())
        {
            final long startNs = System.nanoTime();
            final SmtpTestClient.Reply reply = client.read();
            final Duration waited = Duration.ofNanos(System.nanoTime() - startNs);
            reply.expect(421, "4.4.2");
            assertTrue(waited.compareTo(Duration.ofMillis(800)) > 0 && waited.compareTo(Duration.ofSeconds(5)) < 0,
                "timeout after " + waited);
            assertTrue(client.awaitClosedByServer(Duration.ofSeconds(5)), "closed after the timeout reply");
        }
    }

    @Test
    void activityRestartsTheTimeoutAndSilenceEndsItOnTime() throws Exception
    {
        start("smtp.timeout.command", "1s");
        try (SmtpTestClient client = relay.connectEhlo())
        {
            // a command every 400 ms for 2 s, twice the timeout: each one starts it again
            for (int i = 0; i < 5; i++)
            {
                Thread.sleep(400); // the client's pace, not a wait for a result
                client.command("NOOP").expect(250);
            }
            final long startNs = System.nanoTime();
            final SmtpTestClient.Reply reply = client.read();
            final Duration waited = Duration.ofNanos(System.nanoTime() - startNs);
            reply.expect(421, "4.4.2");
            assertTrue(waited.compareTo(Duration.ofMillis(900)) > 0 && waited.compareTo(Duration.ofMillis(1500)) < 0,
                "timeout 1 s after the last reply, fired after " + waited);
            assertTrue(client.awaitClosedByServer(Duration.ofSeconds(5)), "closed after the timeout reply");
        }
    }

    @Test
    void dataTimeoutGets421AndNothingIsSpooled() throws Exception
    {
        // shorter than the command timeout: the connection's timer must move to the earlier deadline at DATA
        start("smtp.timeout.data", "1s");
        try (SmtpTestClient client = relay.connectEhlo())
        {
            client.command("MAIL FROM:<slow@client.test>").expect(250);
            client.command("RCPT TO:<r@ours.test>").expect(250);
            client.command("DATA").expect(354);
            client.write("Subject: never finished\r\n\r\npart");
            client.read().expect(421, "4.4.2");
            assertTrue(client.awaitClosedByServer(Duration.ofSeconds(5)), "closed after the timeout reply");
        }
        assertEquals(List.of(), relay.spooled());
    }

    @Test
    void closedConnectionsAreForgotten() throws IOException, Exception
    {
        // a per-IP limit of 3 with 20 sequential connect/quit cycles: counts are released every time
        start("smtp.max_connections_per_ip", "3", "smtp.limits_exempt_relay_networks", "false");
        for (int i = 0; i < 20; i++)
        {
            final SmtpTestClient client = SmtpTestClient.connect(relay.port());
            try
            {
                client.greeting().expect(220);
                client.command("QUIT").expect(221);
                assertTrue(client.awaitClosedByServer(Duration.ofSeconds(5)));
            }
            finally
            {
                client.close();
            }
        }
    }
}
