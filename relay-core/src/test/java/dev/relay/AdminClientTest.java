package dev.relay;

import dev.relay.config.RelayConfig;
import dev.relay.metrics.MetricsServer;
import dev.relay.metrics.RelayMetrics;
import dev.relay.smtp.QueueIds;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code relay spool hold|release|delete|requeue} as the operator runs it, against a real admin endpoint
 * ({@link MetricsServer} on loopback) whose queue command records what it was asked and answers as the relay does:
 * the selection and the operator's command arrive, the token goes along, many ids go in batches whose counts add up,
 * and a bad command line is refused before anything is sent.
 */
@Timeout(30)
class AdminClientTest
{
    private static final String TOKEN = "cli-T0ken";

    private final List<String> bodies = new CopyOnWriteArrayList<>();
    private MetricsServer server;

    @AfterEach
    void stop()
    {
        if (server != null)
        {
            server.close();
        }
    }

    @Test
    void theSelectionAndTheOperatorsCommandGoWithTheToken() throws Exception
    {
        final RelayConfig config = start(TOKEN);
        final Run run = run(config, "hold", "", "--sender", "a@b.test", "--recipient-domain", "c.test");
        assertEquals(0, run.exit, run.err);
        assertEquals("relay: Placed on hold: 1 message", run.out.trim());
        assertEquals(1, bodies.size());
        assertTrue(bodies.get(0).startsWith("hold\nsender=a@b.test\nrecipient-domain=c.test\noperator="),
            bodies.get(0));
        assertTrue(bodies.get(0).endsWith(": relay spool hold --sender a@b.test --recipient-domain c.test\n"),
            bodies.get(0));

        final Run noToken = run(start(""), "delete", "", "--all");
        assertEquals(1, noToken.exit);
        assertTrue(noToken.err.contains("HTTP 401"), noToken.err);
    }

    @Test
    void manyIdsFromStandardInputGoInBatchesAndTheCountsAddUp() throws Exception
    {
        final RelayConfig config = start(TOKEN);
        final StringBuilder stdin = new StringBuilder();
        final int count = AdminClient.IDS_PER_REQUEST * 2 + 5;
        for (int i = 0; i < count; i++)
        {
            stdin.append(QueueIds.format(1_000 + i)).append('\n');
        }
        final Run run = run(config, "delete", stdin.toString(), "-");
        assertEquals(0, run.exit, run.err);
        assertEquals("relay: Deleted: " + count + " messages", run.out.trim());
        assertEquals(3, bodies.size(), "three requests");
    }

    @Test
    void aBadCommandLineSendsNothing() throws Exception
    {
        final RelayConfig config = start(TOKEN);
        assertEquals(2, run(config, "hold", "").exit, "no selection");
        assertEquals(2, run(config, "hold", "", "--all", QueueIds.format(1_000)).exit, "ids and --all");
        assertEquals(2, run(config, "hold", "", "not-an-id").exit);
        assertEquals(2, run(config, "hold", "", "--sender").exit, "--sender without an address");
        assertEquals(2, run(config, "release", "", "--everything").exit);
        assertEquals(List.of(), bodies);
    }

    private RelayConfig start(final String token) throws Exception
    {
        if (server == null)
        {
            server = MetricsServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), new RelayMetrics(),
                () -> 0, () -> true, () -> { }, TOKEN, (verb, body) ->
                {
                    bodies.add(verb + "\n" + body);
                    final long ids = body.lines().filter(line -> line.startsWith("id=")).count();
                    final String what = "delete".equals(verb) ? "Deleted" : "Placed on hold";
                    final long touched = ids == 0 ? 1 : ids;
                    return new MetricsServer.AdminReply(200, what + ": " + touched +
                        (touched == 1 ? " message" : " messages"));
                });
        }
        return RelayConfig.fromMap(Map.of("metrics.listen", "127.0.0.1:" + server.address().getPort(),
            "metrics.admin_token", token));
    }

    private record Run(int exit, String out, String err)
    {
    }

    private static Run run(final RelayConfig config, final String verb, final String stdin, final String... args)
    {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        final ByteArrayOutputStream err = new ByteArrayOutputStream();
        final InputStream in = new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8));
        final int exit = AdminClient.queue(config, verb, List.of(args), in,
            new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }
}
