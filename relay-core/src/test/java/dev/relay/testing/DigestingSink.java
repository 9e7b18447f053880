package dev.relay.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.ObjLongConsumer;

/**
 * An SMTP destination for many big messages at once: it keeps no body, only the SHA-256 of each message's content
 * (dot-stuffing undone) after the first header field, which is the {@code Received:} the relay prepends, so a test
 * can compare it with the digest of what it sent. The {@code Message-ID} (local part) names each message. EHLO
 * offers PIPELINING, 8BITMIME and SIZE; no CHUNKING, so every body arrives in DATA form.
 * <p>
 * One thread per connection (at most {@link #MAX_CONNECTIONS}), one acceptor; {@link #close()} closes every
 * socket and joins the threads. A sink started with an arrival listener calls it on the connection's thread with
 * each message's Message-ID and {@link System#nanoTime()} when the lone dot was read, before the 250 goes back.
 */
public final class DigestingSink implements AutoCloseable
{
    public static final int MAX_CONNECTIONS = 200;
    private static final int HEADER_SCAN_LIMIT = 64 * 1024;

    /** One message: the digest of its content after the first header field, and that content's length. */
    public record Digest(String messageId, String sha256, long length, int recipients)
    {
    }

    private final ServerSocket server;
    private final Thread acceptor;
    private final List<Thread> threads = new CopyOnWriteArrayList<>();
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final Map<String, List<Digest>> received = new ConcurrentHashMap<>();
    private final AtomicInteger active = new AtomicInteger();
    private final AtomicInteger maxActive = new AtomicInteger();
    private final AtomicInteger messages = new AtomicInteger();
    private final ObjLongConsumer<String> onArrival;
    private volatile boolean closed;

    private DigestingSink(final int port, final ObjLongConsumer<String> onArrival) throws IOException
    {
        this.onArrival = onArrival;
        server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 256);
        acceptor = new Thread(this::acceptLoop, "digesting-sink");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    public static DigestingSink start() throws IOException
    {
        return new DigestingSink(0, null);
    }

    /** On a free port, telling {@code onArrival} (Message-ID local part, nanoTime) of each message as it ends. */
    public static DigestingSink start(final ObjLongConsumer<String> onArrival) throws IOException
    {
        return new DigestingSink(0, onArrival);
    }

    /** On {@code port} of the loopback address: a destination that was down (a refused port) comes up. */
    public static DigestingSink start(final int port) throws IOException
    {
        return new DigestingSink(port, null);
    }

    public int port()
    {
        return server.getLocalPort();
    }

    public int messageCount()
    {
        return messages.get();
    }

    public int maxConcurrentConnections()
    {
        return maxActive.get();
    }

    /** Every copy received of the message with this Message-ID local part (more than one is a duplicate). */
    public List<Digest> received(final String messageId)
    {
        return received.getOrDefault(messageId, List.of());
    }

    public Map<String, List<Digest>> all()
    {
        return Map.copyOf(received);
    }

    /** The digest this sink computes, for the content a test sent (before the relay prepends its header). */
    public static String sha256(final byte[] content)
    {
        return HexFormat.of().formatHex(digest().digest(content));
    }

    private static MessageDigest digest()
    {
        try
        {
            return MessageDigest.getInstance("SHA-256");
        }
        catch (final NoSuchAlgorithmException ex)
        {
            throw new IllegalStateException(ex);
        }
    }

    private void acceptLoop()
    {
        while (!closed)
        {
            final Socket socket;
            try
            {
                socket = server.accept();
                // each reply is its own write: without this, Nagle and the peer's delayed ACK hold every pipelined
                // reply after the first for ~40 ms (a few hundred messages a second, whatever the relay does)
                socket.setTcpNoDelay(true);
            }
            catch (final IOException ex)
            {
                return;
            }
            if (active.get() >= MAX_CONNECTIONS)
            {
                closeQuietly(socket);
                continue;
            }
            sockets.add(socket);
            maxActive.accumulateAndGet(active.incrementAndGet(), Math::max);
            final Thread thread = new Thread(() -> serve(socket), "digesting-sink-conn");
            thread.setDaemon(true);
            threads.add(thread);
            thread.start();
        }
    }

    private void serve(final Socket socket)
    {
        try (socket)
        {
            final Lines in = new Lines(socket.getInputStream());
            final OutputStream out = socket.getOutputStream();
            reply(out, "220 digesting.test ESMTP");
            int recipients = 0;
            while (true)
            {
                final String line = in.nextText();
                if (line == null)
                {
                    return;
                }
                final String verb = line.length() >= 4 ? line.substring(0, 4).toUpperCase() : line.toUpperCase();
                switch (verb)
                {
                    case "EHLO":
                        reply(out, "250-digesting.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600");
                        break;
                    case "MAIL":
                        recipients = 0;
                        reply(out, "250 2.1.0 ok");
                        break;
                    case "RCPT":
                        recipients++;
                        reply(out, "250 2.1.5 ok");
                        break;
                    case "RSET":
                    case "NOOP":
                    case "HELO":
                        reply(out, "250 2.0.0 ok");
                        break;
                    case "QUIT":
                        reply(out, "221 2.0.0 bye");
                        return;
                    case "DATA":
                        reply(out, "354 go ahead");
                        final Digest digest = readBody(in, recipients);
                        if (onArrival != null)
                        {
                            onArrival.accept(digest.messageId(), System.nanoTime());
                        }
                        received.computeIfAbsent(digest.messageId(), id -> new CopyOnWriteArrayList<>()).add(digest);
                        messages.incrementAndGet();
                        reply(out, "250 2.0.0 digested");
                        break;
                    default:
                        reply(out, "502 5.5.2 not here");
                        break;
                }
            }
        }
        catch (final IOException ex)
        {
            // the relay hung up; nothing recorded for a body that did not end
        }
        finally
        {
            active.decrementAndGet();
        }
    }

    /**
     * Reads a DATA body line by line to the lone dot, undoing dot-stuffing; the first header field (with its
     * folded continuation lines) is skipped, the rest digested.
     */
    private static Digest readBody(final Lines in, final int recipients) throws IOException
    {
        final MessageDigest sha = digest();
        boolean inFirstField = true;
        boolean firstLine = true;
        long length = 0;
        String messageId = null;
        long scanned = 0;
        while (true)
        {
            if (!in.next())
            {
                throw new IOException("connection closed in DATA");
            }
            final byte[] bytes = in.buffer;
            final int start = in.start;
            final int end = in.end;
            final int size = end - start;
            if (size == 3 && bytes[start] == '.' && bytes[start + 1] == '\r')
            {
                return new Digest(messageId, HexFormat.of().formatHex(sha.digest()), length, recipients);
            }
            if (inFirstField && !firstLine && size > 0 && bytes[start] != ' ' && bytes[start] != '\t')
            {
                inFirstField = false;
            }
            firstLine = false;
            if (inFirstField)
            {
                continue;
            }
            if (messageId == null && scanned < HEADER_SCAN_LIMIT)
            {
                scanned += size;
                final String text = new String(bytes, start, size, StandardCharsets.ISO_8859_1);
                if (text.regionMatches(true, 0, "Message-ID: <", 0, 13))
                {
                    final int at = text.indexOf('@');
                    messageId = text.substring(13, at < 0 ? text.indexOf('>') : at);
                }
            }
            final int from = size > 0 && bytes[start] == '.' ? start + 1 : start;
            sha.update(bytes, from, end - from);
            length += end - from;
        }
    }

    /** Lines (LF included) out of a stream through one buffer, without a call per byte. */
    private static final class Lines
    {
        private final InputStream in;
        byte[] buffer = new byte[64 * 1024];
        int start;
        int end;
        private int limit;

        Lines(final InputStream in)
        {
            this.in = in;
        }

        /** @return false at the end of the stream; else the next line is {@code buffer[start, end)}. */
        boolean next() throws IOException
        {
            int from = end;
            int scan = from;
            while (true)
            {
                for (; scan < limit; scan++)
                {
                    if (buffer[scan] == '\n')
                    {
                        start = from;
                        end = scan + 1;
                        return true;
                    }
                }
                if (from > 0)
                {
                    System.arraycopy(buffer, from, buffer, 0, limit - from);
                    limit -= from;
                    scan -= from;
                    from = 0;
                }
                if (limit == buffer.length)
                {
                    buffer = java.util.Arrays.copyOf(buffer, buffer.length * 2);
                }
                final int read = in.read(buffer, limit, buffer.length - limit);
                if (read < 0)
                {
                    return false;
                }
                limit += read;
            }
        }

        /** The next line as text without its CRLF, or null at the end of the stream. */
        String nextText() throws IOException
        {
            if (!next())
            {
                return null;
            }
            int to = end - 1;
            if (to > start && buffer[to - 1] == '\r')
            {
                to--;
            }
            return new String(buffer, start, to - start, StandardCharsets.US_ASCII);
        }
    }

    private static void reply(final OutputStream out, final String text) throws IOException
    {
        out.write((text + "\r\n").getBytes(StandardCharsets.US_ASCII));
        out.flush();
    }

    private static void closeQuietly(final Socket socket)
    {
        try
        {
            socket.close();
        }
        catch (final IOException ignored)
        {
            // best effort
        }
    }

    @Override
    public void close() throws InterruptedException
    {
        closed = true;
        try
        {
            server.close();
        }
        catch (final IOException ignored)
        {
            // best effort
        }
        for (final Socket socket : sockets)
        {
            closeQuietly(socket);
        }
        acceptor.join(5_000);
        for (final Thread thread : threads)
        {
            thread.join(5_000);
        }
    }
}
