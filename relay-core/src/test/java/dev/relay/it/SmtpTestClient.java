package dev.relay.it;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A tiny blocking SMTP client on a JDK socket for the integration tests: sends raw bytes (nothing is fixed up, so
 * tests can send malformed input) and reads replies, multi-line ones included. Every read has a timeout, so a
 * missing reply fails the test instead of hanging it.
 */
final class SmtpTestClient implements AutoCloseable
{
    static final Duration DEFAULT_READ_TIMEOUT = Duration.ofSeconds(15);
    private static final Pattern QUEUED = Pattern.compile("^250 2\\.0\\.0 Ok: queued as ([0-9A-Za-z]+)$");

    private Socket socket;
    private InputStream in;
    private OutputStream out;
    private final Reply greeting;

    private SmtpTestClient(final Socket socket, final boolean readGreeting) throws IOException
    {
        this(socket, readGreeting, null);
    }

    private SmtpTestClient(final Socket socket, final boolean readGreeting, final javax.net.ssl.SSLContext tls)
        throws IOException
    {
        this.socket = socket;
        this.in = new BufferedInputStream(socket.getInputStream(), 64 * 1024);
        this.out = socket.getOutputStream();
        if (tls != null)
        {
            startTls(tls);
        }
        this.greeting = readGreeting ? read() : null;
    }

    /** Implicit TLS (RFC 8314, a submissions listener): the handshake, then the greeting under TLS. */
    static SmtpTestClient connectTls(final int port, final javax.net.ssl.SSLContext tls) throws IOException
    {
        final Socket socket = new Socket();
        try
        {
            socket.setTcpNoDelay(true);
            socket.setSoTimeout((int)DEFAULT_READ_TIMEOUT.toMillis());
            socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
            return new SmtpTestClient(socket, true, tls);
        }
        catch (final IOException | RuntimeException ex)
        {
            socket.close();
            throw ex;
        }
    }

    /**
     * TLS over this connection from now on (after the 220 to STARTTLS, or at once): the JDK's SSLSocket layered on
     * the plain one, checking the relay's certificate against {@code tls}'s trust and the name relay.test.
     */
    void startTls(final javax.net.ssl.SSLContext tls) throws IOException
    {
        final javax.net.ssl.SSLSocket secure = (javax.net.ssl.SSLSocket)tls.getSocketFactory().createSocket(socket,
            dev.relay.testing.TestCertificates.HOST, socket.getPort(), true);
        final javax.net.ssl.SSLParameters parameters = secure.getSSLParameters();
        parameters.setEndpointIdentificationAlgorithm("HTTPS");
        secure.setSSLParameters(parameters);
        secure.setUseClientMode(true);
        secure.startHandshake();
        socket = secure;
        in = new BufferedInputStream(secure.getInputStream(), 64 * 1024);
        out = secure.getOutputStream();
    }

    /** The TLS session, or null before {@link #startTls}. */
    javax.net.ssl.SSLSession tlsSession()
    {
        return socket instanceof javax.net.ssl.SSLSocket ? ((javax.net.ssl.SSLSocket)socket).getSession() : null;
    }

    /** Connects and reads the greeting (whatever it is: 220, or 421 when refused). */
    static SmtpTestClient connect(final int port) throws IOException
    {
        return connect(port, true);
    }

    static SmtpTestClient connect(final int port, final boolean readGreeting) throws IOException
    {
        final Socket socket = new Socket();
        try
        {
            socket.setTcpNoDelay(true);
            socket.setSoTimeout((int)DEFAULT_READ_TIMEOUT.toMillis());
            socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
            return new SmtpTestClient(socket, readGreeting);
        }
        catch (final IOException | RuntimeException ex)
        {
            socket.close();
            throw ex;
        }
    }

    /**
     * Connects from the loopback address {@code localAddress} (127.0.0.2, 127.0.0.3...: several clients on one
     * machine, as a load balancer in front sees them) and reads the greeting.
     */
    static SmtpTestClient connectFrom(final String localAddress, final int port) throws IOException
    {
        final Socket socket = new Socket();
        try
        {
            socket.setTcpNoDelay(true);
            socket.setSoTimeout((int)DEFAULT_READ_TIMEOUT.toMillis());
            socket.bind(new InetSocketAddress(localAddress, 0));
            socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
            return new SmtpTestClient(socket, true);
        }
        catch (final IOException | RuntimeException ex)
        {
            socket.close();
            throw ex;
        }
    }

    /**
     * Connects as a load balancer would for a client: writes {@code proxyHeader} (a PROXY protocol header) first, then
     * reads the greeting.
     */
    static SmtpTestClient connectProxied(final int port, final byte[] proxyHeader) throws IOException
    {
        final Socket socket = new Socket();
        try
        {
            socket.setTcpNoDelay(true);
            socket.setSoTimeout((int)DEFAULT_READ_TIMEOUT.toMillis());
            socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
            socket.getOutputStream().write(proxyHeader);
            return new SmtpTestClient(socket, true);
        }
        catch (final IOException | RuntimeException ex)
        {
            socket.close();
            throw ex;
        }
    }

    Reply greeting()
    {
        return greeting;
    }

    Socket socket()
    {
        return socket;
    }

    /** Connects, checks the 220 and says EHLO. */
    static SmtpTestClient connectEhlo(final int port) throws IOException
    {
        final SmtpTestClient client = connect(port);
        try
        {
            client.greeting.expect(220);
            client.command("EHLO client.test").expect(250);
            return client;
        }
        catch (final IOException | RuntimeException | AssertionError ex)
        {
            client.close();
            throw ex;
        }
    }

    /** Writes {@code line} + CRLF and reads one reply. */
    Reply command(final String line) throws IOException
    {
        write(line + "\r\n");
        return read();
    }

    void write(final String raw) throws IOException
    {
        write(raw.getBytes(StandardCharsets.ISO_8859_1));
    }

    void write(final byte[] raw) throws IOException
    {
        out.write(raw);
        out.flush();
    }

    void write(final byte[] raw, final int offset, final int length) throws IOException
    {
        out.write(raw, offset, length);
        out.flush();
    }

    /** Reads {@code count} replies in order. */
    List<Reply> read(final int count) throws IOException
    {
        final List<Reply> replies = new ArrayList<>(count);
        for (int i = 0; i < count; i++)
        {
            replies.add(read());
        }
        return replies;
    }

    /** Reads one reply, all its lines ("250-..." up to "250 ..."). */
    Reply read() throws IOException
    {
        final List<String> lines = new ArrayList<>();
        while (true)
        {
            final String line = readLine();
            if (line == null)
            {
                throw new IOException("connection closed by the server after " + lines);
            }
            if (line.length() < 3)
            {
                throw new IOException("malformed reply line: " + line);
            }
            lines.add(line);
            if (line.length() == 3 || line.charAt(3) == ' ')
            {
                return new Reply(Integer.parseInt(line.substring(0, 3)), lines);
            }
        }
    }

    /** One CRLF-terminated line without its CRLF; null at end of stream. */
    private String readLine() throws IOException
    {
        final ByteArrayOutputStream line = new ByteArrayOutputStream(128);
        while (true)
        {
            final int b = in.read();
            if (b < 0)
            {
                return line.size() == 0 ? null : line.toString(StandardCharsets.ISO_8859_1);
            }
            if (b == '\n')
            {
                final byte[] bytes = line.toByteArray();
                final int length = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                return new String(bytes, 0, length, StandardCharsets.ISO_8859_1);
            }
            line.write(b);
        }
    }

    /** True when the server closes the connection (end of stream or reset) within {@code timeout}, with no more data. */
    boolean awaitClosedByServer(final Duration timeout) throws IOException
    {
        final int previous = socket.getSoTimeout();
        socket.setSoTimeout((int)timeout.toMillis());
        try
        {
            final int b = in.read();
            if (b >= 0)
            {
                fail("expected the server to close the connection, got more data: " + (char)b + readAvailable());
            }
            return true;
        }
        catch (final SocketTimeoutException ex)
        {
            return false;
        }
        catch (final IOException ex)
        {
            // a reset counts as closed
            return true;
        }
        finally
        {
            if (!socket.isClosed())
            {
                socket.setSoTimeout(previous);
            }
        }
    }

    private String readAvailable() throws IOException
    {
        final byte[] rest = new byte[Math.min(4096, in.available())];
        final int n = in.read(rest);
        return n <= 0 ? "" : new String(rest, 0, n, StandardCharsets.ISO_8859_1);
    }

    /**
     * A whole transaction (MAIL, RCPT..., DATA, body, terminator), each command answered before the next.
     *
     * @param wireBody the body as it goes on the wire (already dot-stuffed, CRLF line ends); it must end with CRLF.
     * @return the queue id from the 250 reply.
     */
    String sendMessage(final String from, final List<String> recipients, final byte[] wireBody) throws IOException
    {
        command("MAIL FROM:<" + from + ">").expect(250);
        for (final String rcpt : recipients)
        {
            command("RCPT TO:<" + rcpt + ">").expect(250);
        }
        command("DATA").expect(354);
        write(wireBody);
        write(".\r\n");
        return read().queueId();
    }

    /**
     * Pipelined transactions back to back until {@code stop}: the envelope ({@code MAIL}, one {@code RCPT},
     * {@code DATA}) in one write, then the body with its terminator; the queue id of every 250 goes to {@code acked}
     * as soon as it is read. For load while the relay is killed: a broken connection throws, and the message in
     * flight, which got no 250, is not counted.
     *
     * @return null once stopped, else the first replies that were not a transaction's.
     */
    String sendUntil(final java.util.concurrent.atomic.AtomicBoolean stop, final byte[] envelope,
        final byte[] bodyWithTerminator, final java.util.Set<String> acked) throws IOException
    {
        while (!stop.get())
        {
            write(envelope);
            final List<Reply> replies = read(3);
            if (replies.get(0).code() != 250 || replies.get(1).code() != 250 || replies.get(2).code() != 354)
            {
                return replies.toString();
            }
            write(bodyWithTerminator);
            final Reply reply = read();
            final Matcher queued = QUEUED.matcher(reply.last());
            if (!queued.matches())
            {
                return reply.toString();
            }
            acked.add(queued.group(1));
        }
        return null;
    }

    @Override
    public void close() throws IOException
    {
        socket.close();
    }

    /** One SMTP reply. */
    record Reply(int code, List<String> lines)
    {
        /** The text of the last line, with its code: "250 2.0.0 Ok". */
        String last()
        {
            return lines.get(lines.size() - 1);
        }

        Reply expect(final int expected)
        {
            assertEquals(expected, code, () -> "unexpected reply " + lines);
            return this;
        }

        /** Checks the code and the enhanced status code, e.g. {@code expect(503, "5.5.1")}. */
        Reply expect(final int expected, final String enhanced)
        {
            expect(expected);
            assertTrue(last().startsWith(expected + " " + enhanced + " "), () -> "expected " + expected + " " +
                enhanced + ", got " + lines);
            return this;
        }

        /** The queue id of a "250 2.0.0 Ok: queued as ID" reply; fails on any other reply. */
        String queueId()
        {
            final Matcher m = QUEUED.matcher(last());
            assertTrue(code == 250 && m.matches(), () -> "expected 250 queued as, got " + lines);
            return m.group(1);
        }

        @Override
        public String toString()
        {
            return String.join("\\r\\n", lines);
        }
    }
}
