package dev.relay.net;

import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import javax.net.ssl.SSLEngine;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static dev.relay.net.LoopUnderTest.WRITE_BUFFER_BYTES;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The loop's promises over TLS ({@link Connection#startTls}), checked like {@link LoopContractTest}: the same
 * scenario against {@link SelectorLoop} over loopback sockets and against {@link LoopDouble}, with a real JDK
 * engine at both ends (test certificates). A handler sees plaintext in, writes plaintext out, and its drained
 * notices, timeouts and close behave as without TLS; the handshake has its own deadline; what the peer pipelined
 * before the handshake is never offered; a failed handshake ends in {@code onTlsFailed} then {@code onClose}.
 * About 10 s.
 */
@Timeout(120)
class LoopTlsContractTest
{
    private static final long STREAM_BYTES = 4L << 20;
    private static final long STALLED_STREAM_BYTES = 8L << 20;
    private static final long HANDSHAKE_MS = 10_000;

    static Stream<Arguments> loops()
    {
        return LoopContractTest.loops();
    }

    static Stream<Arguments> loopsBothWays()
    {
        return LoopContractTest.loopsBothWays();
    }

    /** The loop side's engine: the server for an inbound connection, the client for an outbound one (JDK here). */
    SSLEngine loopEngine(final LoopContractTest.Direction direction)
    {
        return direction == LoopContractTest.Direction.INBOUND ?
            TestCertificates.get().serverEngine(TestCertificates.KeyType.EC) : TestCertificates.get().clientEngine();
    }

    private static SSLEngine farEngine(final LoopContractTest.Direction direction)
    {
        return direction == LoopContractTest.Direction.INBOUND ?
            TestCertificates.get().clientEngine() : TestCertificates.get().serverEngine(TestCertificates.KeyType.EC);
    }

    private static LoopUnderTest.Far open(
        final LoopUnderTest loop, final LoopContractTest.Direction direction, final ScriptedHandler handler,
        final boolean peerReads)
    {
        return direction == LoopContractTest.Direction.INBOUND ? loop.inbound(handler, peerReads) :
            loop.outbound(handler, peerReads);
    }

    /**
     * Opens a connection and runs the handshake: inbound, the loop's side starts TLS in {@code onOpen} (implicit
     * TLS); outbound, once the far end (the server) is ready for the client's first flight.
     */
    private LoopUnderTest.Far openTls(
        final LoopUnderTest loop, final LoopContractTest.Direction direction, final ScriptedHandler handler)
    {
        final LoopUnderTest.Far far;
        if (direction == LoopContractTest.Direction.INBOUND)
        {
            final ScriptedHandler.Step then = handler.onOpen;
            handler.onOpen = h ->
            {
                h.connection.startTls(loopEngine(direction), HANDSHAKE_MS);
                then.run(h);
            };
            far = open(loop, direction, handler, true);
            far.startTls(farEngine(direction));
        }
        else
        {
            far = open(loop, direction, handler, true);
            far.startTls(farEngine(direction));
            loop.onLoop(() -> handler.connection.startTls(loopEngine(direction), HANDSHAKE_MS));
        }
        assertTrue(loop.await(() -> handler.has("tlsEstablished") && far.tls().isEstablished(), 10_000),
            handler.kinds() + " " + handler.details("tlsFailed") + " far " + far.tls().failure());
        return far;
    }

    private static void assertStream(final byte[] received, final long total)
    {
        assertEquals(total, received.length, "bytes received");
        for (int i = 0; i < received.length; i++)
        {
            if (received[i] != ScriptedHandler.pattern(i))
            {
                throw new AssertionError("byte " + i + " differs: lost, repeated or reordered output");
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void streamsMebibytesOfPlaintextThroughTlsAndClosesWithCloseNotify(
        final Supplier<LoopUnderTest> loops, final LoopContractTest.Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onTlsEstablished = h -> h.stream(STREAM_BYTES, true);
            final LoopUnderTest.Far far = openTls(loop, direction, handler);

            assertTrue(loop.await(() -> far.sawEnd() && handler.has("close"), 30_000), handler.kinds().toString());
            assertStream(far.received(), STREAM_BYTES);
            assertNull(handler.fillerProblem());
            assertTrue(far.tls().peerClosed(), "no close_notify before the end");
            assertEquals(1, handler.count("tlsEstablished"));
            assertTrue(handler.first("tlsEstablished").detail().startsWith("TLSv1.3 TLS_"),
                handler.first("tlsEstablished").detail());
            assertTrue(handler.count("drained") >= STREAM_BYTES / WRITE_BUFFER_BYTES - 1, "drained " +
                handler.count("drained"));
            final List<String> afterClosing = handler.kinds().subList(handler.indexOf("closeAfterFlush"),
                handler.kinds().size());
            assertFalse(afterClosing.contains("drained"), "onOutputDrained while closing");
            assertEquals(1, handler.count("close"));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("loops")
    void tls12WorksTheSameWay(final Supplier<LoopUnderTest> loops)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onOpen = h -> h.connection.startTls(loopEngine(LoopContractTest.Direction.INBOUND), HANDSHAKE_MS);
            handler.onInput = (h, offered) ->
            {
                h.connection.write(("echo " + offered).getBytes(StandardCharsets.ISO_8859_1));
                if (offered.contains("bye"))
                {
                    h.connection.closeAfterFlush();
                }
                return offered.length();
            };
            final LoopUnderTest.Far far = loop.inbound(handler, true);
            far.startTls(TestCertificates.get().clientEngine("TLSv1.2"));
            assertTrue(loop.await(() -> handler.has("tlsEstablished"), 10_000), handler.kinds().toString());
            assertTrue(handler.first("tlsEstablished").detail().startsWith("TLSv1.2 TLS_ECDHE_"),
                handler.first("tlsEstablished").detail());
            far.send("hello bye\n");
            assertTrue(loop.await(() -> far.sawEnd() && handler.has("close"), 5_000), handler.kinds().toString());
            assertEquals("echo hello bye\n", far.receivedText());
            assertTrue(far.tls().peerClosed(), "no close_notify");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void inputIsPlaintextAndUnconsumedInputIsOfferedAgainWithMore(
        final Supplier<LoopUnderTest> loops, final LoopContractTest.Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onInput = ScriptedHandler.CONSUME_LINES;
            final LoopUnderTest.Far far = openTls(loop, direction, handler);
            far.send("par");
            assertTrue(loop.await(() -> handler.count("input") == 1, 2_000), handler.kinds().toString());
            far.send("tial\nnext\n");
            assertTrue(loop.await(() -> handler.count("input") == 2, 2_000));
            loop.pause(200);
            assertEquals(List.of("par", "partial\nnext\n"), handler.details("input"));
            assertTrue(handler.indexOf("tlsEstablished") < handler.indexOf("input"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void plaintextPipelinedAfterStartTlsIsNeverOffered(
        final Supplier<LoopUnderTest> loops, final LoopContractTest.Direction direction)
    {
        final boolean inbound = direction == LoopContractTest.Direction.INBOUND;
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            final AtomicBoolean first = new AtomicBoolean(true);
            handler.onInput = (h, offered) ->
            {
                if (first.getAndSet(false))
                {
                    if (inbound)
                    {
                        h.connection.write("220 go ahead\r\n".getBytes(StandardCharsets.US_ASCII));
                    }
                    h.connection.startTls(loopEngine(direction), HANDSHAKE_MS);
                    h.record("started");
                    return offered.indexOf('\n') + 1;
                }
                return ScriptedHandler.CONSUME_LINES.consume(h, offered);
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            // CVE-2011-0411: a man in the middle appends a line to the one that starts TLS, in the same packet; a
            // server must not take it as the client's command, nor a client as the server's reply
            final String pipelined = inbound ? "STARTTLS\nMAIL FROM:<injected>\n" : "220 go ahead\n250 injected\n";
            far.send(pipelined);
            if (inbound)
            {
                assertTrue(loop.await(() -> far.receivedText().equals("220 go ahead\r\n"), 2_000),
                    far.receivedText());
            }
            far.startTls(farEngine(direction));
            assertTrue(loop.await(() -> handler.has("tlsEstablished"), 10_000), handler.kinds().toString());
            far.send("EHLO\n");
            assertTrue(loop.await(() -> handler.count("input") == 2, 2_000), handler.kinds().toString());
            loop.pause(200);
            assertEquals(List.of(pipelined, "EHLO\n"), handler.details("input"),
                "pipelined plaintext offered after STARTTLS");
            assertTrue(handler.indexOf("started") < handler.indexOf("tlsEstablished"));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("loops")
    void aHandshakeTrickledByteByByteFailsAtTheHandshakeTimeout(final Supplier<LoopUnderTest> loops)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onOpen = h ->
            {
                h.connection.idleTimeoutMs(300);
                h.connection.startTls(loopEngine(LoopContractTest.Direction.INBOUND), 700);
                h.record("started");
            };
            final LoopUnderTest.Far far = loop.inbound(handler, true);
            // a slowloris of the handshake: every byte moves, so only a deadline for the whole handshake ends it
            final byte[] clientHello = new TlsEndpoint(farEngine(LoopContractTest.Direction.INBOUND)).pump();
            for (int i = 0; i < clientHello.length && !handler.has("close"); i++)
            {
                far.sendRaw(new byte[]{clientHello[i]});
                loop.pause(50);
            }
            assertTrue(loop.await(() -> handler.has("close"), 3_000), handler.kinds().toString());
            assertEquals(List.of("handshake timeout"), handler.details("tlsFailed"));
            assertTrue(handler.indexOf("tlsFailed") < handler.indexOf("close"));
            assertFalse(handler.has("timeout"), "the idle timeout fired during the handshake");
            assertFalse(handler.has("input"));
            final long tookMs = handler.first("tlsFailed").nowMs() - handler.first("started").nowMs();
            assertTrue(tookMs >= 700 - loop.slackMs() && tookMs < 700 + 3_000, "failed after " + tookMs + " ms");
            assertTrue(loop.await(far::sawEnd, 2_000));
            assertEquals(1, handler.count("close"));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("loops")
    void aPeerThatDoesNotSpeakTlsFailsTheHandshakeAndIsClosed(final Supplier<LoopUnderTest> loops)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onOpen = h -> h.connection.startTls(loopEngine(LoopContractTest.Direction.INBOUND),
                HANDSHAKE_MS);
            final LoopUnderTest.Far far = loop.inbound(handler, true);
            far.send("EHLO plaintext.example\r\n");
            assertTrue(loop.await(() -> handler.has("close") && far.sawEnd(), 3_000), handler.kinds().toString());
            assertEquals(1, handler.count("tlsFailed"));
            assertFalse(handler.first("tlsFailed").detail().isEmpty());
            assertTrue(handler.indexOf("tlsFailed") < handler.indexOf("close"));
            assertFalse(handler.has("input"));
            loop.pause(200);
            assertEquals(1, handler.count("close"));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("loops")
    void aClientThatRefusesTheServersCertificateFailsTheHandshakeSayingWhy(final Supplier<LoopUnderTest> loops)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            final LoopUnderTest.Far far = loop.outbound(handler, true);
            // the far end serves a certificate for another host: the loop's client engine (checking relay.test)
            // refuses it after the server's whole flight, in a delegated task
            final TestCertificates certificates = TestCertificates.get();
            far.startTls(certificates.serverEngine(TestCertificates.KeyType.EC,
                certificates.wrongHost(TestCertificates.KeyType.EC)));
            loop.onLoop(() -> handler.connection.startTls(loopEngine(LoopContractTest.Direction.OUTBOUND),
                HANDSHAKE_MS));
            assertTrue(loop.await(() -> handler.has("close"), 5_000), handler.kinds().toString());
            assertEquals(1, handler.count("tlsFailed"));
            final String reason = handler.first("tlsFailed").detail();
            assertTrue(reason.toLowerCase(java.util.Locale.ROOT).contains("relay.test") ||
                reason.toLowerCase(java.util.Locale.ROOT).contains("certificate"), reason);
            assertTrue(handler.indexOf("tlsFailed") < handler.indexOf("close"));
            assertFalse(handler.has("tlsEstablished"));
            assertFalse(handler.has("input"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void theIdleTimeoutRunsOverTlsAsWithoutAndReadsAndWritesRestartIt(
        final Supplier<LoopUnderTest> loops, final LoopContractTest.Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onTlsEstablished = h -> h.connection.idleTimeoutMs(600);
            final LoopUnderTest.Far far = openTls(loop, direction, handler);
            for (int i = 0; i < 6; i++)
            {
                far.send("x");
                loop.pause(100);
            }
            for (int i = 0; i < 6; i++)
            {
                loop.onLoop(() ->
                {
                    handler.connection.write(new byte[]{'y'});
                    handler.record("wrote");
                });
                loop.pause(100);
            }
            assertFalse(handler.has("timeout"), "timed out although bytes moved: " + handler.kinds());
            assertTrue(loop.await(() -> handler.has("close"), 3_000), handler.kinds().toString());
            assertEquals("yyyyyy", far.receivedText());
            final long quietFor = handler.first("timeout").nowMs() - handler.last("wrote").nowMs();
            assertTrue(quietFor >= 600 - loop.slackMs() && quietFor < 600 + 3_000, "timeout after " + quietFor);
            assertEquals(1, handler.count("close"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void aTlsPeerThatReadsAgainGetsTheRestExactly(
        final Supplier<LoopUnderTest> loops, final LoopContractTest.Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onTlsEstablished = h -> h.connection.idleTimeoutMs(30_000);
            final LoopUnderTest.Far far = openTls(loop, direction, handler);
            far.stopReading();
            loop.onLoop(() -> handler.stream(STALLED_STREAM_BYTES, true));
            for (int round = 0; round < 50; round++)
            {
                final int before = handler.count("drained");
                loop.pause(300);
                if (handler.count("drained") == before)
                {
                    break;
                }
            }
            assertTrue(handler.streamWritten() < STALLED_STREAM_BYTES, "never stalled");
            final int drainedWhileStalled = handler.count("drained");
            far.startReading();
            assertTrue(loop.await(() -> far.sawEnd() && handler.has("close"), 30_000), handler.kinds().toString());
            assertStream(far.received(), STALLED_STREAM_BYTES);
            assertTrue(handler.count("drained") > drainedWhileStalled);
            assertEquals(1, handler.count("close"));
        }
    }
}
