package dev.relay.delivery.client;

import dev.relay.Relay;
import dev.relay.net.LoopDouble;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One {@link SmtpClientSession} on a {@link LoopDouble}, connected to a scripted server (the double's peer): the
 * server's bytes are read as the loop reads them, and what the session writes reaches the server through the loop's
 * bounded output buffer and {@code onOutputDrained}, exactly as on the real loop (the double keeps its contract;
 * {@code LoopContractTest}). SMTP conveniences only: this class plays no part of the loop. Listener calls are
 * recorded.
 */
final class ClientDriver implements ClientListener
{
    static final InetSocketAddress SERVER = new InetSocketAddress("127.0.0.1", 25);
    static final long CONNECT_TIMEOUT_MS = 30_000;
    /** Loop time a drain may take before the loop closes what is left. */
    static final long DRAIN_MS = 60_000;

    final LoopDouble loop;
    final LoopDouble.Peer server;
    final List<String> events = new ArrayList<>();
    final List<TransactionResult> results = new ArrayList<>();
    SmtpClientSession session;
    String closedReason;

    /** With an output buffer of {@code writeBufferBytes} (the relay's: {@value Relay#DELIVERY_WRITE_BUFFER_BYTES}). */
    ClientDriver(final ClientSettings settings, final int writeBufferBytes)
    {
        this(settings, new LoopDouble(Relay.DELIVERY_READ_BUFFER_BYTES, writeBufferBytes));
    }

    /** On {@code loop} (the fuzz tests share buffer pools between many loops). */
    ClientDriver(final ClientSettings settings, final LoopDouble loop)
    {
        this(settings, loop, ClientTls.NONE);
    }

    /** A session asking for {@code tls}, with the relay's buffers. */
    ClientDriver(final ClientSettings settings, final ClientTls tls)
    {
        this(settings, new LoopDouble(Relay.DELIVERY_READ_BUFFER_BYTES, Relay.DELIVERY_WRITE_BUFFER_BYTES), tls);
    }

    ClientDriver(final ClientSettings settings, final LoopDouble loop, final ClientTls tls)
    {
        this.loop = loop;
        final LoopDouble.Peer[] connected = new LoopDouble.Peer[1];
        loop.execute(() -> connected[0] = loop.connect(SERVER,
            connection -> session = new SmtpClientSession(settings, connection, this, tls), CONNECT_TIMEOUT_MS));
        loop.runUntilIdle();
        server = connected[0];
    }

    static ClientSettings settings()
    {
        return new ClientSettings("relay.test", 300_000, 120_000, 180_000, 600_000, 10);
    }

    /** Greets, answers EHLO with the given keywords; returns the driver, ready. */
    static ClientDriver ready(final int writeBufferBytes, final String... keywords)
    {
        final ClientDriver driver = new ClientDriver(settings(), writeBufferBytes);
        final String ehlo = driver.peer("220 mx.test ESMTP\r\n");
        if (!ehlo.equals("EHLO relay.test\r\n"))
        {
            throw new AssertionError(ehlo);
        }
        final StringBuilder reply = new StringBuilder();
        reply.append(keywords.length == 0 ? "250 mx.test\r\n" : "250-mx.test\r\n");
        for (int i = 0; i < keywords.length; i++)
        {
            reply.append(i == keywords.length - 1 ? "250 " : "250-").append(keywords[i]).append("\r\n");
        }
        final String out = driver.peer(reply.toString());
        if (!out.isEmpty() || !driver.session.isIdle())
        {
            throw new AssertionError("not ready: " + out);
        }
        return driver;
    }

    /** The server sends {@code text}; returns what it received in response once the loop is idle. */
    String peer(final String text)
    {
        return peer(text.getBytes(StandardCharsets.ISO_8859_1));
    }

    String peer(final byte[] bytes)
    {
        server.send(bytes);
        loop.runUntilIdle();
        return server.takeReceived();
    }

    /** The pool calls send (on the loop); returns what the server received. */
    String send(final OutboundMessage message)
    {
        return onLoop(() ->
        {
            if (!session.send(message))
            {
                throw new AssertionError("not idle");
            }
        });
    }

    /** Runs {@code command} on the loop as another stage would; returns what the server received. */
    String onLoop(final Runnable command)
    {
        loop.execute(command);
        loop.runUntilIdle();
        return server.takeReceived();
    }

    /** Lets loop time pass until the timeout in force expires; returns what the server received. */
    String timeout()
    {
        final long deadlineMs = server.deadlineMs();
        if (deadlineMs == Long.MAX_VALUE)
        {
            throw new AssertionError("no timeout armed");
        }
        loop.advance(deadlineMs - loop.nowMs());
        return server.takeReceived();
    }

    /** The server drops the connection. */
    void lose()
    {
        server.close();
        loop.runUntilIdle();
        if (!server.isClosed())
        {
            throw new AssertionError("the loop did not see the server go");
        }
    }

    /** The relay shuts down: the loop drains; returns what the server received. */
    String drain()
    {
        loop.drain(DRAIN_MS);
        loop.runUntilIdle();
        return server.takeReceived();
    }

    /**
     * Sends {@code message} and has the server take nothing more (its socket buffers full) before it answers the
     * envelope: the body stays stuck in the output buffer, in state BODY.
     */
    void stuckInBody(final OutboundMessage message, final String envelopeReplies)
    {
        send(message);
        server.stopReading().window(0);
        peer(envelopeReplies);
        if (session.state() != SmtpClientSession.State.BODY || !server.isOutputPending())
        {
            throw new AssertionError("body not stuck: " + session.state());
        }
    }

    /** {@code onClose} came (the session is told the connection is gone). */
    boolean closed()
    {
        return server.isClosed();
    }

    /** Bytes the session left unconsumed in the loop's read buffer (a partial reply). */
    int unconsumed()
    {
        return server.bufferedInput();
    }

    @Override
    public void onReady(final SmtpClientSession session)
    {
        events.add("ready");
    }

    @Override
    public void onTlsEstablished(final SmtpClientSession session)
    {
        events.add("tls " + session.tlsProtocol() + " " + session.tlsTrust());
    }

    @Override
    public void onTransactionDone(final SmtpClientSession session, final OutboundMessage message,
        final TransactionResult result)
    {
        events.add("done");
        results.add(result);
    }

    @Override
    public void onClosed(final SmtpClientSession session, final String reason)
    {
        events.add("closed: " + reason);
        closedReason = reason;
    }

    TransactionResult lastResult()
    {
        return results.get(results.size() - 1);
    }
}
