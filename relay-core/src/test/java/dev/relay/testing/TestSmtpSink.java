package dev.relay.testing;

import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * A scriptable SMTP destination on 127.0.0.1 (or another loopback address, {@link #start(InetAddress, int)}) for
 * end-to-end tests of the delivery side.
 * Blocking sockets, one daemon thread per connection (at most {@value #MAX_CONNECTIONS};
 * beyond that a connection gets {@code 421} and is closed), one acceptor thread.
 * {@link #close()} closes the listener and every connection and joins all threads.
 *
 * <p>Protocol: 220 greeting, EHLO/HELO, MAIL, RCPT, DATA, BDAT (RFC 3030), RSET, NOOP, QUIT.
 * Input is processed command by command from a byte buffer, so pipelined groups (RFC 2920)
 * get their replies in order; replies are flushed when no more input is pending. Command
 * lines must end in CRLF and be at most {@value #MAX_LINE_BYTES} bytes. Extensions are in
 * effect only as advertised in the session's EHLO: MAIL parameters need EHLO, {@code SIZE=}
 * needs SIZE (and is checked against its limit), {@code BODY=8BITMIME} needs 8BITMIME,
 * {@code SMTPUTF8} needs SMTPUTF8, {@code RET=}/{@code ENVID=} on MAIL and {@code NOTIFY=}/{@code ORCPT=}
 * on RCPT need DSN (RFC 3461; not offered unless set with {@link #extensions}), and a non-ASCII address needs the
 * SMTPUTF8 parameter
 * (553 5.6.7, RFC 6531 3.5), BDAT needs CHUNKING, and the sink's own replies carry
 * enhanced status codes only when ENHANCEDSTATUSCODES was advertised (RFC 2034).
 *
 * <p>STARTTLS (RFC 3207) with {@link #tls(SSLContext)}: offered in EHLO until TLS is on; after its 220 the socket
 * becomes a server-mode {@link SSLSocket}, whatever the client sent after the STARTTLS line is dropped, and the
 * session starts over (EHLO again). {@link #tlsProtocols()} says which connections got TLS.
 *
 * <p>Knobs, each thread-safe and settable at any time (they act on the next command):
 * <ul>
 *   <li>{@link #greeting(String)}: the greeting line; anything but 2xx is sent and the connection closed.</li>
 *   <li>{@link #extensions(String...)} / {@link #disableExtension(String)}: the EHLO keywords.
 *       Default PIPELINING, SIZE 52428800, 8BITMIME, SMTPUTF8, CHUNKING, ENHANCEDSTATUSCODES.</li>
 *   <li>{@link #rcptReply(Function)}: address to reply line per RCPT ({@code null} means {@code 250 2.1.5 Ok});
 *       only recipients answered 2xx join the transaction.</li>
 *   <li>{@link #queueMailReplies(String...)} / {@link #queueDataReplies(String...)}: replies used once each, in
 *       order, for the next valid MAIL commands / the final reply after DATA or BDAT LAST; then the defaults.</li>
 *   <li>{@link #maxRecipients(int)}: {@code 452 4.5.3} after N accepted recipients in a transaction.</li>
 *   <li>{@link #replyDelay(Duration)}: sleep before every reply (a slow peer).</li>
 *   <li>{@link #fault(Step, Fault)} / {@link #faultOnce(Step, Fault)}: instead of the reply at a step, stay
 *       {@link Fault#SILENT silent} (never greet: {@code fault(Step.CONNECT, Fault.SILENT)}), {@link Fault#DROP drop}
 *       the connection (drop after DATA: {@code fault(Step.DATA_END, Fault.DROP)}), send {@link Fault#GARBAGE
 *       garbage} or a {@link Fault#HUGE_LINE 1 MiB reply line}, or {@link Fault#CLOSE_421 answer 421 and close};
 *       at {@code STARTTLS}, {@link Fault#TLS_REFUSED refuse it}, {@link Fault#TLS_BROKEN answer 220 and then not
 *       speak TLS}, or {@link Fault#TLS_INJECT append a reply to the 220} (the STARTTLS injection, from the server's
 *       side).</li>
 * </ul>
 * Scripted reply strings are sent verbatim followed by CRLF (embed CRLF for a multi-line reply).
 *
 * <p>Records: every accepted message as a {@link Received} ({@link #messages()}, {@link #awaitMessages},
 * {@link #takeMessages()}),
 * command lines per connection ({@link #commands()}), connection and transaction counts. Connection ids
 * start at 1 and keep counting across {@link #stop()} / {@link #restart()}.
 */
public final class TestSmtpSink implements AutoCloseable
{
    /** Where a {@link Fault} replaces the sink's reply. {@code DATA} is the 354; {@code DATA_END} the final reply. */
    public enum Step
    {
        CONNECT, EHLO, HELO, MAIL, RCPT, DATA, BDAT, DATA_END, RSET, NOOP, QUIT, STARTTLS
    }

    /** What the sink does instead of replying. */
    public enum Fault
    {
        /** Reply normally. */
        NONE,
        /** Send nothing, read and discard input until the peer or the sink closes. */
        SILENT,
        /** Close the connection without a reply. */
        DROP,
        /** Send a line that is not an SMTP reply, then carry on reading commands. */
        GARBAGE,
        /** Send a single 1 MiB reply line ({@code 250 xxx...}), then carry on reading commands. */
        HUGE_LINE,
        /** Send {@code 421 4.4.2} and close. */
        CLOSE_421,
        /** STARTTLS: {@code 454 4.7.0}, and the session goes on in plaintext. */
        TLS_REFUSED,
        /** STARTTLS: 220, then a line of plaintext where the handshake should be, and close. */
        TLS_BROKEN,
        /** STARTTLS: 220 and two more reply lines in the same write, then the handshake as usual. */
        TLS_INJECT
    }

    /**
     * One accepted message. {@code raw} is the payload exactly as on the wire: for DATA everything
     * after the 354 up to, not including, the terminating {@code .CRLF} (still dot-stuffed); for BDAT
     * the chunks concatenated. {@code content} is {@code raw} with dot-stuffing removed (RFC 5321
     * 4.5.2); equal to {@code raw} for BDAT. {@code mailParams} maps upper-cased keyword to value
     * ({@code ""} for a keyword without value); {@code rcptParams} likewise per recipient, in the order of
     * {@code recipients}. {@code transactionIndex} counts accepted MAIL commands
     * on the connection from 0. {@code arrivalNs} is {@link System#nanoTime()} at the end of the payload.
     */
    public record Received(
        int connectionId,
        int transactionIndex,
        long arrivalNs,
        String mailFrom,
        Map<String, String> mailParams,
        List<String> recipients,
        byte[] raw,
        byte[] content,
        boolean bdat,
        List<Map<String, String>> rcptParams)
    {
        public boolean eightBitMime()
        {
            return "8BITMIME".equalsIgnoreCase(mailParams.get("BODY"));
        }

        public boolean smtpUtf8()
        {
            return mailParams.containsKey("SMTPUTF8");
        }

        /** The {@code SIZE=} value, or -1 when the parameter was not given. */
        public long declaredSize()
        {
            final String size = mailParams.get("SIZE");
            return size == null ? -1 : Long.parseLong(size);
        }

        public String text()
        {
            return new String(content, StandardCharsets.UTF_8);
        }
    }

    public static final int MAX_CONNECTIONS = 200;
    public static final int MAX_LINE_BYTES = 4096;
    private static final int MAX_STORED_BYTES = 64 << 20;
    private static final int HUGE_LINE_BYTES = 1 << 20;
    private static final long JOIN_TIMEOUT_MS = 5_000;
    private static final long RESTART_BIND_TIMEOUT_NS = 15_000_000_000L;
    private static final List<String> DEFAULT_EXTENSIONS = List.of(
        "PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "CHUNKING", "ENHANCEDSTATUSCODES");
    /** RFC 3461 §4 xtext. */
    private static final java.util.regex.Pattern XTEXT =
        java.util.regex.Pattern.compile("([!-*,-<>-~]|\\+[0-9A-F]{2})+");
    private static final byte[] GARBAGE_LINE =
        "\u0000\u00ff*** not an SMTP reply ***\r\n".getBytes(StandardCharsets.ISO_8859_1);

    private record ScriptedFault(Fault fault, boolean once)
    {
    }

    // lifecycle, guarded by this
    private final InetAddress address;
    private int port;
    private ServerSocket listener;
    private Thread acceptor;
    private boolean closed;

    // records
    private final Set<Session> sessions = ConcurrentHashMap.newKeySet();
    private final AtomicInteger liveSessions = new AtomicInteger();
    private final AtomicInteger lastConnectionId = new AtomicInteger();
    private final AtomicInteger connectionsAccepted = new AtomicInteger();
    private final AtomicInteger maxConcurrent = new AtomicInteger();
    private final List<Received> messages = new ArrayList<>();                 // guarded by itself
    private final Map<Integer, List<String>> commands = new ConcurrentHashMap<>();
    private final Map<Integer, AtomicInteger> transactions = new ConcurrentHashMap<>();
    private final Queue<Throwable> bugs = new ConcurrentLinkedQueue<>();
    private final Map<Integer, String> tlsProtocols = new ConcurrentHashMap<>();
    private final AtomicInteger tlsFailures = new AtomicInteger();

    // script
    private volatile String greeting = "220 sink.test ESMTP TestSmtpSink";
    private volatile List<String> extensions = DEFAULT_EXTENSIONS;
    private volatile Function<String, String> rcptReply = address -> null;
    private volatile int maxRecipients = Integer.MAX_VALUE;
    private volatile long replyDelayNs;
    private volatile SSLContext tlsContext;
    private final Queue<String> mailReplies = new ConcurrentLinkedQueue<>();
    private final Queue<String> dataReplies = new ConcurrentLinkedQueue<>();
    private final Map<Step, ScriptedFault> faults = new ConcurrentHashMap<>();

    private TestSmtpSink(final InetAddress address)
    {
        this.address = address;
    }

    /** Listens on 127.0.0.1 on an ephemeral port. */
    public static TestSmtpSink start() throws IOException
    {
        return start(0);
    }

    /** Listens on 127.0.0.1:{@code port} (0 for ephemeral), with SO_REUSEADDR. */
    public static TestSmtpSink start(final int port) throws IOException
    {
        return start(InetAddress.getByAddress(new byte[] {127, 0, 0, 1}), port);
    }

    /**
     * Listens on {@code address}:{@code port} (0 for ephemeral), with SO_REUSEADDR. On Linux all of 127.0.0.0/8 is
     * loopback, so several sinks can share one port on 127.0.0.2, 127.0.0.3...: MX hosts that differ by address only
     * (a relay connects to every MX host on one port).
     */
    public static TestSmtpSink start(final InetAddress address, final int port) throws IOException
    {
        final TestSmtpSink sink = new TestSmtpSink(address);
        synchronized (sink)
        {
            sink.listen(port);
        }
        return sink;
    }

    public synchronized int port()
    {
        return port;
    }

    /** The address it listens on (also while stopped: {@link #restart()} binds it again). */
    public InetAddress address()
    {
        return address;
    }

    /** The destination goes down: closes the listener and every connection, joins their threads. */
    public void stop()
    {
        final ServerSocket oldListener;
        final Thread oldAcceptor;
        synchronized (this)
        {
            oldListener = listener;
            oldAcceptor = acceptor;
            listener = null;
            acceptor = null;
        }
        if (oldListener != null)
        {
            closeQuietly(oldListener);
            join(oldAcceptor);
        }
        for (final Session session : sessions)
        {
            session.abort();
        }
        for (final Session session : sessions)
        {
            join(session.thread);
            sessions.remove(session);
        }
    }

    /**
     * The destination comes back up on the same port. While it was down the port was free for anyone: the relay's
     * own connection attempts to it may have been given it as their local port (a TCP self-connect on loopback),
     * so binding is retried for a while rather than failing the test on "address already in use".
     */
    public synchronized void restart() throws IOException
    {
        if (closed || listener != null)
        {
            throw new IllegalStateException(closed ? "closed" : "already listening");
        }
        final long deadline = System.nanoTime() + RESTART_BIND_TIMEOUT_NS;
        while (true)
        {
            try
            {
                listen(port);
                return;
            }
            catch (final java.net.BindException ex)
            {
                if (System.nanoTime() - deadline > 0)
                {
                    throw ex;
                }
                try
                {
                    Thread.sleep(50);
                }
                catch (final InterruptedException interrupted)
                {
                    Thread.currentThread().interrupt();
                    throw ex;
                }
            }
        }
    }

    /** Stops for good; throws if a sink thread failed with an unexpected exception. */
    @Override
    public void close()
    {
        synchronized (this)
        {
            closed = true;
        }
        stop();
        final Throwable bug = bugs.peek();
        if (bug != null)
        {
            throw new IllegalStateException("TestSmtpSink session failed", bug);
        }
    }

    // ---- script ----

    public TestSmtpSink greeting(final String replyLine)
    {
        greeting = replyLine;
        return this;
    }

    /** Replaces the EHLO keyword lines, e.g. {@code extensions("PIPELINING", "SIZE 1000")}. */
    public TestSmtpSink extensions(final String... lines)
    {
        extensions = List.of(lines);
        return this;
    }

    /** Offers STARTTLS with {@code context}'s certificate (null: no more). */
    public TestSmtpSink tls(final SSLContext context)
    {
        tlsContext = context;
        return this;
    }

    public TestSmtpSink disableExtension(final String keyword)
    {
        final List<String> kept = new ArrayList<>();
        for (final String line : extensions)
        {
            if (!keyword(line).equalsIgnoreCase(keyword))
            {
                kept.add(line);
            }
        }
        extensions = List.copyOf(kept);
        return this;
    }

    /** {@code address -> reply line}, {@code null} for the default {@code 250 2.1.5 Ok}. */
    public TestSmtpSink rcptReply(final Function<String, String> reply)
    {
        rcptReply = reply;
        return this;
    }

    public TestSmtpSink queueMailReplies(final String... replies)
    {
        mailReplies.addAll(List.of(replies));
        return this;
    }

    public TestSmtpSink queueDataReplies(final String... replies)
    {
        dataReplies.addAll(List.of(replies));
        return this;
    }

    public TestSmtpSink maxRecipients(final int max)
    {
        maxRecipients = max;
        return this;
    }

    public TestSmtpSink replyDelay(final Duration delay)
    {
        replyDelayNs = delay.toNanos();
        return this;
    }

    /** Every time the step is reached; {@link Fault#NONE} clears it. */
    public TestSmtpSink fault(final Step step, final Fault fault)
    {
        faults.put(step, new ScriptedFault(fault, false));
        return this;
    }

    /** The next time the step is reached on any connection. */
    public TestSmtpSink faultOnce(final Step step, final Fault fault)
    {
        faults.put(step, new ScriptedFault(fault, true));
        return this;
    }

    // ---- records ----

    public List<Received> messages()
    {
        synchronized (messages)
        {
            return List.copyOf(messages);
        }
    }

    /** Removes and returns the messages accepted so far: a long test checks them as they come and keeps its heap. */
    public List<Received> takeMessages()
    {
        synchronized (messages)
        {
            final List<Received> taken = List.copyOf(messages);
            messages.clear();
            return taken;
        }
    }

    public int messageCount()
    {
        synchronized (messages)
        {
            return messages.size();
        }
    }

    /** Waits until at least {@code n} messages were accepted; throws {@link AssertionError} at the deadline. */
    public List<Received> awaitMessages(final int n, final Duration timeout)
    {
        final long deadlineNs = System.nanoTime() + timeout.toNanos();
        synchronized (messages)
        {
            while (messages.size() < n)
            {
                final long leftNs = deadlineNs - System.nanoTime();
                if (leftNs <= 0)
                {
                    throw new AssertionError("expected " + n + " messages within " + timeout + ", got " +
                        messages.size() + "; commands " + commands());
                }
                try
                {
                    messages.wait(Math.max(1, leftNs / 1_000_000));
                }
                catch (final InterruptedException ex)
                {
                    Thread.currentThread().interrupt();
                    throw new AssertionError("interrupted while waiting for messages", ex);
                }
            }
            return List.copyOf(messages);
        }
    }

    /** Every TCP connection accepted, including those refused for being over {@value #MAX_CONNECTIONS}. */
    public int connectionsAccepted()
    {
        return connectionsAccepted.get();
    }

    public int activeConnections()
    {
        return liveSessions.get();
    }

    public int maxConcurrentConnections()
    {
        return maxConcurrent.get();
    }

    /** Connection id to the command lines received on it, in order, without CRLF. */
    public Map<Integer, List<String>> commands()
    {
        final Map<Integer, List<String>> copy = new TreeMap<>();
        commands.forEach((id, lines) ->
        {
            synchronized (lines)
            {
                copy.put(id, List.copyOf(lines));
            }
        });
        return copy;
    }

    /** Connection id to the TLS protocol its STARTTLS negotiated, for the connections that got TLS. */
    public Map<Integer, String> tlsProtocols()
    {
        return new TreeMap<>(tlsProtocols);
    }

    /** STARTTLS handshakes that failed (the client gave up, or sent no TLS). */
    public int tlsFailures()
    {
        return tlsFailures.get();
    }

    /** Connection id to the number of transactions (accepted MAIL commands) on it. */
    public Map<Integer, Integer> transactionsPerConnection()
    {
        final Map<Integer, Integer> copy = new TreeMap<>();
        transactions.forEach((id, count) -> copy.put(id, count.get()));
        return copy;
    }

    // ---- internals ----

    private void listen(final int requestedPort) throws IOException
    {
        final ServerSocket socket = new ServerSocket();
        try
        {
            socket.setReuseAddress(true);
            socket.bind(new InetSocketAddress(address, requestedPort), 256);
        }
        catch (final IOException ex)
        {
            closeQuietly(socket);
            throw ex;
        }
        port = socket.getLocalPort();
        listener = socket;
        acceptor = new Thread(() -> acceptLoop(socket), "test-smtp-sink-" + port + "-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    private void acceptLoop(final ServerSocket server)
    {
        while (true)
        {
            final Socket socket;
            try
            {
                socket = server.accept();
            }
            catch (final IOException ex)
            {
                return; // closed by stop()
            }
            connectionsAccepted.incrementAndGet();
            final int id = lastConnectionId.incrementAndGet();
            sessions.removeIf(session -> !session.thread.isAlive());
            if (liveSessions.get() >= MAX_CONNECTIONS)
            {
                try (socket)
                {
                    socket.getOutputStream().write("421 4.7.0 Too many connections\r\n".getBytes(StandardCharsets.US_ASCII));
                }
                catch (final IOException ignored)
                {
                    // the peer is gone already
                }
                continue;
            }
            commands.put(id, Collections.synchronizedList(new ArrayList<>()));
            transactions.put(id, new AtomicInteger());
            final Session session = new Session(id, socket);
            sessions.add(session);
            maxConcurrent.accumulateAndGet(liveSessions.incrementAndGet(), Math::max);
            session.thread.start();
        }
    }

    private Fault takeFault(final Step step)
    {
        final ScriptedFault scripted = faults.get(step);
        if (scripted == null || (scripted.once() && !faults.remove(step, scripted)))
        {
            return Fault.NONE;
        }
        return scripted.fault();
    }

    private void record(final Received message)
    {
        synchronized (messages)
        {
            messages.add(message);
            messages.notifyAll();
        }
    }

    private static String keyword(final String extensionLine)
    {
        final int space = extensionLine.indexOf(' ');
        return space < 0 ? extensionLine : extensionLine.substring(0, space);
    }

    private static void join(final Thread thread)
    {
        try
        {
            thread.join(JOIN_TIMEOUT_MS);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
        if (thread.isAlive())
        {
            throw new IllegalStateException(thread.getName() + " did not stop");
        }
    }

    private static void closeQuietly(final AutoCloseable closeable)
    {
        try
        {
            closeable.close();
        }
        catch (final Exception ignored)
        {
            // closing on the way out
        }
    }

    /** Byte input with its own buffer, so pending input is known and nothing is decoded early. */
    private static final class Input
    {
        private final InputStream in;
        private final byte[] buf = new byte[16 * 1024];
        private int pos;
        private int lim;

        Input(final InputStream in)
        {
            this.in = in;
        }

        int pending() throws IOException
        {
            return lim - pos + in.available();
        }

        private boolean fill() throws IOException
        {
            if (pos < lim)
            {
                return true;
            }
            final int n = in.read(buf, 0, buf.length);
            if (n <= 0)
            {
                return false;
            }
            pos = 0;
            lim = n;
            return true;
        }

        /** Up to and including LF, at most {@code max} bytes; -1 at end of stream before any byte. */
        int readSegment(final byte[] dst, final int max) throws IOException
        {
            int n = 0;
            while (n < max)
            {
                if (!fill())
                {
                    return n == 0 ? -1 : n;
                }
                final byte b = buf[pos++];
                dst[n++] = b;
                if (b == '\n')
                {
                    break;
                }
            }
            return n;
        }

        /** Reads exactly {@code count} bytes into {@code out} (null to discard); false at end of stream. */
        boolean readExactly(final long count, final ByteArrayOutputStream out) throws IOException
        {
            long left = count;
            while (left > 0)
            {
                if (!fill())
                {
                    return false;
                }
                final int n = (int)Math.min(left, lim - pos);
                if (out != null)
                {
                    out.write(buf, pos, n);
                }
                pos += n;
                left -= n;
            }
            return true;
        }

        void discardUntilEnd() throws IOException
        {
            while (fill())
            {
                pos = lim;
            }
        }
    }

    /** One transaction: from an accepted MAIL to the final reply, RSET, EHLO or HELO. */
    private static final class Transaction
    {
        final int index;
        final String mailFrom;
        final Map<String, String> params;
        final List<String> recipients = new ArrayList<>();
        final List<Map<String, String>> rcptParams = new ArrayList<>();
        final ByteArrayOutputStream raw = new ByteArrayOutputStream();
        final ByteArrayOutputStream content = new ByteArrayOutputStream();
        boolean bdat;
        boolean overflow;

        Transaction(final int index, final String mailFrom, final Map<String, String> params)
        {
            this.index = index;
            this.mailFrom = mailFrom;
            this.params = params;
        }
    }

    /** One connection: its thread runs the whole SMTP session. */
    private final class Session implements Runnable
    {
        final int id;
        final Socket socket;
        final Thread thread;
        boolean tlsActive;
        final byte[] line = new byte[MAX_LINE_BYTES];
        Input in;
        OutputStream out;
        boolean greeted;
        List<String> advertised = List.of();
        Transaction tx;

        Session(final int id, final Socket socket)
        {
            this.id = id;
            this.socket = socket;
            this.thread = new Thread(this, "test-smtp-sink-" + socket.getLocalPort() + "-conn-" + id);
            this.thread.setDaemon(true);
        }

        void abort()
        {
            closeQuietly(socket);
            thread.interrupt();
        }

        @Override
        public void run()
        {
            try
            {
                in = new Input(socket.getInputStream());
                out = new BufferedOutputStream(socket.getOutputStream(), 64 * 1024);
                converse();
                out.flush();
            }
            catch (final IOException | InterruptedException ex)
            {
                // the peer went away or the sink is stopping
            }
            catch (final RuntimeException | Error ex)
            {
                bugs.add(ex);
                throw ex;
            }
            finally
            {
                closeQuietly(socket);
                liveSessions.decrementAndGet();
            }
        }

        private void converse() throws IOException, InterruptedException
        {
            final Fault atConnect = takeFault(Step.CONNECT);
            if (atConnect != Fault.NONE)
            {
                if (!misbehave(atConnect))
                {
                    return;
                }
            }
            else
            {
                final String greetingLine = greeting;
                reply(greetingLine);
                if (!greetingLine.startsWith("2"))
                {
                    return;
                }
            }
            while (true)
            {
                if (in.pending() == 0)
                {
                    out.flush(); // RFC 2920 3.1: replies may wait only while more commands are pending
                }
                final int n = in.readSegment(line, MAX_LINE_BYTES);
                if (n < 0 || (n < MAX_LINE_BYTES && line[n - 1] != '\n'))
                {
                    return;
                }
                if (line[n - 1] != '\n')
                {
                    log("<line over " + MAX_LINE_BYTES + " bytes>");
                    while (true)
                    {
                        final int more = in.readSegment(line, MAX_LINE_BYTES);
                        if (more < 0)
                        {
                            return;
                        }
                        if (line[more - 1] == '\n')
                        {
                            break;
                        }
                    }
                    reply(status("500", "5.5.2", "Line too long"));
                    continue;
                }
                final boolean crlf = n >= 2 && line[n - 2] == '\r';
                final String command = new String(line, 0, n - (crlf ? 2 : 1), StandardCharsets.UTF_8);
                log(command);
                if (!crlf)
                {
                    reply(status("500", "5.5.2", "Command line must end with CRLF")); // RFC 5321 2.3.8
                    continue;
                }
                if (!execute(command))
                {
                    return;
                }
            }
        }

        /** False when the session is over. */
        private boolean execute(final String command) throws IOException, InterruptedException
        {
            final int space = command.indexOf(' ');
            final String verb = (space < 0 ? command : command.substring(0, space)).toUpperCase(Locale.ROOT);
            final String arg = space < 0 ? "" : command.substring(space + 1);
            final Step step = switch (verb)
            {
                case "EHLO" -> Step.EHLO;
                case "HELO" -> Step.HELO;
                case "MAIL" -> Step.MAIL;
                case "RCPT" -> Step.RCPT;
                case "DATA" -> Step.DATA;
                case "BDAT" -> Step.BDAT;
                case "RSET" -> Step.RSET;
                case "NOOP" -> Step.NOOP;
                case "QUIT" -> Step.QUIT;
                case "STARTTLS" -> Step.STARTTLS;
                default -> null;
            };
            if (step == null)
            {
                reply(status("500", "5.5.2", "Command unrecognized"));
                return true;
            }
            if (step == Step.BDAT)
            {
                return bdat(arg); // the chunk is read before any fault or error reply (RFC 3030 2)
            }
            final Fault fault = takeFault(step);
            if (fault != Fault.NONE)
            {
                return misbehave(fault);
            }
            switch (step)
            {
                case EHLO, HELO -> hello(step == Step.EHLO, arg);
                case MAIL -> mail(command);
                case RCPT -> rcpt(command);
                case DATA ->
                {
                    return data(arg);
                }
                case RSET ->
                {
                    tx = null;
                    reply(status("250", "2.0.0", "Ok"));
                }
                case NOOP -> reply(status("250", "2.0.0", "Ok"));
                case QUIT ->
                {
                    reply(status("221", "2.0.0", "Bye"));
                    return false;
                }
                case STARTTLS ->
                {
                    return startTls(arg, "");
                }
                default -> throw new IllegalStateException(step.name());
            }
            return true;
        }

        private void hello(final boolean ehlo, final String domain) throws IOException, InterruptedException
        {
            if (domain.isBlank())
            {
                reply(status("501", "5.5.4", "Syntax: " + (ehlo ? "EHLO" : "HELO") + " domain"));
                return;
            }
            tx = null;
            greeted = true;
            advertised = ehlo ? extensions : List.of();
            if (ehlo && tlsContext != null && !tlsActive)
            {
                final List<String> withTls = new ArrayList<>(advertised);
                withTls.add("STARTTLS");
                advertised = List.copyOf(withTls);
            }
            final StringBuilder text = new StringBuilder("250");
            text.append(advertised.isEmpty() ? ' ' : '-').append("sink.test Hello ").append(domain);
            for (int i = 0; i < advertised.size(); i++)
            {
                text.append("\r\n250").append(i == advertised.size() - 1 ? ' ' : '-').append(advertised.get(i));
            }
            reply(text.toString());
        }

        private void mail(final String command) throws IOException, InterruptedException
        {
            if (!greeted)
            {
                reply(status("503", "5.5.1", "Send EHLO or HELO first"));
                return;
            }
            if (tx != null)
            {
                reply(status("503", "5.5.1", "Nested MAIL command"));
                return;
            }
            final String[] path = parsePath(command, "MAIL FROM:");
            if (path == null)
            {
                reply(status("501", "5.5.4", "Syntax: MAIL FROM:<address>"));
                return;
            }
            final Map<String, String> params = new LinkedHashMap<>();
            final String error = parseMailParams(path[1], params);
            if (error != null)
            {
                reply(error);
                return;
            }
            if (!isAscii(path[0]) && !params.containsKey("SMTPUTF8"))
            {
                reply(status("553", "5.6.7", "Non-ASCII address needs SMTPUTF8")); // RFC 6531 3.5
                return;
            }
            final String scripted = mailReplies.poll();
            final String response = scripted != null ? scripted : status("250", "2.1.0", "Ok");
            if (response.startsWith("2"))
            {
                final int index = transactions.get(id).getAndIncrement();
                tx = new Transaction(index, path[0], Collections.unmodifiableMap(params));
            }
            reply(response);
        }

        private void rcpt(final String command) throws IOException, InterruptedException
        {
            if (tx == null)
            {
                reply(status("503", "5.5.1", "Need MAIL before RCPT"));
                return;
            }
            final String[] path = parsePath(command, "RCPT TO:");
            if (path == null || path[0].isEmpty())
            {
                reply(status("501", "5.5.4", "Syntax: RCPT TO:<address>"));
                return;
            }
            final Map<String, String> params = new LinkedHashMap<>();
            if (!path[1].isEmpty())
            {
                final String error = parseRcptParams(path[1], params);
                if (error != null)
                {
                    reply(error);
                    return;
                }
            }
            if (!isAscii(path[0]) && !tx.params.containsKey("SMTPUTF8"))
            {
                reply(status("553", "5.6.7", "Non-ASCII address needs SMTPUTF8")); // RFC 6531 3.5
                return;
            }
            if (tx.recipients.size() >= maxRecipients)
            {
                reply(status("452", "4.5.3", "Too many recipients")); // RFC 5321 4.5.3.1.10
                return;
            }
            final String scripted = rcptReply.apply(path[0]);
            final String response = scripted != null ? scripted : status("250", "2.1.5", "Ok");
            if (response.startsWith("2"))
            {
                tx.recipients.add(path[0]);
                tx.rcptParams.add(Collections.unmodifiableMap(params));
            }
            reply(response);
        }

        private boolean data(final String arg) throws IOException, InterruptedException
        {
            if (!arg.isEmpty())
            {
                reply(status("501", "5.5.4", "Syntax: DATA"));
                return true;
            }
            final String refusal = refuseBody();
            if (refusal != null)
            {
                reply(refusal);
                return true;
            }
            if (tx.bdat)
            {
                reply(status("503", "5.5.1", "DATA after BDAT")); // RFC 3030 2
                return true;
            }
            reply("354 End data with <CR><LF>.<CR><LF>");
            out.flush();
            boolean lineStart = true;
            byte previous = '\n';
            while (true)
            {
                final int n = in.readSegment(line, MAX_LINE_BYTES);
                if (n < 0)
                {
                    return false;
                }
                if (lineStart && n == 3 && line[0] == '.' && line[1] == '\r' && line[2] == '\n')
                {
                    break;
                }
                final int skip = lineStart && line[0] == '.' ? 1 : 0; // RFC 5321 4.5.2
                append(tx.raw, line, 0, n);
                append(tx.content, line, skip, n - skip);
                lineStart = line[n - 1] == '\n' && (n >= 2 ? line[n - 2] : previous) == '\r';
                previous = line[n - 1];
            }
            return complete();
        }

        private boolean bdat(final String arg) throws IOException, InterruptedException
        {
            final String[] words = arg.split(" ", -1);
            final boolean last = words.length == 2 && words[1].equalsIgnoreCase("LAST");
            if (words.length > 2 || (words.length == 2 && !last) || !words[0].matches("[0-9]{1,18}"))
            {
                reply(status("501", "5.5.4", "Syntax: BDAT size [LAST]"));
                return true;
            }
            final long size = Long.parseLong(words[0]);
            final ByteArrayOutputStream chunk = new ByteArrayOutputStream();
            final boolean keep = tx != null && !tx.overflow && tx.raw.size() + size <= MAX_STORED_BYTES;
            if (!in.readExactly(size, keep ? chunk : null))
            {
                return false;
            }
            final Fault fault = takeFault(Step.BDAT);
            if (fault != Fault.NONE)
            {
                return misbehave(fault);
            }
            if (!hasExtension("CHUNKING"))
            {
                reply(status("502", "5.5.1", "BDAT not advertised"));
                return true;
            }
            final String refusal = refuseBody();
            if (refusal != null)
            {
                reply(refusal);
                return true;
            }
            tx.bdat = true;
            tx.overflow |= !keep;
            final byte[] bytes = chunk.toByteArray();
            append(tx.raw, bytes, 0, bytes.length);
            append(tx.content, bytes, 0, bytes.length);
            if (last)
            {
                return complete();
            }
            reply(status("250", "2.0.0", size + " octets received"));
            return true;
        }

        /** RFC 3207: 220, then TLS on this socket; false when the session is over. */
        private boolean startTls(final String arg, final String appended) throws IOException, InterruptedException
        {
            final SSLContext context = tlsContext;
            if (context == null || tlsActive || !hasExtension("STARTTLS"))
            {
                reply(status("502", "5.5.1", "STARTTLS not offered"));
                return true;
            }
            if (!arg.isEmpty())
            {
                reply(status("501", "5.5.4", "Syntax: STARTTLS"));
                return true;
            }
            reply(status("220", "2.0.0", "Ready to start TLS") + appended);
            out.flush();
            final SSLSocket tls = (SSLSocket)context.getSocketFactory().createSocket(socket,
                socket.getInetAddress().getHostAddress(), socket.getPort(), true);
            tls.setUseClientMode(false);
            try
            {
                tls.startHandshake();
            }
            catch (final IOException ex)
            {
                tlsFailures.incrementAndGet();
                closeQuietly(tls);
                return false;
            }
            // RFC 3207 §4.2: whatever came before is forgotten, anything pipelined after STARTTLS included
            in = new Input(tls.getInputStream());
            out = new BufferedOutputStream(tls.getOutputStream(), 64 * 1024);
            tlsActive = true;
            tlsProtocols.put(id, tls.getSession().getProtocol());
            tx = null;
            greeted = false;
            advertised = List.of();
            return true;
        }

        private String refuseBody()
        {
            if (tx == null)
            {
                return status("503", "5.5.1", "Need MAIL and RCPT first");
            }
            if (tx.recipients.isEmpty())
            {
                return status("554", "5.5.1", "No valid recipients"); // RFC 2920 3.1
            }
            return null;
        }

        /** The end of the payload: records and replies, or misbehaves. */
        private boolean complete() throws IOException, InterruptedException
        {
            final long arrivalNs = System.nanoTime();
            final Transaction done = tx;
            tx = null;
            final Fault fault = takeFault(Step.DATA_END);
            if (fault != Fault.NONE)
            {
                return misbehave(fault);
            }
            final String scripted = dataReplies.poll();
            final String response = done.overflow ? status("552", "5.3.4", "Message too big for TestSmtpSink")
                : scripted != null ? scripted
                : status("250", "2.0.0", "Ok: queued as " + id + "." + done.index);
            if (response.startsWith("2"))
            {
                // recorded before the reply, so a peer that saw 250 finds the message already here
                record(new Received(id, done.index, arrivalNs, done.mailFrom, done.params,
                    List.copyOf(done.recipients), done.raw.toByteArray(), done.content.toByteArray(), done.bdat,
                    List.copyOf(done.rcptParams)));
            }
            reply(response);
            return true;
        }

        /** Returns false when the session is over. */
        private boolean misbehave(final Fault fault) throws IOException, InterruptedException
        {
            switch (fault)
            {
                case SILENT ->
                {
                    out.flush();
                    in.discardUntilEnd();
                    return false;
                }
                case DROP ->
                {
                    out.flush();
                    return false;
                }
                case GARBAGE ->
                {
                    delay();
                    out.write(GARBAGE_LINE);
                    out.flush();
                    return true;
                }
                case HUGE_LINE ->
                {
                    delay();
                    final byte[] huge = new byte[HUGE_LINE_BYTES + 6];
                    Arrays.fill(huge, (byte)'x');
                    System.arraycopy("250 ".getBytes(StandardCharsets.US_ASCII), 0, huge, 0, 4);
                    huge[huge.length - 2] = '\r';
                    huge[huge.length - 1] = '\n';
                    out.write(huge);
                    out.flush();
                    return true;
                }
                case CLOSE_421 ->
                {
                    reply(status("421", "4.4.2", "sink.test closing connection"));
                    return false;
                }
                case TLS_REFUSED ->
                {
                    reply(status("454", "4.7.0", "TLS not available due to local problem"));
                    return true;
                }
                case TLS_BROKEN ->
                {
                    reply(status("220", "2.0.0", "Ready to start TLS"));
                    out.flush();
                    // what a broken TLS stack (or a middlebox stripping it) leaves the client with
                    out.write("this is not TLS\r\n".getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                    tlsFailures.incrementAndGet();
                    return false;
                }
                case TLS_INJECT ->
                {
                    return startTls("", "\r\n250-injected.test\r\n250 PIPELINING");
                }
                default -> throw new IllegalArgumentException(fault.name());
            }
        }

        private void reply(final String text) throws IOException, InterruptedException
        {
            delay();
            out.write((text + "\r\n").getBytes(StandardCharsets.UTF_8));
        }

        private void delay() throws InterruptedException
        {
            final long delayNs = replyDelayNs;
            if (delayNs > 0)
            {
                Thread.sleep(delayNs / 1_000_000, (int)(delayNs % 1_000_000));
            }
        }

        private String status(final String code, final String enhanced, final String text)
        {
            return hasExtension("ENHANCEDSTATUSCODES") ? code + " " + enhanced + " " + text : code + " " + text;
        }

        private void log(final String command)
        {
            commands.get(id).add(command);
        }

        private void append(final ByteArrayOutputStream to, final byte[] bytes, final int offset, final int length)
        {
            if (to.size() + length > MAX_STORED_BYTES)
            {
                tx.overflow = true;
            }
            else if (!tx.overflow)
            {
                to.write(bytes, offset, length);
            }
        }

        /** MAIL parameters (RFC 5321 4.1.2 esmtp-param), checked against what EHLO advertised; an error reply or null. */
        private String parseMailParams(final String text, final Map<String, String> params)
        {
            if (text.isEmpty())
            {
                return null;
            }
            if (advertised.isEmpty())
            {
                return status("555", "5.5.4", "MAIL parameters not supported");
            }
            for (final String param : text.split(" ", -1))
            {
                final int eq = param.indexOf('=');
                final String key = (eq < 0 ? param : param.substring(0, eq)).toUpperCase(Locale.ROOT);
                final String value = eq < 0 ? "" : param.substring(eq + 1);
                final boolean ok = switch (key)
                {
                    case "SIZE" -> hasExtension("SIZE") && value.matches("[0-9]{1,18}");
                    case "BODY" -> value.equalsIgnoreCase("7BIT") ||
                        (value.equalsIgnoreCase("8BITMIME") && hasExtension("8BITMIME"));
                    case "SMTPUTF8" -> eq < 0 && hasExtension("SMTPUTF8");
                    case "RET" -> hasExtension("DSN") && (value.equals("FULL") || value.equals("HDRS"));
                    case "ENVID" -> hasExtension("DSN") && XTEXT.matcher(value).matches();
                    default -> false;
                };
                if (!ok || params.containsKey(key))
                {
                    return status("555", "5.5.4", "Unsupported or malformed parameter " + param);
                }
                params.put(key, value);
                if (key.equals("SIZE") && Long.parseLong(value) > sizeLimit())
                {
                    return status("552", "5.3.4", "Message size exceeds fixed limit"); // RFC 1870 6
                }
            }
            return null;
        }

        /** RCPT parameters: NOTIFY and ORCPT (RFC 3461 §4.1, §4.2) if DSN was advertised; an error reply or null. */
        private String parseRcptParams(final String text, final Map<String, String> params)
        {
            for (final String param : text.split(" ", -1))
            {
                final int eq = param.indexOf('=');
                final String key = (eq < 0 ? param : param.substring(0, eq)).toUpperCase(Locale.ROOT);
                final String value = eq < 0 ? "" : param.substring(eq + 1);
                final boolean ok = hasExtension("DSN") && switch (key)
                {
                    case "NOTIFY" -> value.matches("NEVER|(SUCCESS|FAILURE|DELAY)(,(SUCCESS|FAILURE|DELAY))*");
                    case "ORCPT" -> value.matches("[A-Za-z0-9-]+;.+") &&
                        XTEXT.matcher(value.substring(value.indexOf(';') + 1)).matches();
                    default -> false;
                };
                if (!ok || params.containsKey(key))
                {
                    return status("555", "5.5.4", "Unsupported or malformed parameter " + param);
                }
                params.put(key, value);
            }
            return null;
        }

        private boolean hasExtension(final String keyword)
        {
            for (final String line : advertised)
            {
                if (keyword(line).equalsIgnoreCase(keyword))
                {
                    return true;
                }
            }
            return false;
        }

        private long sizeLimit()
        {
            for (final String line : advertised)
            {
                if (keyword(line).equalsIgnoreCase("SIZE") && line.length() > 5)
                {
                    final long limit = Long.parseLong(line.substring(5).trim());
                    return limit == 0 ? Long.MAX_VALUE : limit;
                }
            }
            return Long.MAX_VALUE;
        }
    }

    /** {address, rest after the path without leading space}, or null; strict: no space after the colon. */
    private static String[] parsePath(final String command, final String prefix)
    {
        if (!command.regionMatches(true, 0, prefix, 0, prefix.length()) ||
            command.length() <= prefix.length() || command.charAt(prefix.length()) != '<')
        {
            return null;
        }
        boolean quoted = false;
        for (int i = prefix.length() + 1; i < command.length(); i++)
        {
            final char c = command.charAt(i);
            if (c == '\\' && quoted)
            {
                i++;
            }
            else if (c == '"')
            {
                quoted = !quoted;
            }
            else if (c == '>' && !quoted)
            {
                final String address = command.substring(prefix.length() + 1, i);
                final String rest = command.substring(i + 1);
                if (!rest.isEmpty() && (rest.charAt(0) != ' ' || rest.length() == 1))
                {
                    return null;
                }
                return new String[] {address, rest.isEmpty() ? "" : rest.substring(1)};
            }
        }
        return null;
    }

    private static boolean isAscii(final String text)
    {
        for (int i = 0; i < text.length(); i++)
        {
            if (text.charAt(i) > 0x7f)
            {
                return false;
            }
        }
        return true;
    }
}
