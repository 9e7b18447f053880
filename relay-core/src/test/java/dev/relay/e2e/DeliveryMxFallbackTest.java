package dev.relay.e2e;

import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestDnsServer;
import dev.relay.Relay;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every delivery attempt walks the MX list (as Postfix's smtp does), whatever the back-off state: a host that
 * refuses, or refuses its greeting, is backed off on its own and the next MX host is used at once; only when every
 * address is backed off is the mail deferred, and then the hosts are probed again one by one.
 * <p>
 * The zone lives in {@link TestDnsServer}; MX hosts differ by loopback address (127.0.0.11, .12, .13) and share
 * {@code delivery.smtp_port}, the port of the first {@link TestSmtpSink} started. A "refusing" host is one of those
 * addresses with no sink on it (or a stopped sink): the connect gets RST at once.
 */
@Timeout(60)
class DeliveryMxFallbackTest
{
    private static final Duration WAIT = Duration.ofSeconds(20);
    /** "At once": a connect refused on loopback takes microseconds; generous for a loaded 2-core machine. */
    private static final Duration FALLBACK_BUDGET = Duration.ofSeconds(10);
    private static final String SENDER = "alice@client.test";
    private static final String IP1 = "127.0.0.11";
    private static final String IP2 = "127.0.0.12";
    private static final String IP3 = "127.0.0.13";

    @TempDir
    Path spool;

    private TestDnsServer dns;
    private E2e.DeliveryLogCapture log;
    private final List<TestSmtpSink> sinks = new ArrayList<>();
    private int port;
    private Relay relay;

    @BeforeEach
    void setUp() throws Exception
    {
        dns = new TestDnsServer();
        log = new E2e.DeliveryLogCapture();
    }

    @AfterEach
    void closeAll()
    {
        try
        {
            Await.closeQuietly(relay);
        }
        finally
        {
            try
            {
                for (final TestSmtpSink sink : sinks)
                {
                    Await.closeQuietly(sink);
                }
            }
            finally
            {
                Await.closeQuietly(dns);
                Await.closeQuietly(log);
            }
        }
    }

    @Test
    void preferredMxRefusedOneMessageGoesToTheBackup() throws Exception
    {
        final TestSmtpSink backup = sink(IP2);
        dns.addMx("fallback.test", 10, "mx1.fallback.test").addA("mx1.fallback.test", IP1)
            .addMx("fallback.test", 20, "mx2.fallback.test").addA("mx2.fallback.test", IP2);
        startRelay();

        final long start = System.nanoTime();
        final String queueId = send("bob@fallback.test", "one", 1).get(0);
        backup.awaitMessages(1, FALLBACK_BUDGET);
        final long ms = (System.nanoTime() - start) / 1_000_000;
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertTrue(log.any(queueId, "relay=mx2.fallback.test[" + IP2 + "]:" + port, "status=sent"), this::state);
        assertTrue(log.any("connect to mx1.fallback.test[" + IP1 + "]:" + port), this::state);
        assertEquals(0, relay.metrics().messagesDeferred(), this::state);
        System.out.printf("MX-FALLBACK one message: delivered to the backup %d ms after the send%n", ms);
    }

    @Test
    void preferredMxRefusedBurstOf100AllGoToTheBackup() throws Exception
    {
        final TestSmtpSink backup = sink(IP2);
        dns.addMx("burst.test", 10, "mx1.burst.test").addA("mx1.burst.test", IP1)
            .addMx("burst.test", 20, "mx2.burst.test").addA("mx2.burst.test", IP2);
        startRelay();

        final int count = 100;
        final long start = System.nanoTime();
        send("bob@burst.test", "burst", count);
        final long sentMs = (System.nanoTime() - start) / 1_000_000;
        Await.until("100 messages at the backup", FALLBACK_BUDGET, () -> backup.messageCount() >= count, this::state);
        final long ms = (System.nanoTime() - start) / 1_000_000;
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertExactlyOnce(count, "burst", backup);
        assertEquals(0, relay.metrics().messagesDeferred(), () -> "no message waited for a retry; " + state());
        assertTrue(log.any("relay=mx2.burst.test[" + IP2 + "]:" + port, "status=sent"), this::state);
        System.out.printf("MX-FALLBACK burst of %d: sent in %d ms, all at the backup %d ms after the first send%n",
            count, sentMs, ms);
    }

    @Test
    void allMxDownThenTheLeastPreferredComesBack() throws Exception
    {
        final TestSmtpSink last = allDown("down.test");
        final String queueId = send("bob@down.test", "down", 1).get(0);
        // the first attempt tries all three; after the back-offs the probes must reach the last host again too
        Await.until("the last MX tried twice", WAIT, () -> connectFailures("down.test", "mx3") >= 2, this::state);
        assertEquals(1, relay.queuedMessages(), this::state);
        assertEquals(0, relay.metrics().messagesBounced(), this::state);

        // back; no flush: delivered when its back-off ends
        last.restart();
        final long backAt = System.nanoTime();
        last.awaitMessages(1, WAIT);
        final long ms = (System.nanoTime() - backAt) / 1_000_000;
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertExactlyOnce(1, "down", last);
        assertTrue(log.any(queueId, "relay=mx3.down.test[" + IP3 + "]:" + port, "status=sent"), this::state);
        assertEveryHostTried("down.test");
        assertTrue(log.any(queueId, "status=deferred", "connect to mx"), this::state);
        System.out.printf("MX-FALLBACK all down: delivered to the last MX %d ms after it came back (no flush)%n", ms);
    }

    @Test
    void allMxDownThenTheLeastPreferredComesBackAndAFlushWalksTheList() throws Exception
    {
        final TestSmtpSink last = allDown("flush.test");
        send("bob@flush.test", "flush", 1);
        // let the back-offs grow (2 s after the second failure): a flush must not wait for them
        Await.until("the last MX tried twice", WAIT, () -> connectFailures("flush.test", "mx3") >= 2, this::state);
        last.restart();
        final long backAt = System.nanoTime();
        relay.flush();
        last.awaitMessages(1, WAIT);
        final long ms = (System.nanoTime() - backAt) / 1_000_000;
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertExactlyOnce(1, "flush", last);
        assertEveryHostTried("flush.test");
        System.out.printf("MX-FALLBACK all down: delivered to the last MX %d ms after it came back (flush)%n", ms);
    }

    @Test
    void greeting421AtThePreferredMxMovesOnToTheNext() throws Exception
    {
        final TestSmtpSink busy = sink(IP1).greeting("421 4.3.2 mx1 too busy, try another MX");
        final TestSmtpSink next = sink(IP2);
        dns.addMx("busy.test", 10, "mx1.busy.test").addA("mx1.busy.test", IP1)
            .addMx("busy.test", 20, "mx2.busy.test").addA("mx2.busy.test", IP2);
        startRelay();

        final int count = 20;
        final long start = System.nanoTime();
        send("bob@busy.test", "busy", count);
        Await.until("20 messages at the second MX", FALLBACK_BUDGET, () -> next.messageCount() >= count, this::state);
        final long ms = (System.nanoTime() - start) / 1_000_000;
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertExactlyOnce(count, "busy", next);
        assertEquals(0, busy.messageCount(), this::state);
        assertTrue(busy.connectionsAccepted() >= 1, "the preferred MX was tried; " + state());
        assertEquals(0, relay.metrics().messagesDeferred(), this::state);
        assertTrue(log.any("relay=mx2.busy.test[" + IP2 + "]:" + port, "status=sent"), this::state);
        System.out.printf("MX-FALLBACK 421 greeting: %d messages at the second MX %d ms after the first send,"
            + " %d connections to the first%n", count, ms, busy.connectionsAccepted());
    }

    @Test
    void equalPreferencesShareTheMail() throws Exception
    {
        final TestSmtpSink a = sink(IP1);
        final TestSmtpSink b = sink(IP2);
        dns.addMx("equal.test", 10, "mxa.equal.test").addA("mxa.equal.test", IP1)
            .addMx("equal.test", 10, "mxb.equal.test").addA("mxb.equal.test", IP2);
        // short-lived connections, so even one at a time the pool reconnects often
        startRelay("delivery.max_messages_per_connection", "5");

        final int count = 100;
        send("bob@equal.test", "equal", count);
        Await.until("100 messages delivered", WAIT, () -> a.messageCount() + b.messageCount() >= count, this::state);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertExactlyOnce(count, "equal", a, b);
        assertTrue(a.messageCount() >= count / 10 && b.messageCount() >= count / 10,
            "both hosts get a share: " + a.messageCount() + " / " + b.messageCount());
        System.out.printf("MX-FALLBACK equal preferences: %d / %d messages, %d / %d connections%n",
            a.messageCount(), b.messageCount(), a.connectionsAccepted(), b.connectionsAccepted());
    }

    @Test
    void mxHostsWithoutAddressesAreSkipped() throws Exception
    {
        final TestSmtpSink third = sink(IP3);
        dns.addMx("partial.test", 10, "gone.partial.test")            // NXDOMAIN
            .addMx("partial.test", 20, "bare.partial.test").exists("bare.partial.test") // no A, no AAAA
            .addMx("partial.test", 30, "mx3.partial.test").addA("mx3.partial.test", IP3);
        startRelay();

        final String queueId = send("bob@partial.test", "partial", 1).get(0);
        third.awaitMessages(1, FALLBACK_BUDGET);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertTrue(log.any(queueId, "relay=mx3.partial.test[" + IP3 + "]:" + port, "status=sent"), this::state);
        assertEquals(0, relay.metrics().messagesDeferred(), this::state);
    }

    @Test
    void mxHostsAllWithoutAddressesDeferWith443() throws Exception
    {
        sink(IP1); // fixes delivery.smtp_port; nothing is delivered
        dns.addMx("bare.test", 10, "mx1.bare.test").exists("mx1.bare.test")
            .addMx("bare.test", 20, "mx2.bare.test");
        startRelay();

        final String queueId = send("bob@bare.test", "bare", 1).get(0);
        Await.until("a 4.4.3 deferral", WAIT,
            () -> log.any(queueId, "to=<bob@bare.test>", "relay=none", "dsn=4.4.3", "status=deferred"), this::state);
        assertEquals(1, relay.queuedMessages(), this::state);
        assertEquals(0, relay.metrics().messagesBounced(), this::state);
    }

    // ---- helpers ----

    /** Three MX hosts, none listening; the last one's sink is started and stopped (restart() brings it back). */
    private TestSmtpSink allDown(final String domain) throws Exception
    {
        final TestSmtpSink last = sink(IP3);
        last.stop();
        dns.addMx(domain, 10, "mx1." + domain).addA("mx1." + domain, IP1)
            .addMx(domain, 20, "mx2." + domain).addA("mx2." + domain, IP2)
            .addMx(domain, 30, "mx3." + domain).addA("mx3." + domain, IP3);
        startRelay();
        return last;
    }

    private void assertEveryHostTried(final String domain)
    {
        assertTrue(log.any("connect to mx1." + domain + "[" + IP1 + "]:" + port), this::state);
        assertTrue(log.any("connect to mx2." + domain + "[" + IP2 + "]:" + port), this::state);
        assertTrue(log.any("connect to mx3." + domain + "[" + IP3 + "]:" + port), this::state);
    }

    /** Failed connects to {@code host.domain} the delivery log reported (one line each, not the deferrals). */
    private long connectFailures(final String domain, final String host)
    {
        final String line = domain + ":" + port + ": connect to " + host + "." + domain + "[";
        return log.lines().stream().filter(text -> text.startsWith(line)).count();
    }

    /** A sink on {@code ip}; the first one picks the port every MX host shares. */
    private TestSmtpSink sink(final String ip) throws IOException
    {
        final TestSmtpSink sink = TestSmtpSink.start(InetAddress.getByName(ip), port);
        port = sink.port();
        sinks.add(sink);
        return sink;
    }

    private void startRelay(final String... extra) throws Exception
    {
        final List<String> keyValues = new ArrayList<>(List.of(
            "delivery.dns.servers", "127.0.0.1:" + dns.address().getPort(),
            "delivery.smtp_port", Integer.toString(port)));
        keyValues.addAll(List.of(extra));
        relay = E2e.start(E2e.config(spool, keyValues.toArray(new String[0])));
    }

    /** Sends {@code count} messages on one connection; Message-IDs {@code id-0@client.test}, ...; queue ids back. */
    private List<String> send(final String to, final String id, final int count) throws Exception
    {
        final List<String> queueIds = new ArrayList<>();
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            for (int i = 0; i < count; i++)
            {
                queueIds.add(client.send(SENDER, List.of(to), E2e.message(SENDER, to, id + "-" + i)));
            }
        }
        return queueIds;
    }

    /** Lost 0, duplicated 0: every {@code id-i} arrived exactly once across {@code at}. */
    private void assertExactlyOnce(final int count, final String id, final TestSmtpSink... at)
    {
        final Set<String> seen = new HashSet<>();
        int duplicated = 0;
        for (final TestSmtpSink sink : at)
        {
            for (final TestSmtpSink.Received received : sink.messages())
            {
                duplicated += seen.add(E2e.messageId(received.content())) ? 0 : 1;
            }
        }
        int lost = 0;
        for (int i = 0; i < count; i++)
        {
            lost += seen.contains(id + "-" + i + "@client.test") ? 0 : 1;
        }
        assertEquals(0, lost, () -> "lost; " + state());
        assertEquals(0, duplicated, () -> "duplicated; " + state());
        assertEquals(count, seen.size(), this::state);
    }

    private String state()
    {
        final StringBuilder sinkState = new StringBuilder();
        for (final TestSmtpSink sink : sinks)
        {
            sinkState.append(sink.address().getHostAddress()).append(": connections ")
                .append(sink.connectionsAccepted()).append(", messages ").append(sink.messageCount()).append("; ");
        }
        final List<String> lines = log.lines();
        return "queued " + relay.queuedMessages() + ", delivered " + relay.metrics().messagesDelivered() +
            ", deferred " + relay.metrics().messagesDeferred() + ", bounced " + relay.metrics().messagesBounced() +
            "; " + sinkState + "log (last 40 of " + lines.size() + ") " +
            lines.subList(Math.max(0, lines.size() - 40), lines.size());
    }
}
