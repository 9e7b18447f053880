package dev.relay.it;

import dev.relay.testing.Await;
import dev.relay.testing.DeliveryCounts;
import dev.relay.testing.DigestingSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import static dev.relay.it.MetricsEndpoint.sample;
import static dev.relay.it.MetricsEndpoint.sampleQuietly;

/**
 * Queue surgery on a running relay, as an operator does it: the relay as a child JVM with delivery running and its
 * destination down, so mail queues; then {@code relay spool hold|release|delete|requeue} (each a child JVM of its
 * own, RelayMain as {@code ops/relay} runs it, talking to the admin endpoint with the token from the same properties
 * file), a {@code kill -9} and a start again, and the destination comes up. The sink counts by Message-ID: every
 * message not deleted arrives exactly once (lost 0, duplicated 0), the deleted ones never, the held ones only after
 * their release.
 */
@Timeout(180)
class QueueSurgeryProcessTest
{
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final String TOKEN = "surgery-T0ken";
    private static final String ALICE = "alice@client.test";
    private static final String BOB = "bob@client.test";

    @TempDir
    Path tmp;

    private final List<AutoCloseable> started = new ArrayList<>();

    @AfterEach
    void cleanUp() throws Exception
    {
        for (int i = started.size() - 1; i >= 0; i--)
        {
            started.get(i).close();
        }
    }

    @Test
    void holdReleaseDeleteAndRequeueOnARunningRelayDeliverExactlyTheMailNotDeleted() throws Exception
    {
        final int sinkPort = freePort();
        final int metricsPort = freePort();
        final Map<String, String> config = InProcessRelay.config(tmp.resolve("spool"),
            "metrics.listen", "127.0.0.1:" + metricsPort, "metrics.admin_token", TOKEN,
            "delivery.routes", "*=[127.0.0.1]:" + sinkPort, "delivery.retry.schedule", "1h");
        final Path configFile = ChildRelay.writeConfig(tmp, config);
        final ChildRelay first = ChildRelay.start(tmp, config);
        started.add(first);

        // 10 from alice to a.test, 10 from bob to b.test; the destination is down, so each is deferred for an hour
        final List<String> ids = new ArrayList<>();
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(first.port()))
        {
            for (int i = 0; i < 20; i++)
            {
                ids.add(client.sendMessage(i < 10 ? ALICE : BOB, List.of(i < 10 ? "x" + i + "@a.test" : "y" + i +
                    "@b.test"), ("Message-ID: <m" + i + "@client.test>\r\nSubject: " + i + "\r\n\r\nbody " + i +
                    "\r\n").getBytes(StandardCharsets.US_ASCII)));
            }
        }
        Await.until(() -> sampleQuietly(metricsPort, "relay_queue_messages{state=\"deferred\"}") == 20, WAIT,
            () -> "20 deferred\n" + first.output());

        // the token is required: without it (a properties file without the key) nothing is done
        final Map<String, String> noToken = new java.util.LinkedHashMap<>(config);
        noToken.remove("metrics.admin_token");
        final Cli refused = cli(ChildRelay.writeConfig(tmp, noToken), "spool", "hold", "--all");
        assertEquals(1, refused.exit, refused.output);
        assertTrue(refused.err.contains("HTTP 401"), refused.output);
        assertEquals(401, MetricsEndpoint.post(metricsPort, "/admin/queue/hold", "all=yes", null).statusCode());
        assertEquals(401, MetricsEndpoint.post(metricsPort, "/admin/queue/hold", "all=yes", "Bearer wrong").statusCode());
        assertEquals(0, sample(metricsPort, "relay_queue_messages{state=\"held\"}"));

        assertCli("Placed on hold: 10 messages", configFile, "spool", "hold", "--sender", ALICE);
        assertCli("Deleted: 2 messages", configFile, "spool", "delete", ids.get(10), ids.get(11));
        assertCli("Placed on hold: 8 messages", configFile, "spool", "hold", "--recipient-domain", "b.test");
        assertCli("Released from hold: 4 messages", configFile, "spool", "release", ids.get(12), ids.get(13),
            ids.get(14), ids.get(15));
        assertCli("Deleted: 1 message", configFile, "spool", "delete", ids.get(16));
        assertEquals(13, sample(metricsPort, "relay_queue_messages{state=\"held\"}"));
        final Cli list = cli(configFile, "spool", "list");
        assertEquals(0, list.exit, list.output);
        assertEquals(13, count(list.out, "  held"), list.out);
        assertTrue(first.stdout().contains(ids.get(0) + ": placed on hold (" + System.getProperty("user.name") +
            ": relay spool hold --sender " + ALICE + ")"), first.stdout());
        assertTrue(first.stdout().contains(ids.get(16) + ": removed by the operator ("), first.stdout());

        // kill -9 and a start again: what is held stays held, what is deleted stays deleted
        first.kill9();
        final ChildRelay relay = ChildRelay.start(tmp, config);
        started.add(relay);
        Await.until(() -> sampleQuietly(metricsPort, "relay_queue_messages{state=\"held\"}") == 13 &&
            sampleQuietly(metricsPort, "relay_queue_messages{state=\"deferred\"}") == 4, WAIT,
            () -> "13 held and 4 deferred after kill -9\n" + relay.output());

        // the destination comes up: a requeue sends what is not held (m12..m15) and nothing else
        final DigestingSink sink = DigestingSink.start(sinkPort);
        started.add(sink);
        assertCli("Requeued: 4 messages", configFile, "spool", "requeue", "--all");
        Await.until(() -> sink.messageCount() >= 4, WAIT, () -> "the 4 requeued\n" + relay.output());
        Await.until(() -> sampleQuietly(metricsPort, "relay_queue_messages{state=\"active\"}") == 0 &&
            sampleQuietly(metricsPort, "relay_queue_messages{state=\"deferred\"}") == 0, WAIT, () -> "only held left");
        assertEquals(messageIds(12, 13, 14, 15), new TreeSet<>(sink.all().keySet()), "held mail waits");

        assertCli("Released from hold: 13 messages", configFile, "spool", "release", "--all");
        final List<Integer> expected = new ArrayList<>();
        for (int i = 0; i < 20; i++)
        {
            if (i != 10 && i != 11 && i != 16)
            {
                expected.add(i);
            }
        }
        Await.until(() -> sink.messageCount() >= expected.size(), WAIT, () -> "all but the deleted: " +
            sink.messageCount() + "\n" + relay.output());
        Await.until(() -> sampleQuietly(metricsPort, "relay_queue_messages{state=\"active\"}") == 0 &&
            sampleQuietly(metricsPort, "relay_queue_messages{state=\"held\"}") == 0, WAIT, () -> "queue empty");

        final Map<String, List<DigestingSink.Digest>> got = sink.all();
        final DeliveryCounts counts = DeliveryCounts.of(expected, i -> got.getOrDefault("m" + i, List.of()).size());
        System.out.printf("queue surgery: %d delivered of %d expected, lost %d, duplicated %d, deleted 3%n",
            got.size(), expected.size(), counts.lost(), counts.duplicated());
        counts.assertEachOnce("lost");
        assertEquals(messageIds(expected.stream().mapToInt(Integer::intValue).toArray()), new TreeSet<>(got.keySet()),
            "exactly the messages not deleted");
        relay.sigterm();
        assertEquals(0, relay.awaitExit(Duration.ofSeconds(30)), relay::output);
    }

    /** One run of RelayMain as a command line tool. */
    private record Cli(int exit, String out, String err, String output)
    {
    }

    private Cli cli(final Path configFile, final String... args) throws Exception
    {
        final List<String> command = new ArrayList<>(List.of("--config", configFile.toString()));
        command.addAll(List.of(args));
        try (ChildRelay tool = ChildRelay.launch(tmp, command))
        {
            final int exit = tool.awaitExit(WAIT);
            return new Cli(exit, tool.stdout(), tool.stderr(), tool.output());
        }
    }

    private void assertCli(final String expected, final Path configFile, final String... args) throws Exception
    {
        final Cli run = cli(configFile, args);
        assertEquals(0, run.exit, run.output);
        assertEquals("relay: " + expected, run.out.trim(), run.output);
    }

    private static TreeSet<String> messageIds(final int... numbers)
    {
        final TreeSet<String> ids = new TreeSet<>();
        for (final int i : numbers)
        {
            ids.add("m" + i);
        }
        return ids;
    }

    private static int count(final String text, final String part)
    {
        int count = 0;
        for (int at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + 1))
        {
            count++;
        }
        return count;
    }

    private static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress()))
        {
            return socket.getLocalPort();
        }
    }
}
