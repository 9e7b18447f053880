package dev.relay.it;

import dev.relay.testing.Await;
import dev.relay.testing.HaproxyProcess;
import dev.relay.testing.TestSmtpSink;
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
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Scale-out behind a load balancer: Debian's HAProxy (mode tcp, {@code send-proxy-v2}, health checks on
 * {@code /health}) in front of two relays (child JVMs, {@code smtp.proxy_protocol=true}) on loopback, both relaying to
 * one {@link TestSmtpSink}. Clients connect to HAProxy from 127.0.0.2-5 and send mail; relay A is killed with SIGKILL
 * in the middle of that, HAProxy marks it down and sends every new connection to B, A is started again on its spool
 * and HAProxy sends it connections again. Afterwards: every acknowledged message is delivered (lost 0), duplicates are
 * at most the messages that were in flight at A (client transactions cut without a 250, which the clients send again,
 * and A's delivery transactions), each message's {@code Received:} names the client's own address, and
 * {@code smtp.max_connections_per_ip} counts that address, not HAProxy's.
 */
@Timeout(120)
class ScaleOutHaproxyTest
{
    private static final int CLIENTS = 4;
    private static final int MESSAGES_PER_CONNECTION = 5;
    private static final int DELIVERY_CONNECTIONS_PER_HOP = 2;
    private static final int MAX_CONNECTIONS_PER_IP = 3;

    @TempDir
    Path tmp;

    private final List<ChildRelay> children = new ArrayList<>();
    private final List<Thread> clients = new ArrayList<>();
    private final Set<String> acked = ConcurrentHashMap.newKeySet();
    private final Set<String> interrupted = ConcurrentHashMap.newKeySet();
    private final Map<String, AtomicInteger> greetings = new ConcurrentHashMap<>();
    private final ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
    private final AtomicInteger nextId = new AtomicInteger();
    private volatile boolean stopLoad;
    /** Which part of the test new connections count in: "before", "outage", "restart", "after". */
    private volatile String phase = "before";
    private TestSmtpSink sink;
    private HaproxyProcess haproxy;

    @AfterEach
    void cleanUp() throws InterruptedException
    {
        stopLoad();
        if (haproxy != null)
        {
            haproxy.close();
        }
        for (final ChildRelay child : children)
        {
            child.close();
        }
        if (sink != null)
        {
            sink.close();
        }
    }

    @Test
    void aRelayKilledBehindHaproxyLosesNothingAndHaproxyRoutesAroundIt() throws Exception
    {
        sink = TestSmtpSink.start();
        final int front = freePort();
        final int stats = freePort();
        final Map<String, String> configA = relayConfig("a", freePort(), freePort());
        final Map<String, String> configB = relayConfig("b", freePort(), freePort());
        ChildRelay a = start("a", configA);
        start("b", configB);
        haproxy = HaproxyProcess.start(tmp.resolve("haproxy"), String.format(HaproxyProcess.DEFAULTS, stats) +
            String.format("""
                frontend smtp
                    bind 127.0.0.1:%d
                    default_backend relays

                backend relays
                    balance roundrobin
                    option httpchk
                    http-check send meth GET uri /health
                    http-check expect status 200
                %s
                %s
                """, front, server("a", configA), server("b", configB)), stats, stats, front);
        awaitState("a", "UP");
        awaitState("b", "UP");

        for (int i = 0; i < CLIENTS; i++)
        {
            final String source = "127.0.0." + (2 + i);
            final Thread thread = new Thread(() -> load(source, front), "client-" + source);
            thread.setDaemon(true);
            clients.add(thread);
            thread.start();
        }
        awaitAcked(100, "before the kill");
        assertTrue(greeted("before", "a") > 0 && greeted("before", "b") > 0, () -> "both served: " + greetings);

        a.kill9();
        phase = "outage";
        final int ackedAtKill = acked.size();
        awaitState("a", "DOWN");
        awaitAcked(ackedAtKill + 100, "while A is down");
        assertEquals(0, greeted("outage", "a"), "a connection reached the dead relay");
        assertTrue(greeted("outage", "b") > 0, () -> "B served the outage: " + greetings);

        phase = "restart";
        a = start("a", configA);
        awaitState("a", "UP");
        phase = "after";
        final int ackedAtRestart = acked.size();
        Await.until(() -> greeted("after", "a") > 0, Duration.ofSeconds(20),
            () -> "new connections reach A again: " + greetings);
        awaitAcked(ackedAtRestart + 50, "after the restart");
        stopLoad();
        assertTrue(problems.isEmpty(), () -> "load problems: " + problems);

        // lost 0: every acknowledged message reaches the sink (A's own after its restart)
        Await.until(() -> delivered().keySet().containsAll(acked), Duration.ofSeconds(40),
            () -> "delivery of " + acked.size() + " acknowledged; delivered " + delivered().size() + "\n" +
                children.get(children.size() - 1).output());
        final long quietUntil = System.nanoTime() + Duration.ofSeconds(1).toNanos();
        Await.until(() -> System.nanoTime() - quietUntil > 0, Duration.ofSeconds(5), () -> "a quiet second");
        final Map<String, Integer> delivered = delivered();
        final List<String> duplicated = delivered.entrySet().stream().filter(entry -> entry.getValue() > 1)
            .map(Map.Entry::getKey).toList();
        final int inFlight = interrupted.size() + DELIVERY_CONNECTIONS_PER_HOP;
        assertTrue(duplicated.size() <= inFlight, () -> duplicated.size() + " duplicated, more than the " + inFlight +
            " in flight at the kill: " + duplicated);

        // the client's own address in Received:, as each message says where it came from
        for (final TestSmtpSink.Received message : sink.messages())
        {
            final String text = message.text();
            final int at = text.indexOf("\r\nX-Source: ");
            assertTrue(at > 0, text);
            final String source = text.substring(at + "\r\nX-Source: ".length(), text.indexOf("\r\n", at + 2));
            assertTrue(text.startsWith("Received: from load.test ([" + source + "])"), text);
        }
        for (final ChildRelay child : children)
        {
            if (child.isAlive())
            {
                // the log's client= is the client too (the killed A may not have flushed its log)
                assertTrue(child.stdout().contains(", client=[127.0.0."), child::output);
            }
        }

        // per-IP limits count the client (127.0.0.9), not HAProxy: MAX_CONNECTIONS_PER_IP on each relay at most
        final List<SmtpTestClient> held = new ArrayList<>();
        int refused = 0;
        try
        {
            for (int i = 0; i < 2 * MAX_CONNECTIONS_PER_IP + 2; i++)
            {
                final SmtpTestClient client = SmtpTestClient.connectFrom("127.0.0.9", front);
                held.add(client);
                if (client.greeting().code() == 421)
                {
                    assertTrue(client.greeting().last().contains("too many connections from your address"),
                        client.greeting()::toString);
                    refused++;
                }
            }
            try (SmtpTestClient other = SmtpTestClient.connectFrom("127.0.0.10", front))
            {
                other.greeting().expect(220);
            }
        }
        finally
        {
            for (final SmtpTestClient client : held)
            {
                client.close();
            }
        }
        assertEquals(2, refused, "two of " + held.size() + " connections from 127.0.0.9 over 2 x " +
            MAX_CONNECTIONS_PER_IP);
        System.out.printf("scale-out: %d acknowledged (%d before the kill, %d until A was back), lost 0, %d "
                + "duplicated, %d client transactions cut; connections %s%n", acked.size(), ackedAtKill,
            ackedAtRestart - ackedAtKill, duplicated.size(), interrupted.size(), greetings);
    }

    private Map<String, String> relayConfig(final String name, final int smtpPort, final int metricsPort)
    {
        return InProcessRelay.config(tmp.resolve(name).resolve("spool").toAbsolutePath(),
            "smtp.listen", "127.0.0.1:" + smtpPort,
            "smtp.hostname", "relay-" + name + ".test",
            "smtp.io_threads", "1",
            "smtp.proxy_protocol", "true",
            "smtp.max_connections_per_ip", String.valueOf(MAX_CONNECTIONS_PER_IP),
            "smtp.limits_exempt_relay_networks", "false",
            "smtp.rate.connections_per_minute", "0",
            "smtp.rate.messages_per_minute", "0",
            "smtp.drain_timeout", "2s",
            "metrics.listen", "127.0.0.1:" + metricsPort,
            "delivery.routes", "*=[127.0.0.1]:" + sink.port(),
            "delivery.retry.schedule", "1s",
            "delivery.io_threads", "1",
            "delivery.max_connections_per_hop", String.valueOf(DELIVERY_CONNECTIONS_PER_HOP),
            "delivery.timeout.connect", "1s");
    }

    /** HAProxy's server line: the relay's SMTP port with the PROXY v2 header, its /health port for checks. */
    private static String server(final String name, final Map<String, String> config)
    {
        return String.format("    server %s %s send-proxy-v2 check port %s inter 200ms fall 2 rise 2", name,
            config.get("smtp.listen"), config.get("metrics.listen").substring("127.0.0.1:".length()));
    }

    private ChildRelay start(final String name, final Map<String, String> config) throws IOException
    {
        final Path dir = tmp.resolve(name);
        java.nio.file.Files.createDirectories(dir);
        final ChildRelay child = ChildRelay.start(dir, config);
        children.add(child);
        return child;
    }

    private void awaitState(final String server, final String state)
    {
        Await.until(() -> state.equals(state(server)), Duration.ofSeconds(20),
            () -> "HAProxy sees " + server + " " + state + ", not " + state(server) + "\n" + haproxy.log());
    }

    private String state(final String server)
    {
        try
        {
            return haproxy.serverStates("relays").get(server);
        }
        catch (final IOException | InterruptedException ex)
        {
            return ex.toString();
        }
    }

    private void awaitAcked(final int count, final String when)
    {
        Await.until(() -> acked.size() >= count || !problems.isEmpty(), Duration.ofSeconds(30),
            () -> acked.size() + " of " + count + " acknowledged " + when);
        assertTrue(problems.isEmpty(), () -> "load problems " + when + ": " + problems);
    }

    private int greeted(final String inPhase, final String relay)
    {
        final AtomicInteger count = greetings.get(inPhase + ":" + relay);
        return count == null ? 0 : count.get();
    }

    /**
     * One client from {@code source}: connections of {@value #MESSAGES_PER_CONNECTION} messages through HAProxy
     * until stopped. A transaction cut without a 250 (the relay was killed) is counted and sent again on the next
     * connection, as a real client retries.
     */
    private void load(final String source, final int port)
    {
        String retry = null;
        while (!stopLoad)
        {
            String inFlight = null;
            try (SmtpTestClient client = SmtpTestClient.connectFrom(source, port))
            {
                final String relay = client.greeting().last().contains("relay-a.test") ? "a" : "b";
                final String connectedIn = phase;
                client.greeting().expect(220);
                greetings.computeIfAbsent(connectedIn + ":" + relay, ignored -> new AtomicInteger()).incrementAndGet();
                client.command("EHLO load.test").expect(250);
                for (int i = 0; i < MESSAGES_PER_CONNECTION && !stopLoad; i++)
                {
                    inFlight = retry != null ? retry : "m" + nextId.incrementAndGet() + "@client.test";
                    retry = null;
                    final byte[] body = ("Message-ID: <" + inFlight + ">\r\nX-Source: " + source + "\r\n\r\nbody\r\n")
                        .getBytes(StandardCharsets.US_ASCII);
                    client.sendMessage("load@client.test", List.of("r@dest.test"), body);
                    acked.add(inFlight);
                    inFlight = null;
                }
                client.command("QUIT").expect(221);
            }
            catch (final IOException cut)
            {
                if (inFlight != null)
                {
                    interrupted.add(inFlight);
                    retry = inFlight;
                }
            }
            catch (final RuntimeException | AssertionError ex)
            {
                problems.add(source + ": " + ex);
                return;
            }
        }
    }

    private void stopLoad() throws InterruptedException
    {
        stopLoad = true;
        for (final Thread client : clients)
        {
            client.join(20_000);
            assertTrue(!client.isAlive(), client.getName() + " ended");
        }
        clients.clear();
    }

    /** Message-ID to how many times the sink got it. */
    private Map<String, Integer> delivered()
    {
        final Map<String, Integer> seen = new HashMap<>();
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
