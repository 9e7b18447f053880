package dev.relay.it;

import dev.relay.testing.Await;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;

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
    private final List<Thread> threads = new ArrayList<>();
    private final AtomicBoolean stopLoad = new AtomicBoolean();

    @AfterEach
    void cleanUp() throws InterruptedException
    {
        stopLoad.set(true);
        for (final ChildRelay child : children)
        {
            child.close();
        }
        for (final Thread thread : threads)
        {
            thread.join(10_000);
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

        final Set<String> acked = ConcurrentHashMap.newKeySet();
        final ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
        for (int i = 0; i < CONNECTIONS; i++)
        {
            final int connection = i;
            final Thread thread = new Thread(() -> load(relay.port(), connection, acked, problems), "load-" + i);
            thread.setDaemon(true);
            threads.add(thread);
            thread.start();
        }
        final long startNs = System.nanoTime();
        final long deadline = startNs + MAX_LOAD.toNanos();
        while (acked.size() < KILL_AFTER_ACKS && System.nanoTime() < deadline && problems.isEmpty())
        {
            Await.pause();
        }
        relay.kill9();
        final int ackedAtKill = acked.size();
        final Duration loadTime = Duration.ofNanos(System.nanoTime() - startNs);
        for (final Thread thread : threads)
        {
            thread.join(10_000);
            assertTrue(!thread.isAlive(), thread.getName() + " still running after the kill");
        }
        assertTrue(problems.isEmpty(), () -> "load failed before the kill: " + problems);
        assertTrue(ackedAtKill > 100, "only " + ackedAtKill + " acks in " + loadTime + "\n" + relay.output());

        final Set<String> spooled = new HashSet<>();
        for (final SpoolContents.Stored stored : SpoolContents.read(spool))
        {
            spooled.add(stored.queueId());
        }
        final Set<String> lost = new HashSet<>(acked);
        lost.removeAll(spooled);
        System.out.printf("queue.sync=%s: acked %d in %d ms, spooled %d (%d complete without a 250 yet), lost %d%n",
            syncMode, acked.size(), loadTime.toMillis(), spooled.size(), spooled.size() - (acked.size() - lost.size()),
            lost.size());
        assertEquals(Set.of(), lost, "acknowledged messages missing from the spool after kill -9");

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
        final Set<String> after = new HashSet<>();
        for (final SpoolContents.Stored stored : SpoolContents.read(spool))
        {
            after.add(stored.queueId());
        }
        assertTrue(after.containsAll(acked) && after.contains(id), "spool after restart lost messages");
    }

    /** One connection sending messages back to back until the relay dies; records the id of every 250. */
    private void load(final int port, final int connection, final Set<String> acked,
        final ConcurrentLinkedQueue<String> problems)
    {
        final byte[] body = ("Subject: load " + connection + "\r\n\r\n" + "0123456789abcdef".repeat(32) + "\r\n.\r\n")
            .getBytes(StandardCharsets.US_ASCII);
        final byte[] envelope = ("MAIL FROM:<load" + connection + "@client.test>\r\nRCPT TO:<r@ours.test>\r\nDATA\r\n")
            .getBytes(StandardCharsets.US_ASCII);
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(port))
        {
            final String problem = client.sendUntil(stopLoad, envelope, body, acked);
            if (problem != null)
            {
                problems.add("connection " + connection + ": " + problem);
            }
        }
        catch (final IOException killed)
        {
            // the relay was killed: the message in flight got no 250, so it is not counted
        }
        catch (final RuntimeException | AssertionError ex)
        {
            problems.add("connection " + connection + ": " + ex);
        }
    }
}
