package dev.relay.e2e;

import dev.relay.Relay;
import dev.relay.e2e.StallingSmtpPeer.Mode;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A stalled outbound session never stalls mail (RFC 5321 §4.5.3.2 client timeouts, through the real loop's timer,
 * not by calling onTimeout by hand): a destination that stops answering at each step, stops reading in the middle
 * of a body, reads at a trickle, or answers 552 mid-body and hangs up. Each time the recipients are deferred (or,
 * for the 552, bounced) with the reason in the log line, the connection is closed and its pool slot freed (one
 * connection per hop here: the next message needs that slot), and other mail to the same hop is not held back by
 * one big message.
 */
@Timeout(60)
class DeliveryStalledPeerTest
{
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final String SENDER = "alice@client.test";

    @TempDir
    Path spool;

    private StallingSmtpPeer peer;
    private TestSmtpSink senderSink;
    private Relay relay;
    private E2e.DeliveryLogCapture log;

    @BeforeEach
    void capture() throws Exception
    {
        log = new E2e.DeliveryLogCapture();
        senderSink = TestSmtpSink.start();
    }

    @AfterEach
    void closeAll() throws Exception
    {
        try
        {
            Await.closeQuietly(relay);
        }
        finally
        {
            Await.closeQuietly(peer);
            Await.closeQuietly(senderSink);
            log.close();
        }
    }

    private void start(final Mode mode, final String... timeouts) throws Exception
    {
        peer = StallingSmtpPeer.start(mode);
        final String[] base = {
            "delivery.routes", "client.test=127.0.0.1:" + senderSink.port() + ",*=127.0.0.1:" + peer.port(),
            "delivery.max_connections_per_hop", "1",
            "delivery.retry.schedule", "1h",
            "delivery.timeout.command", "1s",
            "delivery.timeout.data_init", "1s",
            "delivery.timeout.data_block", "1s",
            "delivery.timeout.data_done", "1s"};
        final String[] all = new String[base.length + timeouts.length];
        System.arraycopy(base, 0, all, 0, base.length);
        System.arraycopy(timeouts, 0, all, base.length, timeouts.length);
        relay = E2e.start(E2e.config(spool, all));
    }

    @ParameterizedTest
    @EnumSource(value = Mode.class, names = {
        "SILENT_AT_GREETING", "SILENT_AT_EHLO", "SILENT_AT_MAIL", "SILENT_AT_RCPT", "SILENT_AT_DATA",
        "SILENT_AT_DATA_END"})
    void aPeerThatStopsAnsweringIsTimedOutAndItsSlotFreed(final Mode mode) throws Exception
    {
        start(mode);
        send("stall-" + mode, E2e.message(SENDER, "bob@dest.test", "stall-" + mode));

        // before the session is ready the hop's queue is deferred (4.4.1, "connect to ...: timeout waiting for
        // the greeting"); after, the transaction (4.4.2 "timeout after RCPT")
        Await.until("the timeout's deferral", WAIT,
            () -> log.any("to=<bob@dest.test>", "dsn=4.4.", "status=deferred (", "timeout"), this::state);
        Await.until("the relay to hang up", WAIT, () -> peer.closedByRelay() >= 1, this::state);

        // the one slot of the hop is free again: the retry gets a connection and goes through
        peer.mode(Mode.NORMAL);
        relay.flush();
        Await.until("delivery after the peer recovers", WAIT, () -> peer.messages() == 1 && relay.queuedMessages() == 0,
            this::state);
        assertEquals(List.of("stall-" + mode), peer.messageIds());
    }

    @Test
    void aPeerThatStopsReadingMidBodyIsTimedOutAndOtherMailToItIsNotHeldBack() throws Exception
    {
        start(Mode.STOP_READING_IN_BODY);
        peer.stall(4_000);
        final long started = System.nanoTime();
        send("big-stalled", big("big-stalled", 8 << 20));

        Await.until("the data block timeout", WAIT,
            () -> log.any("dsn=4.4.2", "status=deferred (", "timeout while sending the message body"), this::state);
        final long tookMs = (System.nanoTime() - started) / 1_000_000;
        assertTrue(tookMs < 4_000, "deferred after " + tookMs + " ms: the 1 s timeout, restarted by progress");

        // a small message to the same hop right away: the hop is not backed off for one big message
        peer.mode(Mode.NORMAL);
        send("small-after", E2e.message(SENDER, "carol@dest.test", "small-after"));
        Await.until("the small message", WAIT, () -> peer.messageIds().contains("small-after"), this::state);
        assertFalse(log.any("delivery temporarily suspended"), this::state);
        Await.until("the stalled connection closed", WAIT, () -> peer.closedByRelay() >= 1, this::state);

        relay.flush();
        Await.until("the big one on retry", WAIT, () -> peer.messages() == 2 && relay.queuedMessages() == 0,
            this::state);
    }

    @Test
    void aPeerThatReadsAtATrickleIsCutOffByTheTransferLimit() throws Exception
    {
        // 16 MiB at 1 MiB/s would take 16 s; the limit is 4 s + 1 s + 16 MiB / 100 MiB/s
        start(Mode.TRICKLE_BODY, "delivery.timeout.data_block", "4s", "delivery.min_data_rate", "100m");
        peer.trickle(1 << 20);
        final long started = System.nanoTime();
        send("trickled", big("trickled", 16 << 20));

        Await.until("the transfer limit", WAIT,
            () -> log.any("dsn=4.4.2", "status=deferred (", "message transfer of", "minimum data rate"), this::state);
        final long tookMs = (System.nanoTime() - started) / 1_000_000;
        assertTrue(tookMs < 12_000, "cut off after " + tookMs + " ms");
        assertTrue(peer.bodyBytesRead() < 16 << 20, "the peer read it all: " + peer.bodyBytesRead());
        assertEquals(0, peer.messages());
    }

    @Test
    void anEarly552AndCloseIsHeardAtOnceAndBouncesOnlyThatMessage() throws Exception
    {
        start(Mode.EARLY_552, "delivery.timeout.data_block", "30s", "delivery.timeout.data_done", "30s");
        final long started = System.nanoTime();
        send("too-big", big("too-big", 8 << 20));

        Await.until("the bounce", WAIT,
            () -> log.any("to=<bob@dest.test>", "dsn=5.3.4", "status=bounced (552 5.3.4 message too big"),
            this::state);
        final long tookMs = (System.nanoTime() - started) / 1_000_000;
        assertTrue(tookMs < 5_000, "heard after " + tookMs + " ms, the timeouts are 30 s");
        senderSink.awaitMessages(1, WAIT);
        assertTrue(senderSink.messages().get(0).text().contains("552 5.3.4"), "the DSN names the reply");

        // the hop is healthy: a small message goes straight through on a new connection
        send("small", E2e.message(SENDER, "carol@dest.test", "small"));
        Await.until("the small message", WAIT, () -> peer.messageIds().contains("small"), this::state);
        assertFalse(log.any("delivery temporarily suspended"), this::state);
        Await.until("queue empty", WAIT, () -> relay.queuedMessages() == 0, this::state);
    }

    private void send(final String id, final byte[] body) throws Exception
    {
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            final String to = id.startsWith("small") ? "carol@dest.test" : "bob@dest.test";
            client.send(SENDER, List.of(to), body);
        }
    }

    /** A message of about {@code size} bytes in wire form with a Message-ID the peer records. */
    private static byte[] big(final String id, final int size)
    {
        final StringBuilder text = new StringBuilder(size + 200)
            .append("From: <").append(SENDER).append(">\r\nTo: <bob@dest.test>\r\nSubject: ").append(id)
            .append("\r\nMessage-ID: <").append(id).append("@client.test>\r\n\r\n");
        final String line = "y".repeat(76) + "\r\n";
        while (text.length() < size)
        {
            text.append(line);
        }
        return text.toString().getBytes(StandardCharsets.US_ASCII);
    }

    private String state()
    {
        return "peer: connections " + peer.connections() + ", closed by relay " + peer.closedByRelay() +
            ", messages " + peer.messages() + " " + peer.messageIds() + ", body bytes read " + peer.bodyBytesRead() +
            "; relay: deferred " + relay.metrics().messagesDeferred() + ", bounced " +
            relay.metrics().messagesBounced() + ", queued " + relay.queuedMessages() + "; log " + log.lines();
    }
}
