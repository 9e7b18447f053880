package dev.relay.it;

import dev.relay.testing.Await;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Load from several connections against a child relay until it has acknowledged enough messages, then
 * {@code kill -9}: the durability tests' harness. Each connection sends transactions back to back
 * ({@link SmtpTestClient#sendUntil}) and records the queue id of every 250; after the kill the spool is read and
 * every acknowledged id must be in it (a 250 is a promise). Close it (after the test) to stop what is left.
 */
final class KillNineLoad implements AutoCloseable
{
    /** Opens one load connection, ready for MAIL (greeting, EHLO, TLS, AUTH as the test wants). */
    interface Connector
    {
        SmtpTestClient open(int connection) throws IOException;
    }

    /** What the spool held after the kill: {@code lost} are acknowledged ids it does not have (must be none). */
    record Result(Set<String> acked, int ackedAtKill, Duration loadTime, Set<String> spooled, Set<String> lost)
    {
    }

    private final AtomicBoolean stop = new AtomicBoolean();
    private final List<Thread> threads = new ArrayList<>();
    private final Set<String> acked = ConcurrentHashMap.newKeySet();
    private final ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();

    /**
     * Starts {@code connections} load threads, waits for {@code killAfterAcks} 250s (or {@code maxLoad}), kills the
     * relay with SIGKILL, joins the threads and reads {@code spool}. Fails if the load failed before the kill or
     * fewer than 100 messages were acknowledged.
     *
     * @param bodyBytes the size of each message's body (a Subject line and that many bytes of text).
     */
    Result run(final ChildRelay relay, final Path spool, final int connections, final int killAfterAcks,
        final Duration maxLoad, final int bodyBytes, final Connector connector) throws Exception
    {
        for (int i = 0; i < connections; i++)
        {
            final int connection = i;
            final Thread thread = new Thread(() -> load(connector, connection, bodyBytes), "load-" + i);
            thread.setDaemon(true);
            threads.add(thread);
            thread.start();
        }
        final long startNs = System.nanoTime();
        final long deadline = startNs + maxLoad.toNanos();
        while (acked.size() < killAfterAcks && System.nanoTime() - deadline < 0 && problems.isEmpty())
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
        assertTrue(problems.isEmpty(), () -> "load failed before the kill: " + problems + "\n" + relay.output());
        assertTrue(ackedAtKill > 100, "only " + ackedAtKill + " acks in " + loadTime + "\n" + relay.output());
        final Set<String> spooled = spooledIds(spool);
        final Set<String> lost = new HashSet<>(acked);
        lost.removeAll(spooled);
        return new Result(Set.copyOf(acked), ackedAtKill, loadTime, spooled, lost);
    }

    /** The queue ids in {@code spool}, read with the spool's own reader. */
    static Set<String> spooledIds(final Path spool) throws IOException
    {
        final Set<String> ids = new HashSet<>();
        for (final SpoolContents.Stored stored : SpoolContents.read(spool))
        {
            ids.add(stored.queueId());
        }
        return ids;
    }

    /** One connection sending until stopped or the relay dies. */
    private void load(final Connector connector, final int connection, final int bodyBytes)
    {
        final byte[] body = ("Subject: load " + connection + "\r\n\r\n" + "x".repeat(bodyBytes) + "\r\n.\r\n")
            .getBytes(StandardCharsets.US_ASCII);
        final byte[] envelope = ("MAIL FROM:<load" + connection + "@client.test>\r\nRCPT TO:<r@ours.test>\r\nDATA\r\n")
            .getBytes(StandardCharsets.US_ASCII);
        try (SmtpTestClient client = connector.open(connection))
        {
            final String problem = client.sendUntil(stop, envelope, body, acked);
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

    @Override
    public void close() throws InterruptedException
    {
        stop.set(true);
        for (final Thread thread : threads)
        {
            thread.join(10_000);
        }
    }
}
