package dev.relay.bench.e2e;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.SingleWriterRecorder;

import static dev.relay.bench.e2e.SinkReplies.BAD_BDAT;
import static dev.relay.bench.e2e.SinkReplies.BYE;
import static dev.relay.bench.e2e.SinkReplies.CHUNK_OK;
import static dev.relay.bench.e2e.SinkReplies.EHLO;
import static dev.relay.bench.e2e.SinkReplies.EHLO_STARTTLS;
import static dev.relay.bench.e2e.SinkReplies.GO_AHEAD;
import static dev.relay.bench.e2e.SinkReplies.GREETING;
import static dev.relay.bench.e2e.SinkReplies.HELO;
import static dev.relay.bench.e2e.SinkReplies.MAIL_OK;
import static dev.relay.bench.e2e.SinkReplies.NEED_MAIL;
import static dev.relay.bench.e2e.SinkReplies.NEED_RCPT;
import static dev.relay.bench.e2e.SinkReplies.NESTED;
import static dev.relay.bench.e2e.SinkReplies.OK;
import static dev.relay.bench.e2e.SinkReplies.QUEUED;
import static dev.relay.bench.e2e.SinkReplies.RCPT_OK;
import static dev.relay.bench.e2e.SinkReplies.TLS_READY;
import static dev.relay.bench.e2e.SinkReplies.TOO_LONG;
import static dev.relay.bench.e2e.SinkReplies.UNKNOWN;
import static dev.relay.bench.e2e.SinkSession.BDAT;
import static dev.relay.bench.e2e.SinkSession.COMMAND;
import static dev.relay.bench.e2e.SinkSession.DATA;

/**
 * Counting SMTP sink after Postfix {@code smtp-sink}: one selector thread accepts, answers and discards. EHLO offers
 * PIPELINING (RFC 2920), 8BITMIME, SIZE and CHUNKING (RFC 3030); every complete command in a read is answered and the
 * replies flushed together; DATA ends at CRLF.CRLF found across reads (RFC 5321 §4.1.1.4) and is un-stuffed
 * (§4.5.2); BDAT chunks are read by count. Per message it reads {@code X-Bench-Sent} (records now − sent in an
 * HdrHistogram, ns) and with {@code verify} recomputes CRC32C of the un-stuffed body against {@code X-Bench-Sum}
 * (missing or different: a mismatch). Replies are fixed: 250 to every envelope command in order, no policy.
 * With a {@link BenchTls} server context it also offers STARTTLS (RFC 3207): the 220 goes out in plaintext, anything
 * the client pipelined after the command is dropped (§4.2), the handshake runs on the loop (tasks inline), and the
 * session starts over (EHLO again); it counts handshakes, and the context counts the full ones.
 *
 * <p>Sessions have one state, {@code COMMAND}, {@code DATA} or {@code BDAT}, and no timeout: the sink stops as a
 * whole after {@code --expect N} messages (plus a short linger for the last replies) or {@code --max-seconds}.
 * One state machine, kept whole past the ~500-line rule of issue 10: the sessions' states above, moved by the
 * loop's reads. Beside it: the session's fields ({@link SinkSession}), the fixed replies ({@link SinkReplies}), the
 * command line ({@link BenchSinkCommand}).
 * Counters are written by the loop thread and readable from any thread; {@link #e2e()} may be called by one thread at
 * a time. Allocation: per connection (buffers, CRC) and per reply none.
 */
public final class BenchSink implements AutoCloseable
{
    private static final long HIGHEST_NS = TimeUnit.HOURS.toNanos(1);
    private final ServerSocketChannel server;
    private final Selector selector;
    private final Consumer<SelectionKey> onReady = this::onReady;
    private final boolean verify;
    private final long expect;
    private final long skip;
    private final BenchTls tls;
    private volatile long tlsHandshakes;
    private final SingleWriterRecorder e2eRecorder = new SingleWriterRecorder(HIGHEST_NS, 3);
    private final Histogram e2eTotal = new Histogram(HIGHEST_NS, 3);
    private Histogram e2eInterval;
    private final Thread thread;
    private volatile boolean closing;
    private volatile long messages;
    private volatile long bytes;
    private volatile long mismatches;
    private volatile long connections;
    private volatile long expectReachedNs;
    private int open;

    private BenchSink(final String host, final int port, final boolean verify, final long expect, final long skip,
        final BenchTls tls) throws IOException
    {
        this.tls = tls;
        this.verify = verify;
        this.expect = expect;
        this.skip = skip;
        selector = Selector.open();
        server = ServerSocketChannel.open();
        server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
        server.bind(new InetSocketAddress(host, port), 1024);
        server.configureBlocking(false);
        server.register(selector, SelectionKey.OP_ACCEPT);
        thread = new Thread(this::runLoop, "bench-sink");
        thread.setDaemon(true);
    }

    /** Starts a verifying sink on 127.0.0.1:{@code port} (0 = any free port) in its own daemon thread. */
    public static BenchSink start(final int port) throws IOException
    {
        return start("127.0.0.1", port, true, 0, 0);
    }

    public static BenchSink start(final String host, final int port, final boolean verify, final long expect,
        final long skip) throws IOException
    {
        return start(host, port, verify, expect, skip, null);
    }

    /** As {@link #start(String, int, boolean, long, long)}, offering STARTTLS with {@code tls} if not null. */
    public static BenchSink start(final String host, final int port, final boolean verify, final long expect,
        final long skip, final BenchTls tls) throws IOException
    {
        final BenchSink sink = new BenchSink(host, port, verify, expect, skip, tls);
        sink.thread.start();
        return sink;
    }

    public int port()
    {
        return server.socket().getLocalPort();
    }

    public long messages()
    {
        return messages;
    }

    public long bytes()
    {
        return bytes;
    }

    public long mismatches()
    {
        return mismatches;
    }

    public long connections()
    {
        return connections;
    }

    /** TLS handshakes completed (full and resumed). */
    public long tlsHandshakes()
    {
        return tlsHandshakes;
    }

    /** TLS handshakes in which the sink sent its certificate (not resumed). */
    public long tlsFullHandshakes()
    {
        return tls == null ? 0 : tls.fullHandshakes();
    }

    /** True once {@code expect} messages arrived and every client left, or 2 s after that. */
    public boolean expectationMet()
    {
        final long reached = expectReachedNs;
        return reached != 0 && (openConnections() == 0 || System.nanoTime() - reached > TimeUnit.SECONDS.toNanos(2));
    }

    private volatile int openSnapshot;

    private int openConnections()
    {
        return openSnapshot;
    }

    /** End-to-end latency so far (sink arrival − {@code X-Bench-Sent}), ns; one caller at a time. */
    public synchronized Histogram e2e()
    {
        e2eInterval = e2eRecorder.getIntervalHistogram(e2eInterval);
        e2eTotal.add(e2eInterval);
        return e2eTotal.copy();
    }

    @Override
    public void close()
    {
        closing = true;
        selector.wakeup();
        try
        {
            thread.join(5_000);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
    }

    private void runLoop()
    {
        try
        {
            while (!closing)
            {
                selector.select(onReady, 100);
                openSnapshot = open;
            }
        }
        catch (final IOException ex)
        {
            System.err.println("bench-sink: selector failed: " + ex);
        }
        finally
        {
            for (final SelectionKey key : selector.keys())
            {
                closeQuietly(key);
            }
            try
            {
                selector.close();
                server.close();
            }
            catch (final IOException ignore)
            {
                // shutting down
            }
        }
    }

    private void onReady(final SelectionKey key)
    {
        try
        {
            if (key.isAcceptable())
            {
                accept();
                return;
            }
            final SinkSession s = (SinkSession)key.attachment();
            if (s.tls != null && !s.tls.established())
            {
                if (!s.tls.handshake(s.channel, s.in))
                {
                    key.interestOps(SelectionKey.OP_READ | (s.tls.wantsWrite() ? SelectionKey.OP_WRITE : 0));
                    return;
                }
                tlsHandshakes = tlsHandshakes + 1;
                key.interestOps(SelectionKey.OP_READ);
                s.tls.unwrapBuffered(s.channel, s.in); // the client's first command may have come with its Finished
            }
            else
            {
                if (key.isWritable() && !flush(s))
                {
                    return;
                }
                if (key.isReadable())
                {
                    final int n = s.tls == null ? s.channel.read(s.in) : s.tls.read(s.channel, s.in);
                    if (n < 0)
                    {
                        close(key);
                        return;
                    }
                }
            }
            process(s);
            // records left when the input buffer was full: nothing on the socket will wake us for them
            while (s.tls != null && key.isValid() && s.tls.hasBufferedInput()
                && s.tls.unwrapBuffered(s.channel, s.in) > 0)
            {
                process(s);
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            close(key);
        }
    }

    private void accept() throws IOException
    {
        SocketChannel ch;
        while ((ch = server.accept()) != null)
        {
            ch.configureBlocking(false);
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            final SinkSession s = new SinkSession(ch);
            s.key = ch.register(selector, SelectionKey.OP_READ, s);
            s.out.put(GREETING);
            open++;
            connections = connections + 1;
            flush(s);
        }
    }

    /** Handles everything complete in the input, then flushes the replies at once (RFC 2920 §3.2). */
    private void process(final SinkSession s) throws IOException
    {
        final ByteBuffer in = s.in;
        final byte[] b = in.array();
        final int end = in.position();
        int p = 0;
        while (p < end && !s.quit && !s.startTls)
        {
            if (s.out.remaining() < 512 && !flush(s))
            {
                break;
            }
            final int next;
            if (s.mode == COMMAND)
            {
                final int lf = indexOf(b, p, end, (byte)'\n');
                if (lf < 0)
                {
                    if (end - p >= 1000)
                    {
                        s.out.put(TOO_LONG);
                        s.quit = true;
                        next = end;
                    }
                    else
                    {
                        break;
                    }
                }
                else
                {
                    command(s, b, p, lf > p && b[lf - 1] == '\r' ? lf - 1 : lf);
                    next = lf + 1;
                }
            }
            else if (s.mode == DATA)
            {
                next = data(s, b, p, end);
                if (next == p)
                {
                    break;
                }
            }
            else
            {
                final int take = (int)Math.min(s.bdatRemaining, end - p);
                content(s, b, p, p + take);
                s.bdatRemaining -= take;
                next = p + take;
                if (s.bdatRemaining == 0)
                {
                    s.mode = COMMAND;
                    if (s.bdatReject)
                    {
                        s.out.put(NEED_RCPT);
                        s.inMessage = false;
                    }
                    else if (s.bdatLast)
                    {
                        endMessage(s);
                    }
                    else
                    {
                        s.out.put(CHUNK_OK);
                    }
                }
            }
            p = next;
        }
        in.position(p).limit(end);
        in.compact();
        if (s.startTls)
        {
            startTls(s);
            return;
        }
        flush(s);
    }

    /** RFC 3207 §4.2: the 220 in plaintext, then the handshake; bytes pipelined after STARTTLS are dropped. */
    private void startTls(final SinkSession s) throws IOException
    {
        s.startTls = false;
        if (!flush(s) || s.out.position() > 0)
        {
            close(s.key);
            return;
        }
        s.in.clear();
        s.reset();
        s.tls = new TlsTransport(tls.serverEngine());
        s.key.interestOps(SelectionKey.OP_READ);
    }

    private void command(final SinkSession s, final byte[] b, final int from, final int to)
    {
        final int verb = to - from >= 4 ? ((b[from] & 0xDF) << 24) | ((b[from + 1] & 0xDF) << 16)
            | ((b[from + 2] & 0xDF) << 8) | (b[from + 3] & 0xDF) : 0;
        switch (verb)
        {
            case 0x45484C4F -> // EHLO
            {
                s.reset();
                s.out.put(tls != null && s.tls == null ? EHLO_STARTTLS : EHLO);
            }
            case 0x53544152 -> // STARTTLS
            {
                if (tls == null || s.tls != null)
                {
                    s.out.put(UNKNOWN);
                }
                else
                {
                    s.out.put(TLS_READY);
                    s.startTls = true;
                }
            }
            case 0x48454C4F -> // HELO
            {
                s.reset();
                s.out.put(HELO);
            }
            case 0x4D41494C -> // MAIL
            {
                if (s.mail)
                {
                    s.out.put(NESTED);
                }
                else
                {
                    s.mail = true;
                    s.out.put(MAIL_OK);
                }
            }
            case 0x52435054 -> // RCPT
            {
                if (!s.mail)
                {
                    s.out.put(NEED_MAIL);
                }
                else
                {
                    s.rcpts++;
                    s.out.put(RCPT_OK);
                }
            }
            case 0x44415441 -> // DATA
            {
                if (s.rcpts == 0)
                {
                    s.out.put(NEED_RCPT);
                }
                else
                {
                    s.out.put(GO_AHEAD);
                    s.mode = DATA;
                    s.beginMessage();
                }
            }
            case 0x42444154 -> bdat(s, b, from + 4, to); // BDAT
            case 0x52534554, 0x4E4F4F50 -> // RSET, NOOP
            {
                if ((b[from] & 0xDF) == 'R')
                {
                    s.reset();
                }
                s.out.put(OK);
            }
            case 0x51554954 -> // QUIT
            {
                s.out.put(BYE);
                s.quit = true;
            }
            default -> s.out.put(UNKNOWN);
        }
    }

    /** RFC 3030 §2: {@code BDAT size [LAST]}; the chunk is read even when the command is refused. */
    private void bdat(final SinkSession s, final byte[] b, final int from, final int to)
    {
        int p = from;
        while (p < to && b[p] == ' ')
        {
            p++;
        }
        long size = 0;
        final int digits = p;
        while (p < to && b[p] >= '0' && b[p] <= '9' && p - digits < 18)
        {
            size = size * 10 + (b[p++] - '0');
        }
        if (p == digits)
        {
            s.out.put(BAD_BDAT);
            return;
        }
        while (p < to && b[p] == ' ')
        {
            p++;
        }
        s.bdatLast = AsciiBytes.startsWithIgnoreCase(b, p, to, "LAST");
        s.bdatRemaining = size;
        s.bdatReject = s.rcpts == 0;
        if (!s.inMessage && !s.bdatReject)
        {
            s.beginMessage();
        }
        s.mode = BDAT;
        if (size == 0)
        {
            s.mode = COMMAND;
            if (s.bdatReject)
            {
                s.out.put(NEED_RCPT);
            }
            else if (s.bdatLast)
            {
                endMessage(s);
            }
            else
            {
                s.out.put(CHUNK_OK);
            }
        }
    }

    /** Consumes DATA content from {@code p}; returns where it stopped (== p when it needs more input). */
    private int data(final SinkSession s, final byte[] b, final int from, final int end)
    {
        int p = from;
        while (p < end)
        {
            if (s.lineStart && b[p] == '.')
            {
                if (end - p < 3)
                {
                    return p;
                }
                if (b[p + 1] == '\r' && b[p + 2] == '\n')
                {
                    endMessage(s);
                    s.mode = COMMAND;
                    return p + 3;
                }
                s.wireBytes++;
                p++; // RFC 5321 §4.5.2: drop the stuffed dot
            }
            final int lf = indexOf(b, p, end, (byte)'\n');
            final int stop = lf < 0 ? end : lf + 1;
            content(s, b, p, stop);
            s.lineStart = lf >= 0;
            p = stop;
        }
        return p;
    }

    /** Message content after un-stuffing: header lines are parsed, the body is checksummed. */
    private void content(final SinkSession s, final byte[] b, final int from, final int to)
    {
        s.wireBytes += to - from;
        int p = from;
        while (p < to && s.inHeaders)
        {
            final byte c = b[p++];
            if (s.headerLength < s.header.length)
            {
                s.header[s.headerLength++] = c;
            }
            if (c == '\n')
            {
                header(s);
                s.headerLength = 0;
            }
        }
        if (p < to && verify)
        {
            s.crc.update(b, p, to - p);
            s.bodyLength += to - p;
        }
    }

    private void header(final SinkSession s)
    {
        final byte[] h = s.header;
        final int len = s.headerLength;
        if (len <= 2 && (len == 1 || h[0] == '\r'))
        {
            s.inHeaders = false;
            return;
        }
        if (AsciiBytes.startsWithIgnoreCase(h, 0, len, "X-BENCH-SENT:"))
        {
            s.sentMicros = parseLong(h, 13, len);
        }
        else if (AsciiBytes.startsWithIgnoreCase(h, 0, len, "X-BENCH-SUM:"))
        {
            int p = 12;
            while (p < len && h[p] == ' ')
            {
                p++;
            }
            long sum = 0;
            while (p < len && Character.digit(h[p], 16) >= 0)
            {
                sum = (sum << 4) | Character.digit(h[p++], 16);
            }
            s.expectedSum = (int)sum;
            s.expectedLength = p < len && h[p] == '/' ? parseLong(h, p + 1, len) : -1;
            s.hasSum = true;
        }
    }

    private static long parseLong(final byte[] h, final int from, final int to)
    {
        int p = from;
        while (p < to && h[p] == ' ')
        {
            p++;
        }
        long v = 0;
        final int start = p;
        while (p < to && h[p] >= '0' && h[p] <= '9' && p - start < 18)
        {
            v = v * 10 + (h[p++] - '0');
        }
        return p == start ? -1 : v;
    }

    private void endMessage(final SinkSession s)
    {
        final long now = System.nanoTime();
        if (verify && (!s.hasSum || (int)s.crc.getValue() != s.expectedSum || s.bodyLength != s.expectedLength))
        {
            mismatches = mismatches + 1;
        }
        final long count = messages + 1;
        if (s.sentMicros >= 0 && count > skip)
        {
            final long ns = (BenchMessages.epochMicros(now) - s.sentMicros) * 1_000;
            e2eRecorder.recordValue(Math.max(0, Math.min(ns, HIGHEST_NS)));
        }
        bytes = bytes + s.wireBytes;
        messages = count;
        if (expect > 0 && count == expect)
        {
            expectReachedNs = now;
        }
        s.out.put(QUEUED);
        s.reset();
    }

    private static int indexOf(final byte[] b, final int from, final int to, final byte value)
    {
        for (int i = from; i < to; i++)
        {
            if (b[i] == value)
            {
                return i;
            }
        }
        return -1;
    }

    /** Writes pending replies; false (and OP_WRITE, no reading) while the socket is full. */
    private boolean flush(final SinkSession s) throws IOException
    {
        s.out.flip();
        if (s.tls != null)
        {
            if (!s.tls.write(s.channel, s.out))
            {
                s.out.compact();
                s.key.interestOps(SelectionKey.OP_WRITE);
                return false;
            }
        }
        else
        {
            while (s.out.hasRemaining())
            {
                if (s.channel.write(s.out) == 0)
                {
                    s.out.compact();
                    s.key.interestOps(SelectionKey.OP_WRITE);
                    return false;
                }
            }
        }
        s.out.clear();
        if (s.quit)
        {
            close(s.key);
            return false;
        }
        s.key.interestOps(SelectionKey.OP_READ);
        return true;
    }

    private void close(final SelectionKey key)
    {
        if (key.isValid() && key.attachment() instanceof SinkSession)
        {
            open--;
        }
        closeQuietly(key);
    }

    private static void closeQuietly(final SelectionKey key)
    {
        key.cancel();
        try
        {
            key.channel().close();
        }
        catch (final IOException ignore)
        {
            // already gone
        }
    }

    /** The command line ({@link BenchSinkCommand}): ops/bench and ops/soak start the sink by this class's name. */
    public static void main(final String[] args) throws Exception
    {
        BenchSinkCommand.main(args);
    }
}
