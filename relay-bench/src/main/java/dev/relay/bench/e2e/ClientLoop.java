package dev.relay.bench.e2e;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import org.HdrHistogram.SingleWriterRecorder;

import static dev.relay.bench.e2e.AsciiBytes.isDigit;
import static dev.relay.bench.e2e.AsciiBytes.startsWithIgnoreCase;

/**
 * One selector thread of {@link LoadGenerator}: owns its share of the client connections, their buffers and its own
 * two latency recorders (accept: end of data written → final 250; transaction: intended start → final 250). Messages
 * are claimed from the shared {@link RunControl}; nothing else is shared with other threads.
 *
 * <p>Connection states and their timeout ({@code --timeout}, default 30 s, checked every 100 ms):
 * <ul>
 * <li>{@code CONNECTING}, {@code GREETING}, {@code EHLO}, and with TLS {@code STARTTLS} (waiting for its 220) and
 * {@code HANDSHAKE} (then EHLO again, RFC 3207 §4.2): timeout; failure counts as a connection error, the slot backs off
 * 100 ms and reconnects while messages remain;</li>
 * <li>{@code IDLE}: greeted, no transaction; no timeout (open loop waits here for the schedule); EOF is not an error;</li>
 * <li>{@code TXN}: a transaction in flight (MAIL, RCPT..., DATA/354, body, 250 or BDAT LAST, 250); timeout; any non
 * 2xx/354 reply, EOF or I/O error fails the message, the connection is dropped and replaced;</li>
 * <li>{@code QUIT}: waiting for 221; timeout; then closed;</li>
 * <li>{@code BACKOFF}: closed, reconnect at the deadline; {@code CLOSED}: no more work.</li>
 * </ul>
 * One state machine, kept whole past the ~500-line rule of issue 10: the connections' states above, moved by ready
 * keys, replies and the deadline scan; each connection's fields are a {@link ClientConnection}.
 * <p>
 * Hot path allocation: none per message (reused buffers, body duplicates made at connect, bound callbacks); connecting
 * allocates a channel and key.
 */
final class ClientLoop implements Runnable
{
    private static final long BACKOFF_NS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long SCAN_INTERVAL_NS = TimeUnit.MILLISECONDS.toNanos(100);

    enum State
    {
        CONNECTING, GREETING, EHLO, STARTTLS, HANDSHAKE, IDLE, TXN, QUIT, BACKOFF, CLOSED
    }

    private final LoadGenerator.Options options;
    private final RunControl control;
    private final BenchMessages messages;
    private final InetSocketAddress address;
    private final ClientConnection[] conns;
    private final Selector selector;
    private final Consumer<SelectionKey> onReady = this::onReady;
    private final byte[] ehlo;
    private final byte[] startTls;
    private final BenchTls tlsContext;
    private final byte[] mailFrom;
    private final byte[][] rcptTo;
    /** With {@code --domains N}: the one RCPT TO of message {@code seq} is {@code domainRcptTo[seq % N]}; else null. */
    private final byte[][] domainRcptTo;
    /** RCPT TO commands per message. */
    private final int rcptCount;
    private final long timeoutNs;
    private final long highestNs;
    final SingleWriterRecorder acceptRecorder;
    final SingleWriterRecorder txnRecorder;

    // state, read by the control thread only through the volatile/ordered accessors below
    private volatile long accepted;
    private volatile long acceptedBodyBytes;
    private volatile long msgErrors;
    private volatile long connErrors;
    private volatile long lastCompletionNs;
    private volatile long tlsHandshakes;
    private long nextScanNs;

    ClientLoop(
        final LoadGenerator.Options options,
        final RunControl control,
        final BenchMessages messages,
        final int connections,
        final long highestNs,
        final BenchTls tls,
        final int firstSlot) throws IOException
    {
        this.tlsContext = tls;
        this.startTls = BenchMessages.ascii("STARTTLS\r\n");
        this.options = options;
        this.control = control;
        this.messages = messages;
        this.address = new InetSocketAddress(options.host, options.port);
        this.selector = Selector.open();
        this.timeoutNs = TimeUnit.MILLISECONDS.toNanos(options.timeoutMs);
        this.ehlo = BenchMessages.ascii("EHLO bench.test\r\n");
        this.mailFrom = BenchMessages.ascii("MAIL FROM:<" + options.from + ">\r\n");
        this.rcptTo = new byte[options.to.length][];
        for (int i = 0; i < rcptTo.length; i++)
        {
            rcptTo[i] = BenchMessages.ascii("RCPT TO:<" + options.to[i] + ">\r\n");
        }
        if (options.domains > 0)
        {
            this.domainRcptTo = new byte[options.domains][];
            for (int i = 0; i < options.domains; i++)
            {
                domainRcptTo[i] = BenchMessages.ascii("RCPT TO:<b@" + LoadGenerator.domainName(i) + ">\r\n");
            }
        }
        else
        {
            this.domainRcptTo = null;
        }
        this.rcptCount = domainRcptTo == null ? rcptTo.length : 1;
        this.highestNs = highestNs;
        this.acceptRecorder = new SingleWriterRecorder(highestNs, 3);
        this.txnRecorder = new SingleWriterRecorder(highestNs, 3);
        conns = new ClientConnection[connections];
        for (int i = 0; i < connections; i++)
        {
            conns[i] = new ClientConnection(firstSlot + i, messages, tls != null);
        }
    }

    long accepted()
    {
        return accepted;
    }

    /** Body bytes (the mix's sizes, headers not counted) of the messages accepted so far. */
    long acceptedBodyBytes()
    {
        return acceptedBodyBytes;
    }

    long msgErrors()
    {
        return msgErrors;
    }

    long connErrors()
    {
        return connErrors;
    }

    long lastCompletionNs()
    {
        return lastCompletionNs;
    }

    /** TLS handshakes completed (full and resumed). */
    long tlsHandshakes()
    {
        return tlsHandshakes;
    }

    /** Wakes the loop after {@link RunControl#stop} so that it notices at once. */
    void wakeup()
    {
        selector.wakeup();
    }

    @Override
    public void run()
    {
        try
        {
            final long start = System.nanoTime();
            for (final ClientConnection c : conns)
            {
                connect(c, start);
            }
            while (!control.stopped() && !allClosed())
            {
                final long waitNs = startDueMessages(System.nanoTime());
                if (waitNs <= 0)
                {
                    selector.selectNow(onReady);
                }
                else
                {
                    selector.select(onReady, Math.max(1, Math.min(100, TimeUnit.NANOSECONDS.toMillis(waitNs + 999_999))));
                }
                final long now = System.nanoTime();
                if (now - nextScanNs >= 0)
                {
                    scanDeadlines(now);
                    nextScanNs = now + SCAN_INTERVAL_NS;
                }
            }
        }
        catch (final IOException ex)
        {
            control.error("selector: " + ex);
        }
        finally
        {
            for (final ClientConnection c : conns)
            {
                closeChannel(c);
            }
            try
            {
                selector.close();
            }
            catch (final IOException ignore)
            {
                // closing anyway
            }
        }
    }

    private boolean allClosed()
    {
        for (final ClientConnection c : conns)
        {
            if (c.state != State.CLOSED)
            {
                return false;
            }
        }
        return true;
    }

    /** Starts a message on idle connections while one is due; returns ns until the next one is due (open loop). */
    private long startDueMessages(final long now)
    {
        long waitNs = Long.MAX_VALUE;
        for (final ClientConnection c : conns)
        {
            if (c.state == State.IDLE)
            {
                final long next = tryStart(c, now);
                if (next > 0)
                {
                    waitNs = Math.min(waitNs, next);
                }
            }
        }
        return waitNs;
    }

    /** Starts the next message on an idle connection, or QUITs it; returns ns until the next is due, or 0. */
    private long tryStart(final ClientConnection c, final long now)
    {
        if (options.perConnection > 0 && c.messagesOnConn >= options.perConnection)
        {
            quit(c, now);
            return 0;
        }
        final long seq = control.claim(now);
        if (seq == RunControl.EXHAUSTED)
        {
            quit(c, now);
            return 0;
        }
        if (seq < 0)
        {
            return control.nanosUntilNextDue(now);
        }
        startTransaction(c, seq, control.intendedNs(seq, now), now);
        return 0;
    }

    private void startTransaction(final ClientConnection c, final long seq, final long intendedNs, final long now)
    {
        c.seq = seq;
        c.intendedNs = intendedNs;
        c.step = 0;
        c.state = State.TXN;
        c.deadlineNs = now + timeoutNs;
        final long headerSeq = control.seqOffset() + seq;
        final int sizeIndex = messages.mix().sizeIndexOf(headerSeq);
        final int variant = BenchMessages.variantOf(headerSeq);
        c.cmd.clear();
        c.hdr.clear().flip();
        c.out[2] = c.empty;
        c.cmd.put(mailFrom);
        if (c.pipelining)
        {
            for (int i = 0; i < rcptCount; i++)
            {
                c.cmd.put(rcpt(headerSeq, i));
            }
            if (c.chunking)
            {
                putBdat(c, headerSeq, sizeIndex, variant);
            }
            else
            {
                BenchMessages.put(c.cmd, "DATA\r\n");
            }
            c.lastSentStep = rcptCount + 1;
        }
        else
        {
            c.lastSentStep = 0;
        }
        c.cmd.flip();
        flush(c);
    }

    /** The {@code index}th RCPT TO command of message {@code headerSeq}. */
    private byte[] rcpt(final long headerSeq, final int index)
    {
        return domainRcptTo == null ? rcptTo[index] : domainRcptTo[(int)(headerSeq % domainRcptTo.length)];
    }

    /** BDAT n LAST plus headers and raw body (RFC 3030 §2): one write, the end of data is the end of the chunk. */
    private void putBdat(final ClientConnection c, final long headerSeq, final int sizeIndex, final int variant)
    {
        c.hdr.clear();
        messages.writeHeaders(c.hdr, headerSeq, BenchMessages.epochMicros(c.intendedNs));
        c.hdr.flip();
        final ByteBuffer body = c.raw[sizeIndex][variant];
        body.rewind();
        BenchMessages.put(c.cmd, "BDAT ");
        BenchMessages.putLong(c.cmd, c.hdr.remaining() + body.remaining());
        BenchMessages.put(c.cmd, " LAST\r\n");
        c.out[2] = body;
        c.bodyInFlight = true;
    }

    private void sendNextCommand(final ClientConnection c, final long now)
    {
        final int next = c.lastSentStep + 1;
        c.cmd.clear();
        c.hdr.clear().flip();
        c.out[2] = c.empty;
        if (next <= rcptCount)
        {
            c.cmd.put(rcpt(control.seqOffset() + c.seq, next - 1));
        }
        else if (c.chunking)
        {
            final long headerSeq = control.seqOffset() + c.seq;
            putBdat(c, headerSeq, messages.mix().sizeIndexOf(headerSeq), BenchMessages.variantOf(headerSeq));
        }
        else
        {
            BenchMessages.put(c.cmd, "DATA\r\n");
        }
        c.cmd.flip();
        c.lastSentStep = next;
        flush(c);
    }

    private void sendBody(final ClientConnection c)
    {
        final long headerSeq = control.seqOffset() + c.seq;
        c.cmd.clear().flip();
        c.hdr.clear();
        messages.writeHeaders(c.hdr, headerSeq, BenchMessages.epochMicros(c.intendedNs));
        c.hdr.flip();
        final ByteBuffer body = c.stuffed[messages.mix().sizeIndexOf(headerSeq)][BenchMessages.variantOf(headerSeq)];
        body.rewind();
        c.out[2] = body;
        c.bodyInFlight = true;
        c.lastSentStep++;
        flush(c);
    }

    private void onReply(final ClientConnection c, final int code, final long now)
    {
        switch (c.state)
        {
            case GREETING:
                if (code != 220)
                {
                    failConnection(c, "greeting " + code, now);
                    return;
                }
                c.state = State.EHLO;
                c.deadlineNs = now + timeoutNs;
                c.pipelining = false;
                c.chunking = false;
                c.cmd.clear();
                c.cmd.put(ehlo).flip();
                c.hdr.clear().flip();
                c.out[2] = c.empty;
                flush(c);
                break;
            case EHLO:
                if (code != 250)
                {
                    failConnection(c, "EHLO " + code, now);
                    return;
                }
                if (tlsContext != null && c.tls == null)
                {
                    c.state = State.STARTTLS;
                    c.deadlineNs = now + timeoutNs;
                    c.cmd.clear();
                    c.cmd.put(startTls).flip();
                    c.hdr.clear().flip();
                    c.out[2] = c.empty;
                    flush(c);
                    return;
                }
                c.pipelining &= options.pipelining;
                c.chunking &= options.bdat;
                c.state = State.IDLE;
                c.messagesOnConn = 0;
                tryStart(c, now);
                break;
            case STARTTLS:
                if (code != 220)
                {
                    failConnection(c, "STARTTLS " + code, now);
                    return;
                }
                startHandshake(c, now);
                break;
            case TXN:
                onTransactionReply(c, code, now);
                break;
            case QUIT:
                closeChannel(c);
                reopenOrClose(c, now, false);
                break;
            default:
                failConnection(c, "unexpected reply " + code + " in " + c.state, now);
                break;
        }
    }

    /** RFC 3207 §4: after the 220 the next bytes are the handshake's; nothing the server sent after it is kept. */
    private void startHandshake(final ClientConnection c, final long now)
    {
        try
        {
            c.tls = new TlsTransport(tlsContext.clientEngine(options.host, c.slot));
        }
        catch (final IOException ex)
        {
            failConnection(c, "TLS: " + ex.getMessage(), now);
            return;
        }
        c.state = State.HANDSHAKE;
        c.deadlineNs = now + timeoutNs;
        c.in.clear();
        c.cmd.clear().flip();
        c.hdr.clear().flip();
        c.out[2] = c.empty;
        driveHandshake(c, now);
    }

    private void driveHandshake(final ClientConnection c, final long now)
    {
        try
        {
            if (!c.tls.handshake(c.channel, c.in))
            {
                c.key.interestOps(SelectionKey.OP_READ | (c.tls.wantsWrite() ? SelectionKey.OP_WRITE : 0));
                return;
            }
        }
        catch (final IOException ex)
        {
            failConnection(c, "TLS handshake: " + ex.getMessage(), now);
            return;
        }
        tlsHandshakes = tlsHandshakes + 1;
        c.state = State.EHLO;
        c.deadlineNs = now + timeoutNs;
        c.pipelining = false;
        c.chunking = false;
        c.cmd.clear();
        c.cmd.put(ehlo).flip();
        flush(c);
    }

    private void onTransactionReply(final ClientConnection c, final int code, final long now)
    {
        final int step = c.step;
        final int dataStep = rcptCount + 1;
        final boolean ok = step == dataStep && !c.chunking ? code == 354 : code / 100 == 2;
        if (!ok)
        {
            failMessage(c, step == 0 ? "MAIL" : step < dataStep ? "RCPT" : step == dataStep ? "DATA/BDAT" : "end of data",
                code, now);
            return;
        }
        c.step++;
        final boolean last = step == dataStep + (c.chunking ? 0 : 1);
        if (last)
        {
            completeMessage(c, now);
        }
        else if (step == dataStep)
        {
            sendBody(c);
        }
        else if (step == c.lastSentStep)
        {
            sendNextCommand(c, now);
        }
    }

    private void completeMessage(final ClientConnection c, final long now)
    {
        acceptRecorder.recordValue(clamp(now - c.eodNs));
        txnRecorder.recordValue(clamp(now - c.intendedNs));
        c.messagesOnConn++;
        lastCompletionNs = now;
        accepted = accepted + 1;
        final SizeMix mix = messages.mix();
        acceptedBodyBytes = acceptedBodyBytes + mix.size(mix.sizeIndexOf(control.seqOffset() + c.seq));
        c.state = State.IDLE;
        c.deadlineNs = Long.MAX_VALUE;
        tryStart(c, now);
    }

    private long clamp(final long valueNs)
    {
        return Math.max(0, Math.min(valueNs, highestNs));
    }

    private void quit(final ClientConnection c, final long now)
    {
        c.state = State.QUIT;
        c.deadlineNs = now + timeoutNs;
        c.cmd.clear();
        BenchMessages.put(c.cmd, "QUIT\r\n");
        c.cmd.flip();
        c.hdr.clear().flip();
        c.out[2] = c.empty;
        flush(c);
    }

    private void failMessage(final ClientConnection c, final String what, final int code, final long now)
    {
        msgErrors = msgErrors + 1;
        lastCompletionNs = now;
        control.error(what + " " + (code < 0 ? "no reply" : Integer.toString(code)));
        closeChannel(c);
        reopenOrClose(c, now, false);
    }

    private void failConnection(final ClientConnection c, final String why, final long now)
    {
        if (c.state == State.TXN)
        {
            failMessage(c, why, -1, now);
            return;
        }
        if (c.state == State.IDLE)
        {
            closeChannel(c);
            reopenOrClose(c, now, false);
            return;
        }
        connErrors = connErrors + 1;
        control.error("connection: " + why);
        closeChannel(c);
        reopenOrClose(c, now, true);
    }

    private void reopenOrClose(final ClientConnection c, final long now, final boolean backoff)
    {
        if (control.stopped() || control.exhausted())
        {
            c.state = State.CLOSED;
        }
        else if (backoff)
        {
            c.state = State.BACKOFF;
            c.deadlineNs = now + BACKOFF_NS;
        }
        else
        {
            connect(c, now);
        }
    }

    private void connect(final ClientConnection c, final long now)
    {
        try
        {
            final SocketChannel ch = SocketChannel.open();
            c.channel = ch;
            ch.configureBlocking(false);
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            c.state = State.CONNECTING;
            c.deadlineNs = now + timeoutNs;
            c.tls = null;
            c.in.clear();
            c.cmd.clear().flip();
            c.hdr.clear().flip();
            c.out[2] = c.empty;
            c.key = ch.register(selector, 0, c);
            if (ch.connect(address))
            {
                c.state = State.GREETING;
                c.key.interestOps(SelectionKey.OP_READ);
            }
            else
            {
                c.key.interestOps(SelectionKey.OP_CONNECT);
            }
        }
        catch (final IOException ex)
        {
            c.state = State.CONNECTING;
            failConnection(c, "connect: " + ex.getMessage(), now);
        }
    }

    private void onReady(final SelectionKey key)
    {
        final ClientConnection c = (ClientConnection)key.attachment();
        final long now = System.nanoTime();
        try
        {
            if (!key.isValid())
            {
                return;
            }
            if (key.isConnectable())
            {
                c.channel.finishConnect();
                c.state = State.GREETING;
                c.deadlineNs = now + timeoutNs;
                key.interestOps(SelectionKey.OP_READ);
                return;
            }
            if (c.state == State.HANDSHAKE)
            {
                driveHandshake(c, now);
                return;
            }
            if (key.isWritable())
            {
                flush(c);
            }
            if (key.isValid() && key.isReadable())
            {
                read(c, now);
            }
        }
        catch (final IOException ex)
        {
            failConnection(c, ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage(), now);
        }
    }

    private void read(final ClientConnection c, final long now) throws IOException
    {
        final int n = c.tls == null ? c.channel.read(c.in) : c.tls.read(c.channel, c.in);
        if (n < 0)
        {
            failConnection(c, "server closed the connection in " + c.state, now);
            return;
        }
        final byte[] buf = c.in.array();
        final int end = c.in.position();
        int lineStart = 0;
        for (int i = 0; i < end; i++)
        {
            if (buf[i] != '\n')
            {
                continue;
            }
            final int len = i - lineStart;
            if (len < 3 || !isDigit(buf[lineStart]) || !isDigit(buf[lineStart + 1]) || !isDigit(buf[lineStart + 2]))
            {
                failConnection(c, "malformed reply line", now);
                return;
            }
            final int code = (buf[lineStart] - '0') * 100 + (buf[lineStart + 1] - '0') * 10 + (buf[lineStart + 2] - '0');
            final boolean more = len > 3 && buf[lineStart + 3] == '-';
            if (c.state == State.EHLO && len > 4)
            {
                noteCapability(c, buf, lineStart + 4, i);
            }
            lineStart = i + 1;
            if (!more)
            {
                final SocketChannel before = c.channel;
                final TlsTransport tlsBefore = c.tls;
                onReply(c, code, now);
                if (c.channel != before || c.state == State.CLOSED || c.state == State.BACKOFF)
                {
                    return; // connection was replaced: the rest of this buffer belonged to the old one
                }
                if (c.tls != tlsBefore)
                {
                    return; // STARTTLS: the buffer was cleared for the handshake
                }
            }
        }
        c.in.position(lineStart).limit(end);
        c.in.compact();
        if (!c.in.hasRemaining())
        {
            failConnection(c, "reply line too long", now);
        }
    }

    private static void noteCapability(final ClientConnection c, final byte[] buf, final int from, final int lf)
    {
        if (startsWithIgnoreCase(buf, from, lf, "PIPELINING"))
        {
            c.pipelining = true;
        }
        else if (startsWithIgnoreCase(buf, from, lf, "CHUNKING"))
        {
            c.chunking = true;
        }
    }

    private void flush(final ClientConnection c)
    {
        try
        {
            final SocketChannel ch = c.channel;
            if (c.tls != null)
            {
                if (!c.tls.write(ch, c.out))
                {
                    c.key.interestOps(SelectionKey.OP_READ | SelectionKey.OP_WRITE);
                    return;
                }
            }
            else
            {
                while (c.out[0].hasRemaining() || c.out[1].hasRemaining() || c.out[2].hasRemaining())
                {
                    if (ch.write(c.out) == 0)
                    {
                        c.key.interestOps(SelectionKey.OP_READ | SelectionKey.OP_WRITE);
                        return;
                    }
                }
            }
            if (c.bodyInFlight)
            {
                c.bodyInFlight = false;
                c.eodNs = System.nanoTime();
            }
            c.key.interestOps(SelectionKey.OP_READ);
        }
        catch (final IOException ex)
        {
            failConnection(c, "write: " + ex.getMessage(), System.nanoTime());
        }
    }

    private void scanDeadlines(final long now)
    {
        for (final ClientConnection c : conns)
        {
            if (c.state == State.CLOSED || c.deadlineNs == Long.MAX_VALUE || now - c.deadlineNs < 0)
            {
                continue;
            }
            if (c.state == State.BACKOFF)
            {
                if (control.exhausted() || control.stopped())
                {
                    c.state = State.CLOSED;
                }
                else
                {
                    connect(c, now);
                }
            }
            else if (c.state != State.IDLE)
            {
                failConnection(c, "timeout in " + c.state, now);
            }
        }
    }

    private void closeChannel(final ClientConnection c)
    {
        if (c.channel != null)
        {
            try
            {
                c.channel.close();
            }
            catch (final IOException ignore)
            {
                // counted by the caller
            }
            c.channel = null;
            c.key = null;
        }
        c.tls = null;
        c.bodyInFlight = false;
        c.deadlineNs = Long.MAX_VALUE;
    }
}
