package dev.relay.e2e;

import dev.relay.RelayMain;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestCertificates;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The relay as a child JVM ({@code RelayMain --config FILE}, the flags of {@code ops/jvm.options}) is stopped in
 * the middle of delivery, by SIGKILL and by SIGTERM, and started again on the same spool. Every message that got a
 * 250 must reach the destination (lost = 0); duplicates are counted and must stay below a small bound: only the
 * transactions in flight at the stop (at most {@code max_connections_per_hop}) and the messages being sent to the
 * relay at that moment can repeat. The kill is also made while delivery runs over TLS (STARTTLS at
 * {@code delivery.tls=verify} to a sink offering it), where every delivered copy must have come encrypted.
 */
@Tag("slow")
class DeliveryCrashTest
{
    private static final int MESSAGES = 2000;
    private static final int SENDER_THREADS = 2;
    private static final int CONNECTIONS_PER_HOP = 4;
    private static final int MAX_DUPLICATES = 50;
    private static final int DELIVERED_BEFORE_STOP = 400;
    private static final int ACKED_BEFORE_TERM = 800;
    private static final String SENDER = "crash@client.test";

    @TempDir
    Path dir;

    private TestSmtpSink sink;
    private Process child;
    private ExecutorService senders;
    private Path config;
    private Path childLog;
    private int relayPort;
    private final Map<String, String> acked = new ConcurrentHashMap<>();

    @BeforeEach
    void setUp() throws Exception
    {
        sink = TestSmtpSink.start();
        sink.replyDelay(Duration.ofMillis(3)); // slow-ish: delivery trails the senders
        relayPort = freePort();
        config = dir.resolve("relay.properties");
        childLog = dir.resolve("child.log");
        writeConfig();
        senders = Executors.newFixedThreadPool(SENDER_THREADS);
    }

    private void writeConfig(final String... more) throws IOException
    {
        final List<String> lines = new ArrayList<>(List.of(
            "smtp.listen=127.0.0.1:" + relayPort,
            "smtp.hostname=relay.test",
            "smtp.io_threads=1",
            "smtp.drain_timeout=2s",
            "queue.dir=" + dir.resolve("spool"),
            "queue.sync=batch",
            "delivery.routes=*=127.0.0.1:" + sink.port(),
            "delivery.max_connections_per_hop=" + CONNECTIONS_PER_HOP,
            "delivery.retry.schedule=200ms",
            "delivery.timeout.connect=2s",
            "metrics.listen=off"));
        lines.addAll(List.of(more));
        lines.add("");
        Files.writeString(config, String.join("\n", lines));
    }

    @AfterEach
    void tearDown() throws Exception
    {
        try
        {
            senders.shutdownNow();
            if (child != null && child.isAlive())
            {
                child.destroyForcibly();
                child.waitFor(10, TimeUnit.SECONDS);
            }
        }
        finally
        {
            Await.closeQuietly(sink);
        }
    }

    @Test
    @Timeout(60)
    void kill9WhilePartlyDeliveredLosesNothing() throws Exception
    {
        run(true);
    }

    @Test
    @Timeout(90)
    void kill9WhileDeliveringOverTlsLosesNothing() throws Exception
    {
        sink.tls(TestCertificates.get().serverContext(TestCertificates.KeyType.EC));
        writeConfig("delivery.tls=verify",
            "delivery.tls.ca_file=" + TestCertificates.get().writeCa(dir.resolve("tls")));
        run(true);
        final Map<Integer, String> tls = sink.tlsProtocols();
        for (final TestSmtpSink.Received message : sink.messages())
        {
            assertEquals("TLSv1.3", tls.get(message.connectionId()), "every copy came over TLS");
        }
    }

    @Test
    @Timeout(60)
    void sigtermDuringLoadDrainsLosesNothingAndExitsZero() throws Exception
    {
        run(false);
    }

    private void run(final boolean kill9) throws Exception
    {
        final long startNs = System.nanoTime();
        final List<String> ids = new ArrayList<>();
        for (int i = 0; i < MESSAGES; i++)
        {
            ids.add("crash-" + i);
        }
        child = startChild();
        final List<Future<Integer>> sending = sendAll(ids);
        if (kill9)
        {
            Await.until(DELIVERED_BEFORE_STOP + " deliveries before the kill", Duration.ofSeconds(30),
                () -> sink.messageCount() >= DELIVERED_BEFORE_STOP, this::state);
        }
        else
        {
            // SIGTERM while the senders are still busy and delivery is partway
            Await.until(ACKED_BEFORE_TERM + " acked before SIGTERM", Duration.ofSeconds(30),
                () -> acked.size() >= ACKED_BEFORE_TERM && sink.messageCount() > 0, this::state);
        }
        final int deliveredAtStop = sink.messageCount();
        final int ackedAtStop = acked.size();
        final int exit;
        if (kill9)
        {
            child.destroyForcibly();
            exit = waitExit(child);
        }
        else
        {
            child.destroy();
            exit = waitExit(child);
            assertEquals(RelayMain.EXIT_OK, exit, () -> "SIGTERM exit code; " + state());
        }
        for (final Future<Integer> future : sending)
        {
            future.get(30, TimeUnit.SECONDS); // senders stop at the first refused or broken transaction
        }
        System.out.printf("%s: at the stop %d acked, %d delivered (exit %d)%n", kill9 ? "kill -9" : "SIGTERM",
            ackedAtStop, deliveredAtStop, exit);

        // the same spool again; then the senders finish what was not acked
        child = startChild();
        final List<String> rest = new ArrayList<>();
        for (final String id : ids)
        {
            if (!acked.containsKey(id))
            {
                rest.add(id);
            }
        }
        for (final Future<Integer> future : sendAll(rest))
        {
            future.get(30, TimeUnit.SECONDS);
        }
        assertEquals(MESSAGES, acked.size(), () -> "every message acked in the end; " + state());
        Await.until("every acked message at the destination", Duration.ofSeconds(30),
            () -> distinctDelivered().keySet().containsAll(acked.keySet()), this::state);
        // a clean stop: what was in flight finishes, so the duplicate count below is final
        child.destroy();
        assertEquals(RelayMain.EXIT_OK, waitExit(child), () -> "exit code after the restart; " + state());

        final Map<String, Integer> delivered = distinctDelivered();
        final Set<String> lost = ConcurrentHashMap.newKeySet();
        lost.addAll(acked.keySet());
        lost.removeAll(delivered.keySet());
        int duplicates = 0;
        for (final int count : delivered.values())
        {
            duplicates += count - 1;
        }
        System.out.printf("%s: %d acked, %d delivered (%d distinct), lost %d, duplicates %d, %d ms%n",
            kill9 ? "kill -9" : "SIGTERM", acked.size(), sink.messageCount(), delivered.size(), lost.size(),
            duplicates, (System.nanoTime() - startNs) / 1_000_000);
        assertEquals(Set.of(), lost, "lost messages");
        assertTrue(duplicates <= MAX_DUPLICATES, "duplicates " + duplicates + " > " + MAX_DUPLICATES);
    }

    /** Senders split {@code ids}; each stops at its first failure (the relay going away) and returns its count. */
    private List<Future<Integer>> sendAll(final List<String> ids)
    {
        final InetSocketAddress relay = new InetSocketAddress("127.0.0.1", relayPort);
        final List<Future<Integer>> futures = new ArrayList<>();
        for (int t = 0; t < SENDER_THREADS; t++)
        {
            final int thread = t;
            futures.add(senders.submit(() ->
            {
                int sent = 0;
                try (BlockingSmtpClient client = new BlockingSmtpClient(relay))
                {
                    for (int i = thread; i < ids.size(); i += SENDER_THREADS)
                    {
                        final String id = ids.get(i);
                        final String queueId = client.send(SENDER, List.of("r" + (i % 5) + "@example.test"),
                            E2e.message(SENDER, "r@example.test", id));
                        acked.put(id, queueId);
                        sent++;
                    }
                }
                catch (final IOException expected)
                {
                    // the relay stopped under us: what was not acked is sent again after the restart
                }
                return sent;
            }));
        }
        return futures;
    }

    /** Message id (without {@code @client.test}) to how many times it arrived. */
    private Map<String, Integer> distinctDelivered()
    {
        final Map<String, Integer> counts = new HashMap<>();
        for (final TestSmtpSink.Received message : sink.messages())
        {
            final String id = E2e.messageId(message.content());
            counts.merge(id.substring(0, id.indexOf('@')), 1, Integer::sum);
        }
        return counts;
    }

    private Process startChild() throws Exception
    {
        final List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (final String line : Files.readAllLines(jvmOptions()))
        {
            final String option = line.trim();
            if (option.startsWith("--add-") || option.startsWith("-D"))
            {
                command.add(option);
            }
        }
        command.add("-Xmx256m");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(RelayMain.class.getName());
        command.add("--config");
        command.add(config.toString());
        final Process process = new ProcessBuilder(command)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(childLog.toFile()))
            .start();
        Await.until("the child relay to listen on " + relayPort, Duration.ofSeconds(20), () ->
        {
            if (!process.isAlive())
            {
                throw new AssertionError("child exited with " + process.exitValue() + "; log:\n" + childLogTail());
            }
            try (Socket probe = new Socket("127.0.0.1", relayPort))
            {
                return true;
            }
            catch (final IOException notYet)
            {
                return false;
            }
        }, this::childLogTail);
        return process;
    }

    private int waitExit(final Process process) throws InterruptedException
    {
        if (!process.waitFor(20, TimeUnit.SECONDS))
        {
            throw new AssertionError("child did not exit; " + state());
        }
        return process.exitValue();
    }

    private String state()
    {
        return "acked " + acked.size() + ", delivered " + sink.messageCount() + " (" + distinctDelivered().size() +
            " distinct); child log:\n" + childLogTail();
    }

    private String childLogTail()
    {
        try
        {
            if (!Files.exists(childLog))
            {
                return "(no log)";
            }
            final String text = Files.readString(childLog, StandardCharsets.UTF_8);
            return text.length() <= 4000 ? text : "..." + text.substring(text.length() - 4000);
        }
        catch (final IOException ex)
        {
            return "(log unreadable: " + ex + ")";
        }
    }

    /** {@code ops/jvm.options}, found from the working directory (the module or the repository root). */
    private static Path jvmOptions()
    {
        Path at = Path.of("").toAbsolutePath();
        while (at != null)
        {
            final Path candidate = at.resolve("ops").resolve("jvm.options");
            if (Files.isRegularFile(candidate))
            {
                return candidate;
            }
            at = at.getParent();
        }
        throw new AssertionError("ops/jvm.options not found above " + Path.of("").toAbsolutePath());
    }

    private static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1")))
        {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        }
    }
}
