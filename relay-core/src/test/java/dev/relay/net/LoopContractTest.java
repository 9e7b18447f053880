package dev.relay.net;

import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
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
 * What a {@link ConnectionHandler} is promised (SelectorLoop's class javadoc), checked the same way against the real
 * {@link SelectorLoop} over loopback sockets and against {@link LoopDouble}: each scenario runs on both, with a
 * {@link ScriptedHandler} recording the callbacks, so the double can never promise what the loop does not (it once
 * called {@code onOutputDrained} by hand when the loop never did, and no message over 64 KiB left the relay).
 * <p>
 * The real loop's timeouts here are short (300-600 ms) with generous deadlines around them; the double runs the same
 * numbers on its fake clock. About 30 s, a third of it the one scenario that waits out the real close grace period.
 */
@Timeout(120)
class LoopContractTest
{
    private static final long STREAM_BYTES = 8L << 20;
    private static final long STALLED_STREAM_BYTES = 16L << 20;

    enum Direction
    {
        INBOUND, OUTBOUND
    }

    static Stream<Arguments> loops()
    {
        return Stream.of(
            Arguments.of(Named.<Supplier<LoopUnderTest>>of("SelectorLoop", LoopUnderTest.OverSockets::new)),
            Arguments.of(Named.<Supplier<LoopUnderTest>>of("LoopDouble", LoopUnderTest.InMemory::new)));
    }

    static Stream<Arguments> loopsBothWays()
    {
        final List<Arguments> arguments = new ArrayList<>();
        loops().forEach(loop ->
        {
            for (final Direction direction : Direction.values())
            {
                arguments.add(Arguments.of(loop.get()[0], direction));
            }
        });
        return arguments.stream();
    }

    private static LoopUnderTest.Far open(
        final LoopUnderTest loop, final Direction direction, final ScriptedHandler handler, final boolean peerReads)
    {
        if (direction == Direction.INBOUND)
        {
            return loop.inbound(handler, peerReads);
        }
        final LoopUnderTest.Far far = loop.outbound(handler, peerReads);
        assertTrue(handler.indexOf("connectReturned") < handler.indexOf("open"),
            "onOpen inside connect(): " + handler.kinds());
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

    /** Waits until the handler's stream stops moving: no onOutputDrained for 300 ms of loop time. */
    private static void awaitStall(final LoopUnderTest loop, final ScriptedHandler handler)
    {
        for (int round = 0; round < 50; round++)
        {
            final int before = handler.count("drained");
            loop.pause(300);
            if (handler.count("drained") == before)
            {
                return;
            }
        }
        throw new AssertionError("output never stalled");
    }

    /**
     * Fills what the peer's side takes until a flush moves nothing: a kernel stops reporting a socket writable well
     * before its buffers are full (a write still takes some), so a stall alone does not mean the next flush fails.
     */
    private static void fillUntilNothingMoves(final LoopUnderTest loop, final ScriptedHandler handler)
    {
        long previousPass = Long.MIN_VALUE;
        for (int round = 0; round < 10_000; round++)
        {
            final long[] seen = new long[2];
            loop.onLoop(() ->
            {
                seen[0] = handler.passes.getAsLong();
                seen[1] = handler.connection.outputSpace();
                handler.streamMore();
            });
            // the buffer was full after the previous round and no flush since (in a later pass) made room
            if (seen[1] == 0 && seen[0] > previousPass && previousPass != Long.MIN_VALUE)
            {
                return;
            }
            previousPass = seen[0];
        }
        throw new AssertionError("the peer's side kept taking bytes");
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void streamsSeveralMebibytesThroughOnOutputDrained(final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onOpen = h -> h.stream(STREAM_BYTES, true);
            final LoopUnderTest.Far far = open(loop, direction, handler, true);

            assertTrue(loop.await(() -> far.sawEnd() && handler.has("close"), 30_000), handler.kinds().toString());
            assertStream(far.received(), STREAM_BYTES);
            assertNull(handler.fillerProblem());
            assertEquals(1, handler.count("close"));
            // each drained flush emptied at most one buffer; the last one drained while closing, unannounced
            assertTrue(handler.count("drained") >= STREAM_BYTES / WRITE_BUFFER_BYTES - 1, "drained " +
                handler.count("drained"));
            final List<String> afterClosing = handler.kinds().subList(handler.indexOf("closeAfterFlush"),
                handler.kinds().size());
            assertFalse(afterClosing.contains("drained"), "onOutputDrained while closing");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void outputToAPeerThatDoesNotReadStaysPendingAndTheIdleTimeoutFires(
        final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onOpen = h ->
            {
                h.connection.idleTimeoutMs(400);
                h.stream(Long.MAX_VALUE, false);
            };
            handler.onTimeout = h -> h.connection.closeNow();
            final LoopUnderTest.Far far = open(loop, direction, handler, false);

            assertTrue(loop.await(() -> handler.has("close"), 5_000), handler.kinds().toString());
            final ScriptedHandler.Event timeout = handler.first("timeout");
            assertTrue(Integer.parseInt(timeout.detail()) < WRITE_BUFFER_BYTES, "output pending at the timeout");
            assertTrue(timeout.nowMs() - handler.last("drained").nowMs() >= 400 - loop.slackMs(),
                "onOutputDrained less than the timeout before it");
            assertEquals(1, handler.count("close"));
            assertTrue(handler.indexOf("timeout") < handler.indexOf("close"));
            assertEquals(0, far.receivedCount());
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void aPeerThatReadsAgainGetsTheRestExactly(final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onOpen = h ->
            {
                h.connection.idleTimeoutMs(30_000);
                h.stream(STALLED_STREAM_BYTES, true);
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, false);
            awaitStall(loop, handler);
            final int drainedWhileStalled = handler.count("drained");
            assertTrue(handler.streamWritten() < STALLED_STREAM_BYTES, "never stalled");
            assertFalse(handler.has("timeout"));

            far.startReading();
            assertTrue(loop.await(() -> far.sawEnd() && handler.has("close"), 30_000), handler.kinds().toString());
            assertStream(far.received(), STALLED_STREAM_BYTES);
            assertTrue(handler.count("drained") > drainedWhileStalled);
            assertEquals(1, handler.count("close"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void pausedInputIsKeptAndBufferedInputIsOfferedInThePassOfTheResume(
        final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            final AtomicBoolean first = new AtomicBoolean(true);
            handler.onInput = (h, offered) ->
            {
                if (first.getAndSet(false))
                {
                    h.connection.pauseInput();
                    h.record("paused");
                    return offered.indexOf('\n') + 1;
                }
                return ScriptedHandler.CONSUME_LINES.consume(h, offered);
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            far.send("a\nb\n");
            assertTrue(loop.await(() -> handler.has("paused"), 2_000));
            final long passesBefore = handler.passes.getAsLong();
            far.send("c\n");
            loop.pause(300);
            assertEquals(List.of("a\nb\n"), handler.details("input"), "input offered while paused");
            // a pause keeps the read interest until input arrives (no epoll_ctl for a quiet pause); input that does
            // arrive must then take it away, or the loop would wake for it every pass
            final long passesPaused = handler.passes.getAsLong() - passesBefore;
            assertTrue(passesPaused < 50, passesPaused + " passes in 300 ms while paused input waited");

            loop.onLoop(() ->
            {
                handler.record("resume");
                handler.connection.resumeInput();
            });
            assertTrue(loop.await(() -> handler.count("input") == 3, 2_000), handler.details("input").toString());
            assertEquals(List.of("a\nb\n", "b\n", "c\n"), handler.details("input"));
            final long resumedIn = handler.first("resume").pass();
            assertEquals(resumedIn, handler.events.get(handler.indexOf("resume") + 1).pass(),
                "buffered input offered later in the pass of the resume");
            assertEquals("b\n", handler.events.get(handler.indexOf("resume") + 1).detail());
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void unconsumedInputIsOfferedAgainWithMore(final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onInput = ScriptedHandler.CONSUME_LINES;
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            far.send("par");
            assertTrue(loop.await(() -> handler.count("input") == 1, 2_000));
            far.send("tial\n");
            assertTrue(loop.await(() -> handler.count("input") == 2, 2_000));
            loop.pause(200);
            assertEquals(List.of("par", "partial\n"), handler.details("input"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void theIdleTimeoutFiresWithoutTrafficAndReadsAndWritesRestartIt(
        final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onOpen = h -> h.connection.idleTimeoutMs(600);
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            for (int i = 0; i < 8; i++)
            {
                far.send("x");
                loop.pause(100);
            }
            for (int i = 0; i < 8; i++)
            {
                loop.onLoop(() ->
                {
                    handler.connection.write(new byte[]{'y'});
                    handler.record("wrote");
                });
                loop.pause(100);
            }
            assertFalse(handler.has("timeout"), "timed out although bytes moved: " + handler.kinds());
            assertEquals("yyyyyyyy", far.receivedText());

            assertTrue(loop.await(() -> handler.has("close"), 3_000), handler.kinds().toString());
            final long quietFor = handler.first("timeout").nowMs() - handler.last("wrote").nowMs();
            assertTrue(quietFor >= 600 - loop.slackMs() && quietFor < 600 + 3_000, "timeout after " + quietFor);
            assertTrue(handler.indexOf("timeout") < handler.indexOf("close"));
            assertEquals(1, handler.count("close"));
            assertTrue(loop.await(far::sawEnd, 2_000), "closed after the timeout");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("loops")
    void aTimedOutConnectionWhosePeerDoesNotReadClosesAfterTheGracePeriod(final Supplier<LoopUnderTest> loops)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onOpen = h ->
            {
                h.connection.idleTimeoutMs(2_000);
                h.stream(Long.MAX_VALUE, false);
            };
            loop.inbound(handler, false);
            awaitStall(loop, handler);
            fillUntilNothingMoves(loop, handler);
            loop.onLoop(() -> handler.connection.idleTimeoutMs(300));

            assertTrue(loop.await(() -> handler.has("close"), SelectorLoop.CLOSE_GRACE_MS + 5_000),
                handler.kinds().toString());
            final long graceMs = handler.first("close").nowMs() - handler.first("timeout").nowMs();
            assertTrue(graceMs >= SelectorLoop.CLOSE_GRACE_MS - loop.slackMs() &&
                graceMs < SelectorLoop.CLOSE_GRACE_MS + 5_000, "closed " + graceMs + " ms after the timeout: " +
                handler.events.subList(Math.max(0, handler.events.size() - 5), handler.events.size()));
            final List<String> afterTimeout = handler.kinds().subList(handler.indexOf("timeout"),
                handler.kinds().size());
            assertFalse(afterTimeout.contains("drained"), "onOutputDrained while closing");
            assertEquals(1, handler.count("close"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void closeAfterFlushDeliversTheLastBytesThenClosesOnce(
        final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onInput = (h, offered) ->
            {
                h.connection.write("bye\r\n".getBytes(StandardCharsets.US_ASCII));
                h.connection.closeAfterFlush();
                h.record("space", Integer.toString(h.connection.outputSpace()));
                return offered.indexOf('\n') + 1;
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            far.send("quit\nmore\n");

            assertTrue(loop.await(() -> far.sawEnd() && handler.has("close"), 3_000), handler.kinds().toString());
            assertEquals("bye\r\n", far.receivedText());
            assertEquals("0", handler.first("space").detail(), "output space while closing");
            loop.pause(200);
            assertEquals(List.of("quit\nmore\n"), handler.details("input"), "input offered while closing");
            assertFalse(handler.has("drained"), "onOutputDrained while closing");
            assertEquals(1, handler.count("close"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void closeNowDiscardsUnsentOutputAndCloseFollowsAtTheEndOfThePass(
        final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onInput = (h, offered) ->
            {
                h.connection.write("discarded\r\n".getBytes(StandardCharsets.US_ASCII));
                h.connection.closeNow();
                h.record("closeNowReturned");
                return offered.length();
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            far.send("stop\n");

            assertTrue(loop.await(() -> far.sawEnd() && handler.has("close"), 3_000), handler.kinds().toString());
            assertEquals("", far.receivedText());
            assertTrue(handler.indexOf("closeNowReturned") < handler.indexOf("close"), "onClose inside closeNow");
            assertEquals(handler.first("closeNowReturned").pass(), handler.first("close").pass(),
                "onClose at the end of the pass");
            loop.pause(200);
            assertEquals(1, handler.count("close"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void writesAfterClosingAreRefused(final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onInput = (h, offered) ->
            {
                h.connection.write("last\r\n".getBytes(StandardCharsets.US_ASCII));
                if (offered.startsWith("flush"))
                {
                    h.connection.closeAfterFlush();
                }
                else
                {
                    h.connection.closeNow();
                }
                try
                {
                    h.connection.write(new byte[]{'x'});
                    h.record("write", "taken");
                }
                catch (final IllegalStateException ex)
                {
                    h.record("write", "refused");
                }
                h.record("filler", Integer.toString(h.connection.write(dst ->
                {
                    dst.put((byte)'y');
                    return 1;
                }, 1)));
                return offered.length();
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            far.send("flush\n");
            assertTrue(loop.await(() -> far.sawEnd() && handler.has("close"), 3_000), handler.kinds().toString());
            assertEquals("last\r\n", far.receivedText());
            assertEquals(List.of("refused"), handler.details("write"), "write after closeAfterFlush");
            assertEquals(List.of("0"), handler.details("filler"));

            final ScriptedHandler now = new ScriptedHandler();
            now.onInput = handler.onInput;
            final LoopUnderTest.Far other = open(loop, direction, now, true);
            other.send("now\n");
            assertTrue(loop.await(() -> other.sawEnd() && now.has("close"), 3_000), now.kinds().toString());
            assertEquals("", other.receivedText());
            assertEquals(List.of("refused"), now.details("write"), "write after closeNow");
            assertEquals(List.of("0"), now.details("filler"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void outputSpaceShrinksAsWrittenAndDrainedAnnouncesEachEmptiedBuffer(
        final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onInput = (h, offered) ->
            {
                h.record("space", Integer.toString(h.connection.outputSpace()));
                h.connection.write(new byte[100]);
                h.record("space", Integer.toString(h.connection.outputSpace()));
                try
                {
                    h.connection.write(new byte[h.connection.outputSpace() + 1]);
                    h.record("overflow", "taken");
                }
                catch (final IllegalStateException ex)
                {
                    h.record("overflow", "refused");
                }
                return offered.length();
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            loop.pause(200);
            assertFalse(handler.has("drained"), "onOutputDrained without output");
            far.send("go\n");
            assertTrue(loop.await(() -> handler.has("drained") && far.receivedCount() == 100, 2_000));
            loop.onLoop(() -> handler.record("space", Integer.toString(handler.connection.outputSpace())));
            final String whole = Integer.toString(WRITE_BUFFER_BYTES);
            assertEquals(List.of(whole, Integer.toString(WRITE_BUFFER_BYTES - 100), whole), handler.details("space"));
            assertEquals(List.of("refused"), handler.details("overflow"));

            loop.onLoop(() -> { });
            loop.pause(200);
            assertEquals(1, handler.count("drained"), "onOutputDrained after a flush with nothing to write");
            loop.onLoop(() -> handler.connection.write(new byte[]{'z'}));
            assertTrue(loop.await(() -> handler.count("drained") == 2, 2_000));
            loop.pause(200);
            assertEquals(2, handler.count("drained"));
            assertEquals(101, far.receivedCount());
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void aPeerThatClosesGetsOnCloseOnce(final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            far.send("last words\n");
            assertTrue(loop.await(() -> handler.has("input"), 2_000));
            far.close();
            assertTrue(loop.await(() -> handler.has("close"), 2_000), handler.kinds().toString());
            loop.pause(200);
            assertEquals(1, handler.count("close"));
            assertEquals(List.of("last words\n"), handler.details("input"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void aPeerThatClosesWhileOutputIsBlockedGetsOnCloseOnce(
        final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onOpen = h ->
            {
                h.connection.idleTimeoutMs(30_000);
                h.stream(Long.MAX_VALUE, false);
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, false);
            awaitStall(loop, handler);
            far.close();
            assertTrue(loop.await(() -> handler.has("close"), 3_000), handler.kinds().toString());
            loop.pause(200);
            assertEquals(1, handler.count("close"));
            assertFalse(handler.has("timeout"));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("loops")
    void anOutboundConnectToAClosedPortFailsThenCloses(final Supplier<LoopUnderTest> loops)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            loop.outboundToClosedPort(handler);
            assertTrue(loop.await(() -> handler.has("close"), 5_000), handler.kinds().toString());
            loop.pause(200);
            assertEquals(List.of("connectReturned", "connectFailed", "close"), handler.kinds());
            assertEquals("Connection refused", handler.first("connectFailed").detail());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("loops")
    void anOutboundConnectNobodyAnswersFailsAtTheConnectTimeout(final Supplier<LoopUnderTest> loops)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            loop.outboundUnanswered(handler, 300);
            assertTrue(loop.await(() -> handler.has("close"), 3_000), handler.kinds().toString());
            loop.pause(200);
            assertEquals(List.of("connectReturned", "connectFailed", "close"), handler.kinds());
            assertEquals("connect timeout", handler.first("connectFailed").detail());
            final long waitedMs = handler.first("connectFailed").nowMs() - handler.first("connectReturned").nowMs();
            assertTrue(waitedMs >= 300 - loop.slackMs(), "gave up after " + waitedMs + " ms");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void inboundIsNotReadWhileItsOutputIsBlockedOutboundIs(
        final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onOpen = h ->
            {
                h.connection.idleTimeoutMs(30_000);
                h.stream(STALLED_STREAM_BYTES, true);
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, false);
            awaitStall(loop, handler);
            final int drainedWhileStalled = handler.count("drained");
            far.send("552 early\r\n");
            if (direction == Direction.OUTBOUND)
            {
                // a server's early reply (a 552 in the middle of a body) is heard while the body is stuck
                assertTrue(loop.await(() -> handler.has("input"), 2_000), handler.kinds().toString());
                assertTrue(handler.streamWritten() < STALLED_STREAM_BYTES, "the body was not stuck");
                assertEquals(0, far.receivedCount());
            }
            else
            {
                // a client that does not read its replies is not read from
                loop.pause(500);
                assertFalse(handler.has("input"), "inbound input offered while its output is blocked");
            }
            far.startReading();
            assertTrue(loop.await(() -> far.sawEnd() && handler.has("close"), 30_000), handler.kinds().toString());
            assertEquals(List.of("552 early\r\n"), handler.details("input"));
            assertTrue(handler.count("drained") > drainedWhileStalled);
            assertStream(far.received(), STALLED_STREAM_BYTES);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void pauseInputForResumesAfterTheDelay(final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            final AtomicBoolean first = new AtomicBoolean(true);
            handler.onInput = (h, offered) ->
            {
                if (first.getAndSet(false))
                {
                    h.connection.pauseInputFor(300);
                    h.record("tarpit");
                }
                return offered.length();
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            far.send("a\n");
            assertTrue(loop.await(() -> handler.has("tarpit"), 2_000));
            far.send("b\n");
            assertTrue(loop.await(() -> handler.count("input") == 2, 2_000), handler.kinds().toString());
            final long pausedFor = handler.last("input").nowMs() - handler.first("tarpit").nowMs();
            assertTrue(pausedFor >= 300 - loop.slackMs(), "input again after " + pausedFor + " ms");
            assertEquals(List.of("a\n", "b\n"), handler.details("input"));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("loops")
    void drainAsksEveryHandlerAndTheLoopEndsOnceAllAreClosed(final Supplier<LoopUnderTest> loops)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler in = new ScriptedHandler();
            final ScriptedHandler out = new ScriptedHandler();
            for (final ScriptedHandler handler : List.of(in, out))
            {
                handler.onDrain = h ->
                {
                    h.connection.write("421 bye\r\n".getBytes(StandardCharsets.US_ASCII));
                    h.connection.closeAfterFlush();
                };
            }
            final LoopUnderTest.Far inFar = open(loop, Direction.INBOUND, in, true);
            final LoopUnderTest.Far outFar = open(loop, Direction.OUTBOUND, out, true);
            loop.drain(10_000);

            assertTrue(loop.await(() -> inFar.sawEnd() && outFar.sawEnd() && loop.isFinished(), 5_000),
                in.kinds() + " " + out.kinds());
            for (final ScriptedHandler handler : List.of(in, out))
            {
                assertEquals(1, handler.count("drain"));
                assertEquals(1, handler.count("close"));
                assertTrue(handler.indexOf("drain") < handler.indexOf("close"));
            }
            assertEquals("421 bye\r\n", inFar.receivedText());
            assertEquals("421 bye\r\n", outFar.receivedText());
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("loopsBothWays")
    void aHandlerThatThrowsIsClosedOnce(final Supplier<LoopUnderTest> loops, final Direction direction)
    {
        try (LoopUnderTest loop = loops.get())
        {
            final ScriptedHandler handler = new ScriptedHandler();
            handler.onInput = (h, offered) ->
            {
                throw new IllegalStateException("a bug in the handler (thrown on purpose by the test)");
            };
            final LoopUnderTest.Far far = open(loop, direction, handler, true);
            far.send("boom\n");
            assertTrue(loop.await(() -> far.sawEnd() && handler.has("close"), 3_000), handler.kinds().toString());
            loop.pause(200);
            assertEquals(1, handler.count("close"));
            assertEquals(1, handler.count("input"));
        }
    }
}
