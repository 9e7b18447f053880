package dev.relay.it;

import dev.relay.testing.Await;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SIGHUP to the relay as a child JVM ({@code kill -HUP PID}, as systemd's ExecReload sends it): the JVM no longer
 * exits 129; a good file is put in force (relay.networks for new connections, while a connection opened before goes
 * on), a changed restart-only key is logged by name; a bad file is refused with every error logged and the relay
 * runs on, and {@code relay reload} (RelayMain, as {@code ops/relay reload} runs it) prints those errors and exits 2.
 * SIGTERM still drains and exits 0.
 */
@Timeout(90)
class ReloadProcessTest
{
    @TempDir
    Path tmp;

    private final List<ChildRelay> children = new ArrayList<>();

    @AfterEach
    void stop()
    {
        for (final ChildRelay child : children)
        {
            child.close();
        }
    }

    @Test
    void sighupReloadsAndABadFileIsRefusedWithEveryError() throws Exception
    {
        final Map<String, String> values = new LinkedHashMap<>(InProcessRelay.config(tmp.resolve("spool"),
            "metrics.listen", "127.0.0.1:" + freePort(), "relay.domains", "ours.test"));
        final Path file = tmp.resolve("relay.properties");
        write(file, values);
        final ChildRelay relay = ChildRelay.start(tmp, file);
        children.add(relay);

        try (SmtpTestClient before = SmtpTestClient.connectEhlo(relay.port()))
        {
            values.put("relay.networks", "192.0.2.0/24");
            values.put("smtp.hostname", "renamed.test");
            write(file, values);
            // a SIGHUP that lands while the relay is still starting is ignored: send it again until one takes
            final long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (!relay.stdout().contains("reload: applied relay.networks=192.0.2.0/24"))
            {
                assertTrue(System.nanoTime() - deadline < 0, () -> "no reload in the log; relay alive "
                    + relay.isAlive() + "\n" + relay.output());
                relay.sighup();
                final long retryAt = System.nanoTime() + Duration.ofSeconds(3).toNanos();
                while (!relay.stdout().contains("reload: applied relay.networks=192.0.2.0/24")
                    && System.nanoTime() - retryAt < 0)
                {
                    Await.pause();
                }
            }
            assertTrue(relay.stdout().contains("reload: smtp.hostname=renamed.test changed: needs a restart; " +
                "smtp.hostname=relay.test stays in force"), relay::output);
            assertTrue(relay.isAlive(), "SIGHUP no longer ends the JVM");

            try (SmtpTestClient after = SmtpTestClient.connectEhlo(relay.port()))
            {
                assertTrue(after.greeting().last().startsWith("220 relay.test "), after.greeting()::toString);
                after.command("MAIL FROM:<a@client.test>").expect(250);
                after.command("RCPT TO:<x@elsewhere.test>").expect(554, "5.7.1");
                after.command("RCPT TO:<x@ours.test>").expect(250);
            }
            // opened before the reload: still open, still relaying as it was told
            before.command("MAIL FROM:<a@client.test>").expect(250);
            before.command("RCPT TO:<x@elsewhere.test>").expect(250);
            before.command("QUIT").expect(221);
        }

        // a bad file: refused, every error logged, the relay runs on as it was
        Files.writeString(file, Files.readString(file) + "smtp.max_errors=abc\nsmtp.bogus_key=1\n",
            StandardCharsets.UTF_8);
        relay.sighup();
        Await.until(() -> relay.stdout().contains("smtp.bogus_key: unknown key"), Duration.ofSeconds(20),
            () -> "the refusal in the log\n" + relay.output());
        assertTrue(relay.stdout().contains("reload refused, the running configuration stays: " + file +
            ":"), relay::output);
        assertTrue(relay.stdout().contains("smtp.max_errors: \"abc\""), relay::output);
        assertTrue(relay.isAlive());

        // relay reload (what ops/relay reload runs) reaches it through the admin endpoint and says the same
        final ChildRelay command = ChildRelay.launch(tmp, List.of("--config", file.toString(), "reload"));
        children.add(command);
        assertEquals(2, command.awaitExit(Duration.ofSeconds(30)), command::output);
        assertTrue(command.stderr().contains("reload refused; the running configuration stays:"), command::output);
        assertTrue(command.stderr().contains("smtp.bogus_key: unknown key"), command::output);
        assertTrue(command.stderr().contains("smtp.max_errors: \"abc\""), command::output);

        try (SmtpTestClient client = SmtpTestClient.connectEhlo(relay.port()))
        {
            client.command("MAIL FROM:<a@client.test>").expect(250);
            client.command("RCPT TO:<x@elsewhere.test>").expect(554, "5.7.1");
        }
        relay.sigterm();
        assertEquals(0, relay.awaitExit(Duration.ofSeconds(30)), relay::output);
    }

    private static void write(final Path file, final Map<String, String> values) throws IOException
    {
        final StringBuilder text = new StringBuilder("# ReloadProcessTest\n");
        values.forEach((key, value) -> text.append(key).append('=').append(value).append('\n'));
        Files.writeString(file, text, StandardCharsets.UTF_8);
    }

    private static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress()))
        {
            return socket.getLocalPort();
        }
    }
}
