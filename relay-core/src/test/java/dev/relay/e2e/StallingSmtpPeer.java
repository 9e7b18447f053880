package dev.relay.e2e;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A destination that misbehaves in the ways a real one stalls a relay's outbound session, at the byte level the
 * scripted {@code TestSmtpSink} does not reach: it goes silent at a chosen step, stops reading in the middle of a
 * body, reads a body at a trickle, or answers 552 in the middle of a body and closes. Until then it speaks plain
 * SMTP (no extensions but PIPELINING-free EHLO), and after the first connection it can be told to behave.
 * <p>
 * Its sockets have a small receive buffer, so a body of a few MiB fills the kernel's buffers on both sides and the
 * relay's output really blocks. One thread per connection, one acceptor; {@link #close()} closes every socket and
 * joins them. Counts connections, closes seen (the relay hung up) and messages accepted.
 */
final class StallingSmtpPeer implements AutoCloseable
{
    /** What the peer does at its one misbehaving step. */
    enum Mode
    {
        /** Plain SMTP; every message accepted. */
        NORMAL,
        /** Never greets. */
        SILENT_AT_GREETING,
        /** Greets, then never answers EHLO. */
        SILENT_AT_EHLO,
        /** Never answers MAIL. */
        SILENT_AT_MAIL,
        /** Never answers RCPT. */
        SILENT_AT_RCPT,
        /** Never answers DATA (no 354). */
        SILENT_AT_DATA,
        /** Reads the whole body, never answers the final dot. */
        SILENT_AT_DATA_END,
        /**
         * After 354, reads {@link #STALL_AFTER_BYTES} of the body, then stops reading for {@link #stallMs} (the
         * socket stays open), then reads on to the end of the stream without answering.
         */
        STOP_READING_IN_BODY,
        /** Reads the body at {@link #trickleBytesPerSecond}. */
        TRICKLE_BODY,
        /** After {@link #STALL_AFTER_BYTES} of the body, answers 552 and closes. */
        EARLY_552
    }

    static final int STALL_AFTER_BYTES = 64 * 1024;
    private static final int RECEIVE_BUFFER = 16 * 1024;

    private final ServerSocket server;
    private final Thread acceptor;
    private final List<Thread> threads = new CopyOnWriteArrayList<>();
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final AtomicInteger connections = new AtomicInteger();
    private final AtomicInteger closedByRelay = new AtomicInteger();
    private final AtomicInteger messages = new AtomicInteger();
    private final AtomicLong bodyBytesRead = new AtomicLong();
    private final List<String> messageIds = new CopyOnWriteArrayList<>();
    private volatile Mode mode;
    private volatile long trickleBytesPerSecond = 1024 * 1024;
    private volatile long stallMs = 5_000;
    private volatile boolean closed;

    private StallingSmtpPeer(final Mode mode) throws IOException
    {
        this.mode = mode;
        server = new ServerSocket();
        server.setReceiveBufferSize(RECEIVE_BUFFER);
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        acceptor = new Thread(this::acceptLoop, "stalling-peer-acceptor");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    static StallingSmtpPeer start(final Mode mode) throws IOException
    {
        return new StallingSmtpPeer(mode);
    }

    int port()
    {
        return server.getLocalPort();
    }

    /** From the next connection on. */
    StallingSmtpPeer mode(final Mode mode)
    {
        this.mode = mode;
        return this;
    }

    StallingSmtpPeer trickle(final long bytesPerSecond)
    {
        this.trickleBytesPerSecond = bytesPerSecond;
        return this;
    }

    StallingSmtpPeer stall(final long ms)
    {
        this.stallMs = ms;
        return this;
    }

    int connections()
    {
        return connections.get();
    }

    /** Connections the relay closed (end of stream or reset seen by the peer). */
    int closedByRelay()
    {
        return closedByRelay.get();
    }

    int messages()
    {
        return messages.get();
    }

    long bodyBytesRead()
    {
        return bodyBytesRead.get();
    }

    List<String> messageIds()
    {
        return new ArrayList<>(messageIds);
    }

    private void acceptLoop()
    {
        while (!closed)
        {
            final Socket socket;
            try
            {
                socket = server.accept();
            }
            catch (final IOException ex)
            {
                return;
            }
            sockets.add(socket);
            connections.incrementAndGet();
            final Mode connectionMode = mode;
            final Thread thread = new Thread(() -> serve(socket, connectionMode), "stalling-peer-" + connections);
            thread.setDaemon(true);
            threads.add(thread);
            thread.start();
        }
    }

    private void serve(final Socket socket, final Mode mode)
    {
        try (socket)
        {
            final InputStream in = new BufferedInputStream(socket.getInputStream(), 4096);
            final OutputStream out = socket.getOutputStream();
            if (mode == Mode.SILENT_AT_GREETING)
            {
                drainUntilClosed(in);
                return;
            }
            reply(out, "220 stalling.test ESMTP");
            while (true)
            {
                final String line = readLine(in);
                if (line == null)
                {
                    closedByRelay.incrementAndGet();
                    return;
                }
                final String verb = line.length() >= 4 ? line.substring(0, 4).toUpperCase() : line.toUpperCase();
                if (silentAt(mode, verb))
                {
                    drainUntilClosed(in);
                    return;
                }
                switch (verb)
                {
                    case "EHLO":
                        reply(out, "250-stalling.test\r\n250 8BITMIME");
                        break;
                    case "HELO":
                    case "MAIL":
                    case "RCPT":
                    case "RSET":
                    case "NOOP":
                        reply(out, "250 2.0.0 ok");
                        break;
                    case "QUIT":
                        reply(out, "221 2.0.0 bye");
                        return;
                    case "DATA":
                        reply(out, "354 go ahead");
                        if (!readBody(in, out, mode))
                        {
                            return;
                        }
                        break;
                    default:
                        reply(out, "502 5.5.2 not here");
                        break;
                }
            }
        }
        catch (final IOException ex)
        {
            closedByRelay.incrementAndGet();
        }
    }

    private static boolean silentAt(final Mode mode, final String verb)
    {
        switch (mode)
        {
            case SILENT_AT_EHLO:
                return verb.equals("EHLO") || verb.equals("HELO");
            case SILENT_AT_MAIL:
                return verb.equals("MAIL");
            case SILENT_AT_RCPT:
                return verb.equals("RCPT");
            case SILENT_AT_DATA:
                return verb.equals("DATA");
            default:
                return false;
        }
    }

    /** @return false when the connection is over (the peer closed it, or the relay did). */
    private boolean readBody(final InputStream in, final OutputStream out, final Mode mode) throws IOException
    {
        final ByteArrayOutputStream body = new ByteArrayOutputStream();
        final byte[] chunk = new byte[4096];
        // the end of data is CRLF.CRLF; the 354 came right after a command line, so a body starting with ".\r\n"
        // (empty) is the same pattern with the command's CRLF in front
        int matched = 2;
        final long started = System.nanoTime();
        long read = 0;
        while (true)
        {
            if ((mode == Mode.STOP_READING_IN_BODY) && read >= STALL_AFTER_BYTES)
            {
                // stop reading: the relay's writes back up; then see whether it has hung up meanwhile
                sleepQuietly(stallMs);
                drainUntilClosed(in);
                return false;
            }
            if (mode == Mode.EARLY_552 && read >= STALL_AFTER_BYTES)
            {
                reply(out, "552 5.3.4 message too big for this peer");
                return false;
            }
            int room = chunk.length;
            if (mode == Mode.TRICKLE_BODY)
            {
                final long allowed = (System.nanoTime() - started) * trickleBytesPerSecond / 1_000_000_000L - read;
                if (allowed <= 0)
                {
                    sleepQuietly(10);
                    continue;
                }
                room = (int)Math.min(room, allowed);
            }
            final int n = in.read(chunk, 0, room);
            if (n < 0)
            {
                closedByRelay.incrementAndGet();
                return false;
            }
            read += n;
            bodyBytesRead.addAndGet(n);
            for (int i = 0; i < n; i++)
            {
                final byte b = chunk[i];
                body.write(b);
                matched = advance(matched, b);
                if (matched == 5)
                {
                    if (i + 1 < n)
                    {
                        throw new IOException("pipelined input after the body; this peer does not expect it");
                    }
                    if (mode == Mode.SILENT_AT_DATA_END)
                    {
                        drainUntilClosed(in);
                        return false;
                    }
                    final String text = body.toString(StandardCharsets.ISO_8859_1);
                    final int at = text.indexOf("Message-ID: <");
                    if (at >= 0)
                    {
                        messageIds.add(text.substring(at + 13, text.indexOf('@', at)));
                    }
                    messages.incrementAndGet();
                    reply(out, "250 2.0.0 accepted");
                    return true;
                }
            }
        }
    }

    /** State of matching CR LF . CR LF: the number of its bytes seen last. */
    private static int advance(final int matched, final byte b)
    {
        final byte[] end = {'\r', '\n', '.', '\r', '\n'};
        if (b == end[matched])
        {
            return matched + 1;
        }
        return b == '\r' ? 1 : 0;
    }

    private void drainUntilClosed(final InputStream in) throws IOException
    {
        final byte[] discard = new byte[4096];
        while (in.read(discard) >= 0)
        {
            // a silent peer still reads, so only its silence stalls the relay
        }
        closedByRelay.incrementAndGet();
    }

    private static void reply(final OutputStream out, final String text) throws IOException
    {
        out.write((text + "\r\n").getBytes(StandardCharsets.US_ASCII));
        out.flush();
    }

    private static String readLine(final InputStream in) throws IOException
    {
        final ByteArrayOutputStream line = new ByteArrayOutputStream(128);
        int b;
        while ((b = in.read()) >= 0)
        {
            if (b == '\n')
            {
                final byte[] bytes = line.toByteArray();
                final int length = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                return new String(bytes, 0, length, StandardCharsets.US_ASCII);
            }
            line.write(b);
        }
        return null;
    }

    private static void sleepQuietly(final long ms)
    {
        try
        {
            Thread.sleep(ms);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() throws Exception
    {
        closed = true;
        server.close();
        for (final Socket socket : sockets)
        {
            try
            {
                socket.close();
            }
            catch (final SocketException ignored)
            {
                // already closed
            }
        }
        acceptor.join(5_000);
        for (final Thread thread : threads)
        {
            thread.join(5_000);
        }
    }
}
