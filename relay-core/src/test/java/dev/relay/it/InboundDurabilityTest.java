package dev.relay.it;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Promise 1 of DESIGN.md: a 250 is a promise. For each queue.sync mode the relay runs as a child JVM under load
 * from 8 connections that record every queue id acknowledged with 250; the relay is killed with SIGKILL mid-load,
 * and every acknowledged id must be in the spool (lost = 0). The relay is then restarted on the same spool and
 * must take mail again.
 * <p>
 * A kill cannot tell a missing fsync from a good one (the page cache survives a process kill); this guards the
 * ordering "append, then 250" and the spool's recovery after a crash, not power-loss durability.
 */
@Tag("slow")
@Timeout(90)
class InboundDurabilityTest
{
    private static final int CONNECTIONS = 8;
    private static final int KILL_AFTER_ACKS = 2000;
    private static final Duration MAX_LOAD = Duration.ofSeconds(12);

    @TempDir
    Path tmp;
    private final List<ChildRelay> children = new ArrayList<>();
    private final KillNineLoad load = new KillNineLoad();

    @AfterEach
    void cleanUp() throws InterruptedException
    {
        load.close();
        for (final ChildRelay child : children)
        {
            child.close();
        }
    }

    @ParameterizedTest(name = "queue.sync={0}")
    @ValueSource(strings = {"always", "batch", "none"})
    void killNineLosesNoAcknowledgedMessage(final String syncMode) throws Exception
    {
        final Path spool = tmp.resolve("spool");
        final Map<String, String> config = InProcessRelay.config(spool, "queue.sync", syncMode);
        final ChildRelay relay = ChildRelay.start(tmp, config);
        children.add(relay);

        final KillNineLoad.Result result = load.run(relay, spool, CONNECTIONS, KILL_AFTER_ACKS, MAX_LOAD, 512,
            connection -> SmtpTestClient.connectEhlo(relay.port()));
        final Set<String> acked = result.acked();
        System.out.printf("queue.sync=%s: acked %d in %d ms, spooled %d (%d complete without a 250 yet), lost %d%n",
            syncMode, acked.size(), result.loadTime().toMillis(), result.spooled().size(),
            result.spooled().size() - (acked.size() - result.lost().size()), result.lost().size());
        assertEquals(Set.of(), result.lost(), "acknowledged messages missing from the spool after kill -9");

        // the relay starts again on the killed relay's spool and takes mail
        final ChildRelay restarted = ChildRelay.start(tmp, config);
        children.add(restarted);
        final String id;
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(restarted.port()))
        {
            id = client.sendMessage("after@client.test", List.of("r@ours.test"),
                "Subject: after restart\r\n\r\nx\r\n".getBytes(StandardCharsets.US_ASCII));
        }
        restarted.sigterm();
        assertEquals(0, restarted.awaitExit(Duration.ofSeconds(15)), restarted::output);
        final Set<String> after = KillNineLoad.spooledIds(spool);
        assertTrue(after.containsAll(acked) && after.contains(id), "spool after restart lost messages");
    }
}
