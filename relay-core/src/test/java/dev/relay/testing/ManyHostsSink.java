package dev.relay.testing;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An SMTP destination standing in for thousands of MX hosts at once: it listens on one port of the wildcard
 * address, so a connection to any loopback address (on Linux all of 127.0.0.0/8 is loopback) on that port reaches
 * it, and it records, per connection, the address the relay connected to: a test gives each MX host its own
 * 127.x.y.z address in DNS and reads back which host every transaction came over. Peers that are not loopback
 * are closed at once (the wildcard listener is reachable from outside while a test runs).
 * <p>
 * Per host address it can be {@link #slow} (the greeting and every reply held back a while, one command at a
 * time) or {@link #silent} (accepts, reads, never answers); the rest answer at once: EHLO offers PIPELINING and
 * 8BITMIME, every MAIL and RCPT gets 250, every message 250. Records each transaction (host, connection, sender,
 * recipients, Message-ID) and, per host, connections accepted, open now and at most at once.
 * <p>
 * Thread: one selector thread serves every connection; the accessors may be called from any thread.
 * {@link #close()} closes every socket and joins the thread.
 */
public final class ManyHostsSink implements AutoCloseable
{
    private static final int MAX_LINE_BYTES = 8192;
    private static final byte[] GREETING = ascii("220 many-hosts.test ESMTP ManyHostsSink\r\n");
    private static final byte[] EHLO = ascii("250-many-hosts.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n" +
        "250 SIZE 52428800\r\n");
    private static final byte[] OK = ascii("250 2.0.0 Ok\r\n");
    private static final byte[] QUEUED = ascii("250 2.0.0 Ok: queued\r\n");
    private static final byte[] START_DATA = ascii("354 End data with <CR><LF>.<CR><LF>\r\n");
    private static final byte[] BYE = ascii("221 2.0.0 Bye\r\n");
    private static final byte[] UNKNOWN = ascii("502 5.5.2 Error: command not recognized\r\n");

    /** One transaction as received: {@code host} is the address the relay connected to. */
    public record Transaction(InetAddress host, int connection, String mailFrom, List<String> recipients,
        String messageId)
    {
    }

    /** Connections of one host address. */
    private static final class HostCounters
    {
        final AtomicInteger accepted = new AtomicInteger();
        final AtomicInteger open = new AtomicInteger();
        final AtomicInteger peakOpen = new AtomicInteger();
    }

    private final ServerSocketChannel server;
    private final Selector selector;
    private final Thread thread;
    private final Map<InetAddress, Long> slowHosts = new ConcurrentHashMap<>();
    private final Map<InetAddress, Boolean> silentHosts = new ConcurrentHashMap<>();
    private final Map<InetAddress, HostCounters> hosts = new ConcurrentHashMap<>();
    private final ConcurrentLinkedQueue<Transaction> transactions = new ConcurrentLinkedQueue<>();
    private final AtomicInteger recipients = new AtomicInteger();
    private final AtomicInteger connectionsAccepted = new AtomicInteger();
    private final AtomicInteger openConnections = new AtomicInteger();
    private final AtomicInteger peakOpenConnections = new AtomicInteger();
    /** Replies held back by slow hosts, by when they are due; selector thread only. */
    private final PriorityQueue<Session> heldBack = new PriorityQueue<>((a, b) -> Long.compare(a.dueMs, b.dueMs));
    private final Set<Session> sessions = new HashSet<>();
    private int lastConnectionId;
    private volatile boolean closed;

    private ManyHostsSink() throws IOException
    {
        server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress(0), 1024);
        server.configureBlocking(false);
        selector = Selector.open();
        server.register(selector, SelectionKey.OP_ACCEPT);
        thread = new Thread(this::run, "many-hosts-sink");
        thread.setDaemon(true);
        thread.start();
    }

    /** Listens on an ephemeral port of the wildcard address: every 127.x.y.z on that port reaches it. */
    public static ManyHostsSink start() throws IOException
    {
        return new ManyHostsSink();
    }

    public int port()
    {
        return ((InetSocketAddress)server.socket().getLocalSocketAddress()).getPort();
    }

    /** Connections to {@code host} get their greeting and each reply {@code replyDelay} late. */
    public ManyHostsSink slow(final InetAddress host, final Duration replyDelay)
    {
        slowHosts.put(host, replyDelay.toMillis());
        return this;
    }

    /** Connections to {@code host} are accepted and read, and never answered. */
    public ManyHostsSink silent(final InetAddress host)
    {
        silentHosts.put(host, Boolean.TRUE);
        return this;
    }

    /** Every transaction so far, in the order they ended. */
    public List<Transaction> transactions()
    {
        return List.copyOf(transactions);
    }

    /** Recipients of every transaction so far. */
    public int recipientCount()
    {
        return recipients.get();
    }

    public int connectionsAccepted()
    {
        return connectionsAccepted.get();
    }

    /** The most connections open at once, over all hosts. */
    public int peakOpenConnections()
    {
        return peakOpenConnections.get();
    }

    public int connectionsAccepted(final InetAddress host)
    {
        final HostCounters counters = hosts.get(host);
        return counters == null ? 0 : counters.accepted.get();
    }

    public int openConnections(final InetAddress host)
    {
        final HostCounters counters = hosts.get(host);
        return counters == null ? 0 : counters.open.get();
    }

    public int peakOpenConnections(final InetAddress host)
    {
        final HostCounters counters = hosts.get(host);
        return counters == null ? 0 : counters.peakOpen.get();
    }

    @Override
    public void close() throws InterruptedException
    {
        closed = true;
        selector.wakeup();
        thread.join(10_000);
        if (thread.isAlive())
        {
            throw new IllegalStateException("many-hosts-sink did not stop");
        }
    }

    private void run()
    {
        try
        {
            while (!closed)
            {
                final long nowMs = System.currentTimeMillis();
                sendHeldBackReplies(nowMs);
                final Session next = heldBack.peek();
                final long timeoutMs = next == null ? 1_000 : Math.max(1, next.dueMs - nowMs);
                selector.select(this::onReady, timeoutMs);
            }
        }
        catch (final IOException | ClosedSelectorException ex)
        {
            // closing
        }
        finally
        {
            for (final Session session : new ArrayList<>(sessions))
            {
                session.close();
            }
            try
            {
                server.close();
                selector.close();
            }
            catch (final IOException ex)
            {
                // test sink: nothing to report
            }
        }
    }

    private void onReady(final SelectionKey key)
    {
        if (!key.isValid())
        {
            return;
        }
        if (key.isAcceptable())
        {
            accept();
            return;
        }
        final Session session = (Session)key.attachment();
        try
        {
            if (key.isWritable())
            {
                session.flush();
            }
            if (key.isValid() && key.isReadable())
            {
                session.read();
            }
        }
        catch (final IOException ex)
        {
            session.close();
        }
    }

    private void accept()
    {
        SocketChannel channel;
        try
        {
            while ((channel = server.accept()) != null)
            {
                final InetSocketAddress peer = (InetSocketAddress)channel.getRemoteAddress();
                if (!peer.getAddress().isLoopbackAddress())
                {
                    channel.close();
                    continue;
                }
                channel.configureBlocking(false);
                channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
                final InetAddress host = ((InetSocketAddress)channel.getLocalAddress()).getAddress();
                final Session session = new Session(channel, host, ++lastConnectionId);
                session.key = channel.register(selector, SelectionKey.OP_READ, session);
                sessions.add(session);
                session.start(System.currentTimeMillis());
            }
        }
        catch (final IOException ex)
        {
            // a connection that broke while being accepted: the next one is accepted next time
        }
    }

    private void sendHeldBackReplies(final long nowMs)
    {
        Session session;
        while ((session = heldBack.peek()) != null && session.dueMs <= nowMs)
        {
            heldBack.poll();
            try
            {
                session.releaseHeldReply();
            }
            catch (final IOException ex)
            {
                session.close();
            }
        }
    }

    private static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    /** One connection: line-based SMTP server side; selector thread only. */
    private final class Session
    {
        final SocketChannel channel;
        final InetAddress host;
        final int id;
        final HostCounters counters;
        final long replyDelayMs;
        final boolean silent;
        SelectionKey key;
        final ByteBuffer in = ByteBuffer.allocate(MAX_LINE_BYTES);
        final ArrayDeque<ByteBuffer> out = new ArrayDeque<>();
        boolean inData;
        boolean inHeaders;
        boolean quitting;
        boolean closed;
        /** A slow host's reply waits in {@link #heldBack} until {@link #dueMs}; no input is read meanwhile. */
        byte[] heldReply;
        long dueMs;
        String mailFrom;
        String messageId;
        final List<String> rcpts = new ArrayList<>();

        Session(final SocketChannel channel, final InetAddress host, final int id)
        {
            this.channel = channel;
            this.host = host;
            this.id = id;
            this.counters = hosts.computeIfAbsent(host, (ignored) -> new HostCounters());
            final Long delay = slowHosts.get(host);
            this.replyDelayMs = delay == null ? 0 : delay;
            this.silent = silentHosts.containsKey(host);
        }

        void start(final long nowMs) throws IOException
        {
            connectionsAccepted.incrementAndGet();
            counters.accepted.incrementAndGet();
            counters.peakOpen.accumulateAndGet(counters.open.incrementAndGet(), Math::max);
            peakOpenConnections.accumulateAndGet(openConnections.incrementAndGet(), Math::max);
            reply(GREETING);
        }

        void read() throws IOException
        {
            final int n = channel.read(in);
            if (n < 0)
            {
                close();
                return;
            }
            if (silent)
            {
                in.clear();
                return;
            }
            processLines();
        }

        /** Handles every complete line in the buffer, stopping while a slow host's reply is held back. */
        void processLines() throws IOException
        {
            in.flip();
            while (heldReply == null && !closed)
            {
                final int end = lineEnd();
                if (end < 0)
                {
                    break;
                }
                final byte[] line = new byte[end - in.position()];
                in.get(line);
                in.position(in.position() + 2);
                onLine(new String(line, StandardCharsets.ISO_8859_1));
            }
            if (!closed)
            {
                in.compact();
                if (!in.hasRemaining())
                {
                    // a line longer than any the relay sends: not SMTP
                    close();
                }
            }
        }

        private int lineEnd()
        {
            for (int i = in.position(); i + 1 < in.limit(); i++)
            {
                if (in.get(i) == '\r' && in.get(i + 1) == '\n')
                {
                    return i;
                }
            }
            return -1;
        }

        private void onLine(final String line) throws IOException
        {
            if (inData)
            {
                onDataLine(line);
                return;
            }
            final String upper = line.toUpperCase(Locale.ROOT);
            if (upper.startsWith("EHLO"))
            {
                reply(EHLO);
            }
            else if (upper.startsWith("HELO") || upper.startsWith("NOOP"))
            {
                reply(OK);
            }
            else if (upper.startsWith("MAIL FROM:"))
            {
                mailFrom = path(line.substring("MAIL FROM:".length()));
                rcpts.clear();
                reply(OK);
            }
            else if (upper.startsWith("RCPT TO:"))
            {
                rcpts.add(path(line.substring("RCPT TO:".length())));
                reply(OK);
            }
            else if (upper.equals("DATA"))
            {
                inData = true;
                inHeaders = true;
                messageId = null;
                reply(START_DATA);
            }
            else if (upper.equals("RSET"))
            {
                mailFrom = null;
                rcpts.clear();
                reply(OK);
            }
            else if (upper.equals("QUIT"))
            {
                quitting = true;
                reply(BYE);
            }
            else
            {
                reply(UNKNOWN);
            }
        }

        private void onDataLine(final String line) throws IOException
        {
            if (line.equals("."))
            {
                inData = false;
                transactions.add(new Transaction(host, id, mailFrom, List.copyOf(rcpts), messageId));
                recipients.addAndGet(rcpts.size());
                mailFrom = null;
                rcpts.clear();
                reply(QUEUED);
                return;
            }
            if (inHeaders)
            {
                if (line.isEmpty())
                {
                    inHeaders = false;
                }
                else if (messageId == null && line.regionMatches(true, 0, "Message-ID:", 0, 11))
                {
                    final String value = line.substring(11).trim();
                    messageId = value.startsWith("<") && value.endsWith(">") ?
                        value.substring(1, value.length() - 1) : value;
                }
            }
        }

        private String path(final String argument)
        {
            final String trimmed = argument.trim();
            final int close = trimmed.indexOf('>');
            return trimmed.startsWith("<") && close > 0 ? trimmed.substring(1, close) : trimmed;
        }

        private void reply(final byte[] bytes) throws IOException
        {
            if (silent)
            {
                return;
            }
            if (replyDelayMs > 0)
            {
                heldReply = bytes;
                dueMs = System.currentTimeMillis() + replyDelayMs;
                heldBack.add(this);
                // nothing is read meanwhile (the kernel buffers what the peer pipelines); send() reads on
                key.interestOps(0);
                return;
            }
            send(bytes);
        }

        void releaseHeldReply() throws IOException
        {
            final byte[] bytes = heldReply;
            heldReply = null;
            send(bytes);
            if (!closed)
            {
                // lines that came in meanwhile are served now, each reply held back again
                processLines();
            }
        }

        private void send(final byte[] bytes) throws IOException
        {
            out.addLast(ByteBuffer.wrap(bytes));
            flush();
        }

        void flush() throws IOException
        {
            ByteBuffer head;
            while ((head = out.peekFirst()) != null)
            {
                channel.write(head);
                if (head.hasRemaining())
                {
                    key.interestOps(SelectionKey.OP_READ | SelectionKey.OP_WRITE);
                    return;
                }
                out.pollFirst();
            }
            if (quitting)
            {
                close();
                return;
            }
            if (key.isValid())
            {
                key.interestOps(SelectionKey.OP_READ);
            }
        }

        void close()
        {
            if (closed)
            {
                return;
            }
            closed = true;
            sessions.remove(this);
            heldBack.remove(this);
            counters.open.decrementAndGet();
            openConnections.decrementAndGet();
            key.cancel();
            try
            {
                channel.close();
            }
            catch (final IOException ex)
            {
                // test sink: nothing to report
            }
        }
    }
}
