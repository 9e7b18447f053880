package dev.relay.hardening;

import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestDnsServer;
import dev.relay.Relay;
import dev.relay.testing.TestSmtpSink;
import dev.relay.testing.TestSmtpSink.Fault;
import dev.relay.testing.TestSmtpSink.Step;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.IntSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Broken peers on the delivery side. Each case: the destination of {@code bad.test} misbehaves; a message to it is
 * deferred (never bounced, still queued); while it misbehaves a normal inbound transaction to the relay completes
 * within 5 s and mail to a healthy destination ({@code ok.test}) is delivered; over a 3 s window the bad peer sees
 * only a handful of connection attempts (lookups, for DNS faults); once fixed (and {@code relay.flush()}) the message
 * arrives exactly once.
 * <p>
 * Timeouts are 1 s and the retry schedule 200 ms (short on purpose: what stops a reconnect storm must be the
 * relay's per-hop back-off, not a long retry schedule).
 */
@Timeout(60)
class HardeningPeersTest
{
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final Duration WINDOW = Duration.ofSeconds(3);
    private static final int MAX_ATTEMPTS_IN_WINDOW = 5;
    private static final String SENDER = "alice@client.test";

    @TempDir
    Path spool;

    private TestSmtpSink bad;
    private TestSmtpSink good;
    private TestDnsServer dns;
    private Relay relay;

    @BeforeEach
    void sinks() throws Exception
    {
        bad = TestSmtpSink.start();
        good = TestSmtpSink.start();
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
                Await.closeQuietly(bad);
                Await.closeQuietly(good);
            }
            finally
            {
                Await.closeQuietly(dns);
            }
        }
    }

    // ---- the cases ----

    @Test
    void acceptsTcpAndNeverGreets() throws Exception
    {
        smtpFault(Step.CONNECT, Fault.SILENT);
    }

    @Test
    void greetsThenStallsAtRcpt() throws Exception
    {
        smtpFault(Step.RCPT, Fault.SILENT);
    }

    @Test
    void greetsThenStallsAtEndOfData() throws Exception
    {
        smtpFault(Step.DATA_END, Fault.SILENT);
    }

    @Test
    void garbageInsteadOfGreeting() throws Exception
    {
        smtpFault(Step.CONNECT, Fault.GARBAGE);
    }

    @Test
    void garbageInsteadOfMailReply() throws Exception
    {
        smtpFault(Step.MAIL, Fault.GARBAGE);
    }

    @Test
    void oneMebibyteReplyLineToEhlo() throws Exception
    {
        smtpFault(Step.EHLO, Fault.HUGE_LINE);
    }

    @Test
    void dropsTheConnectionAfterData() throws Exception
    {
        smtpFault(Step.DATA_END, Fault.DROP);
    }

    @Test
    void answers421AndClosesAtMail() throws Exception
    {
        smtpFault(Step.MAIL, Fault.CLOSE_421);
    }

    @Test
    void dnsServerTimesOut() throws Exception
    {
        dnsFault(false);
    }

    @Test
    void dnsServerAnswersGarbage() throws Exception
    {
        dnsFault(true);
    }

    // ---- the scenario ----

    private void smtpFault(final Step step, final Fault fault) throws Exception
    {
        bad.fault(step, fault);
        relay = Hardening.start(Hardening.config(spool, "delivery.routes",
            "bad.test=127.0.0.1:" + bad.port() + ",ok.test=127.0.0.1:" + good.port()));
        scenario(step + "/" + fault, bad::connectionsAccepted, () -> bad.fault(step, Fault.NONE));
    }

    private void dnsFault(final boolean garbage) throws Exception
    {
        dns = new TestDnsServer();
        dns.addMx("bad.test", 10, "mx.bad.test").addA("mx.bad.test", "127.0.0.1");
        if (garbage)
        {
            dns.garbage("bad.test");
        }
        else
        {
            dns.delay("bad.test", 60_000); // longer than the relay's whole-lookup budget
        }
        relay = Hardening.start(Hardening.config(spool,
            "delivery.routes", "ok.test=127.0.0.1:" + good.port(),
            "delivery.dns.servers", "127.0.0.1:" + dns.address().getPort(),
            "delivery.smtp_port", Integer.toString(bad.port())));
        scenario(garbage ? "DNS garbage" : "DNS timeout", () -> dns.queries("bad.test"), () -> dns.heal("bad.test"));
    }

    private void scenario(final String name, final IntSupplier attempts, final Runnable fix) throws Exception
    {
        final String queueId = send("bob@bad.test", name.replace('/', '-').replace(' ', '-'));

        Await.until("a deferral", WAIT, () -> relay.metrics().messagesDeferred() >= 1, this::state);
        assertEquals(0, bad.messageCount(), this::state);
        assertEquals(0, relay.metrics().messagesBounced(), this::state);
        assertEquals(1, relay.queuedMessages(), this::state);

        // the relay's loops stay responsive: inbound accepts, delivery to a healthy hop goes on
        final long sendStart = System.nanoTime();
        send("carol@ok.test", "healthy");
        final long sendMs = (System.nanoTime() - sendStart) / 1_000_000;
        assertTrue(sendMs < 5_000, "inbound transaction took " + sendMs + " ms");
        good.awaitMessages(1, WAIT);

        // the hop is backed off: no reconnect storm
        final long deferredBefore = relay.metrics().messagesDeferred();
        final int before = attempts.getAsInt();
        Hardening.window(WINDOW);
        final int inWindow = attempts.getAsInt() - before;
        final long deferredInWindow = relay.metrics().messagesDeferred() - deferredBefore;
        assertTrue(inWindow <= MAX_ATTEMPTS_IN_WINDOW, inWindow + " attempts in " + WINDOW + "; " + state());
        assertEquals(0, bad.messageCount(), this::state);
        assertEquals(0, relay.metrics().messagesBounced(), this::state);
        assertEquals(1, relay.queuedMessages(), this::state);

        // fixed: delivered exactly once
        fix.run();
        final long fixedAt = System.nanoTime();
        relay.flush();
        final TestSmtpSink.Received got = bad.awaitMessages(1, WAIT).get(0);
        final long resumeMs = (System.nanoTime() - fixedAt) / 1_000_000;
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
        assertEquals(List.of("bob@bad.test"), got.recipients());
        assertEquals(name.replace('/', '-').replace(' ', '-') + "@client.test", Hardening.messageId(got.content()));
        // anything still in flight would have arrived by now (the pool's idle connections are the only ones left)
        Hardening.window(Duration.ofMillis(500));
        assertEquals(1, bad.messageCount(), () -> "exactly once: " + bad.messages());
        assertEquals(0, relay.metrics().messagesBounced(), this::state);
        System.out.printf("HARDENING %-22s queue id %s: deferred %d (%d in window), attempts in %ds window %d,"
                + " inbound send %d ms, resumed %d ms after the fix%n", name, queueId,
            relay.metrics().messagesDeferred(), deferredInWindow, WINDOW.toSeconds(), inWindow, sendMs, resumeMs);
    }

    private String send(final String to, final String id) throws Exception
    {
        try (BlockingSmtpClient client = new BlockingSmtpClient(relay.smtpAddresses().get(0), Duration.ofSeconds(5)))
        {
            return client.send(SENDER, List.of(to), Hardening.message(SENDER, to, id));
        }
    }

    private String state()
    {
        return "queued " + relay.queuedMessages() + ", delivered " + relay.metrics().messagesDelivered() +
            ", deferred " + relay.metrics().messagesDeferred() + ", bounced " + relay.metrics().messagesBounced() +
            ", bad sink: connections " + bad.connectionsAccepted() + ", messages " + bad.messageCount() +
            (dns == null ? "" : ", dns queries " + dns.queries("bad.test"));
    }
}
