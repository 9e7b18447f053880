package dev.relay.it;

import dev.relay.ConfigReload;
import dev.relay.Relay;
import dev.relay.config.RelayConfig;
import dev.relay.testing.Await;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Reload without restart on an in-process relay started from a properties file, through {@code POST /admin/reload}
 * (what {@code ops/relay reload} calls) and {@link Relay#reload()}: a good file puts a new route in force for new mail
 * and a new relay.networks for new connections (an open connection keeps its own); a bad file changes nothing and
 * every error comes back (HTTP 422); a changed restart-only key is named and keeps its value; ten reloads under load
 * drop no connection and lose no message.
 */
@Timeout(90)
class ConfigReloadTest
{
    private static final byte[] BODY = "Subject: reload\r\n\r\nhello\r\n".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path tmp;

    private final List<TestSmtpSink> sinks = new ArrayList<>();
    private Relay relay;
    private Path file;
    private Map<String, String> values;

    @AfterEach
    void stop() throws InterruptedException
    {
        if (relay != null)
        {
            relay.close();
        }
        for (final TestSmtpSink sink : sinks)
        {
            sink.close();
        }
    }

    private TestSmtpSink sink() throws IOException
    {
        final TestSmtpSink sink = TestSmtpSink.start();
        sinks.add(sink);
        return sink;
    }

    /** A relay from {@code tmp}/relay.properties, its admin endpoint on a fixed port, reloading from that file. */
    private void start(final String... overrides) throws Exception
    {
        values = new LinkedHashMap<>(InProcessRelay.config(tmp.resolve("spool"), "metrics.listen",
            "127.0.0.1:" + freePort(), "delivery.retry.schedule", "1s"));
        for (int i = 0; i + 1 < overrides.length; i += 2)
        {
            values.put(overrides[i], overrides[i + 1]);
        }
        file = tmp.resolve("relay.properties");
        write(values);
        relay = Relay.start(RelayConfig.load(file, new Properties()));
        relay.configSource(() -> RelayConfig.load(file, new Properties()));
    }

    private void write(final Map<String, String> properties) throws IOException
    {
        final StringBuilder text = new StringBuilder("# ConfigReloadTest\n");
        properties.forEach((key, value) -> text.append(key).append('=').append(value).append('\n'));
        Files.writeString(file, text, StandardCharsets.UTF_8);
    }

    /** The file with {@code key, value} pairs changed (a null value removes the key), then POST /admin/reload. */
    private HttpResponse<String> reloadWith(final String... changes) throws Exception
    {
        final Map<String, String> next = new LinkedHashMap<>(values);
        for (int i = 0; i + 1 < changes.length; i += 2)
        {
            if (changes[i + 1] == null)
            {
                next.remove(changes[i]);
            }
            else
            {
                next.put(changes[i], changes[i + 1]);
            }
        }
        write(next);
        final HttpResponse<String> response = HttpClient.newHttpClient().send(
            HttpRequest.newBuilder(URI.create("http://" + values.get("metrics.listen") + "/admin/reload"))
                .timeout(Duration.ofSeconds(30)).POST(HttpRequest.BodyPublishers.noBody()).build(),
            HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() == 200)
        {
            values = next;
        }
        return response;
    }

    private int port()
    {
        return relay.smtpAddresses().get(0).getPort();
    }

    @Test
    void aNewRouteServesNewMailAndNewRelayNetworksNewConnections() throws Exception
    {
        final TestSmtpSink before = sink();
        final TestSmtpSink after = sink();
        start("delivery.routes", "*=[127.0.0.1]:" + before.port());
        try (SmtpTestClient open = SmtpTestClient.connectEhlo(port()))
        {
            open.sendMessage("a@client.test", List.of("x@elsewhere.test"), BODY);
            before.awaitMessages(1, Duration.ofSeconds(15));

            final HttpResponse<String> response = reloadWith("delivery.routes", "*=[127.0.0.1]:" + after.port(),
                "relay.networks", "192.0.2.0/24", "relay.domains", "ours.test");
            assertEquals(200, response.statusCode(), response.body());
            assertTrue(response.body().contains("applied: delivery.routes=*=[127.0.0.1]:" + after.port()),
                response.body());
            assertTrue(response.body().contains("applied: relay.networks=192.0.2.0/24"), response.body());

            // a new connection from 127.0.0.1 is no longer in relay.networks: only relay.domains
            try (SmtpTestClient fresh = SmtpTestClient.connectEhlo(port()))
            {
                fresh.command("MAIL FROM:<b@client.test>").expect(250);
                fresh.command("RCPT TO:<x@elsewhere.test>").expect(554, "5.7.1");
                fresh.command("RSET").expect(250);
                fresh.sendMessage("b@client.test", List.of("y@ours.test"), BODY);
            }
            // the connection opened before the reload keeps what it was told at its start
            open.sendMessage("c@client.test", List.of("z@elsewhere.test"), BODY);
            open.command("QUIT").expect(221);
        }
        // both new messages take the new route
        after.awaitMessages(2, Duration.ofSeconds(15));
        assertEquals(1, before.messageCount());
        assertEquals("192.0.2.0/24", relay.config().relay().networks().toString());
    }

    @Test
    void aBadFileChangesNothingAndEveryErrorComesBack() throws Exception
    {
        final TestSmtpSink before = sink();
        final TestSmtpSink after = sink();
        start("delivery.routes", "*=[127.0.0.1]:" + before.port());
        final RelayConfig running = relay.config();
        final Path users = tmp.resolve("users");
        Files.writeString(users, "alice:{NOSUCH}x\n", StandardCharsets.UTF_8);

        final HttpResponse<String> response = reloadWith("delivery.routes", "*=[127.0.0.1]:" + after.port(),
            "smtp.max_errors", "abc", "smtp.max_recipent", "5");
        assertEquals(422, response.statusCode(), response.body());
        assertTrue(response.body().startsWith("reload refused; the running configuration stays:\n"), response.body());
        assertTrue(response.body().contains("smtp.max_errors: \"abc\""), response.body());
        assertTrue(response.body().contains("smtp.max_recipent: unknown key (did you mean smtp.max_recipients?)"),
            response.body());
        // the files a start would load are checked too, with a start's message
        final HttpResponse<String> badUsers = reloadWith("delivery.routes", "*=[127.0.0.1]:" + after.port(),
            "smtp.auth.users", users.toString());
        assertEquals(422, badUsers.statusCode(), badUsers.body());
        assertTrue(badUsers.body().contains("smtp.auth.users: " + users + ":1: alice: "), badUsers.body());

        assertSame(running, relay.config(), "the running configuration stays");
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(port()))
        {
            client.sendMessage("a@client.test", List.of("x@elsewhere.test"), BODY);
        }
        before.awaitMessages(1, Duration.ofSeconds(15));
        assertEquals(0, after.messageCount());
    }

    @Test
    void aChangedRestartOnlyKeyIsNamedAndKeepsItsValue() throws Exception
    {
        start();
        values.put("smtp.hostname", "renamed.test");
        values.put("smtp.max_errors", "3");
        values.put("queue.sync", "always");
        write(values);
        final ConfigReload.Result result = relay.reload();
        assertTrue(result.accepted(), result::report);
        assertEquals(List.of("smtp.max_errors=3"), result.applied());
        assertEquals(List.of("smtp.hostname=renamed.test", "queue.sync=always"), result.restart());
        assertEquals("relay.test", relay.config().smtp().hostname());
        assertEquals(3, relay.config().smtp().maxErrors());
        try (SmtpTestClient client = SmtpTestClient.connect(port()))
        {
            assertTrue(client.greeting().last().startsWith("220 relay.test "), client.greeting()::toString);
            // smtp.max_errors=3 for this new connection: the third error ends it
            client.command("EHLO reload.test").expect(250);
            client.command("FOO").expect(500);
            client.command("FOO").expect(500);
            client.command("FOO").expect(500);
            client.read().expect(421);
        }
    }

    @Test
    void reloadsUnderLoadDropNoConnectionAndLoseNoMessage() throws Exception
    {
        final TestSmtpSink one = sink();
        final TestSmtpSink two = sink();
        start("delivery.routes", "*=[127.0.0.1]:" + one.port(), "relay.domains", "ours.test");
        final AtomicBoolean stopLoad = new AtomicBoolean();
        final Set<String> acked = ConcurrentHashMap.newKeySet();
        final ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
        final AtomicInteger nextId = new AtomicInteger();
        final List<Thread> clients = new ArrayList<>();
        for (int c = 0; c < 4; c++)
        {
            // one connection each for the whole test: a reload must not drop it
            final Thread client = new Thread(() ->
            {
                try (SmtpTestClient connection = SmtpTestClient.connectEhlo(port()))
                {
                    while (!stopLoad.get())
                    {
                        final String id = "u" + nextId.incrementAndGet() + "@client.test";
                        connection.sendMessage("load@client.test", List.of("r@dest.test"),
                            ("Message-ID: <" + id + ">\r\n\r\nbody\r\n").getBytes(StandardCharsets.US_ASCII));
                        acked.add(id);
                    }
                    connection.command("QUIT").expect(221);
                }
                catch (final IOException | RuntimeException | AssertionError ex)
                {
                    problems.add(ex.toString());
                }
            }, "load-" + c);
            client.setDaemon(true);
            clients.add(client);
            client.start();
        }
        try
        {
            for (int i = 0; i < 10; i++)
            {
                final int before = acked.size();
                Await.until(() -> acked.size() >= before + 20 || !problems.isEmpty(), Duration.ofSeconds(20),
                    () -> "load between reloads");
                final HttpResponse<String> response = reloadWith(
                    "delivery.routes", "*=[127.0.0.1]:" + (i % 2 == 0 ? two : one).port(),
                    "relay.domains", i % 2 == 0 ? "ours.test,more.test" : "ours.test",
                    "smtp.max_connections_per_ip", String.valueOf(50 + i));
                assertEquals(200, response.statusCode(), response.body());
            }
        }
        finally
        {
            stopLoad.set(true);
            for (final Thread client : clients)
            {
                client.join(20_000);
            }
        }
        assertTrue(problems.isEmpty(), () -> "a client failed across reloads: " + problems);
        Await.until(() -> delivered(one, two).keySet().containsAll(acked), Duration.ofSeconds(30),
            () -> acked.size() + " acknowledged, " + delivered(one, two).size() + " delivered");
        final long duplicated = delivered(one, two).values().stream().filter(count -> count > 1).count();
        assertEquals(0, duplicated, "duplicated");
        assertTrue(one.messageCount() > 0 && two.messageCount() > 0, "both routes were used in turn");
        assertEquals(59, relay.config().admission().maxConnectionsPerIp());
    }

    private static Map<String, Integer> delivered(final TestSmtpSink... sinks)
    {
        final Map<String, Integer> seen = new HashMap<>();
        for (final TestSmtpSink sink : sinks)
        {
            for (final TestSmtpSink.Received got : sink.messages())
            {
                final String text = got.text();
                final int at = text.indexOf("\r\nMessage-ID: <");
                if (at >= 0)
                {
                    final int start = at + "\r\nMessage-ID: <".length();
                    seen.merge(text.substring(start, text.indexOf('>', start)), 1, Integer::sum);
                }
            }
        }
        return seen;
    }

    private static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress()))
        {
            return socket.getLocalPort();
        }
    }
}
