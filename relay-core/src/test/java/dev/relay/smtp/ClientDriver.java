package dev.relay.smtp;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Plays the loop for one {@link SmtpClientSession} against a scripted server, without a socket: server bytes are
 * offered as the loop offers reads (unconsumed bytes kept, pause/resume honoured); after each step the output is
 * flushed and {@code onOutputDrained} called until the session writes nothing more; a close requested by the
 * session is followed by {@code onClose}. Listener calls are recorded.
 */
final class ClientDriver implements ClientListener
{
    final ClientTestConnection connection;
    final SmtpClientSession session;
    final List<String> events = new ArrayList<>();
    final List<TransactionResult> results = new ArrayList<>();
    final List<Integer> writesPerPass = new ArrayList<>();
    String closedReason;
    boolean closed;
    private final ByteBuffer input;
    private int start;

    ClientDriver(final ClientSettings settings, final int outputCapacity)
    {
        this(settings, outputCapacity, 4 * 1024 * 1024);
    }

    /** With an input buffer of {@code inputCapacity} bytes (the fuzz tests use small ones: one per input). */
    ClientDriver(final ClientSettings settings, final int outputCapacity, final int inputCapacity)
    {
        input = ByteBuffer.allocate(inputCapacity);
        connection = new ClientTestConnection(outputCapacity);
        session = new SmtpClientSession(settings, connection, this);
        session.onOpen();
    }

    static ClientDriver standard()
    {
        return new ClientDriver(settings(), 64 * 1024);
    }

    static ClientSettings settings()
    {
        return new ClientSettings("relay.test", 300_000, 120_000, 180_000, 600_000, 10);
    }

    /** Greets, answers EHLO with the given keywords; returns the driver, ready. */
    static ClientDriver ready(final int outputCapacity, final String... keywords)
    {
        final ClientDriver driver = new ClientDriver(settings(), outputCapacity);
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

    /** The server sends {@code text} in one read; returns what the client wrote in response (all passes). */
    String peer(final String text)
    {
        return peer(text.getBytes(StandardCharsets.ISO_8859_1));
    }

    String peer(final byte[] bytes)
    {
        if (closed)
        {
            return "";
        }
        input.put(bytes);
        deliver();
        return flush();
    }

    /** The pool calls send; returns what the client wrote. */
    String send(final OutboundMessage message)
    {
        if (!session.send(message))
        {
            throw new AssertionError("not idle");
        }
        return flush();
    }

    String timeout()
    {
        session.onTimeout();
        return flush();
    }

    void lose()
    {
        closed = true;
        session.onClose();
    }

    /** Bytes the session left unconsumed in the input buffer (a partial reply, or input while paused). */
    int unconsumed()
    {
        return input.position() - start;
    }

    private void deliver()
    {
        while (!connection.paused && !closed && start < input.position())
        {
            final int consumed = session.onInput(input, start, input.position());
            if (consumed <= start)
            {
                break;
            }
            start = consumed;
        }
        if (start == input.position())
        {
            input.clear();
            start = 0;
        }
    }

    /** End of loop passes: write out, tell the session the output drained, until it has nothing more to say. */
    String flush()
    {
        final StringBuilder out = new StringBuilder();
        while (true)
        {
            if (connection.resumeRequested)
            {
                connection.resumeRequested = false;
                deliver();
            }
            final int writes = connection.writesThisPass;
            final String part = connection.flush();
            if (part.isEmpty())
            {
                break;
            }
            writesPerPass.add(writes);
            out.append(part);
            if (connection.closing)
            {
                break;
            }
            session.onOutputDrained();
        }
        if (connection.closing && !closed)
        {
            closed = true;
            session.onClose();
        }
        return out.toString();
    }

    @Override
    public void onReady(final SmtpClientSession session)
    {
        events.add("ready");
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
