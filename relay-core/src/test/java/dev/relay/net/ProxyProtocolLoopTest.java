package dev.relay.net;

import dev.relay.testing.ProxyHeaders;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import static dev.relay.testing.ProxyHeaders.concat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real {@link SelectorLoop} on a listener with the PROXY protocol, over loopback sockets: the handler opens only
 * once the header is whole, with the client it names as the connection's remote address and the bytes after it as
 * its first input; an untrusted peer, a malformed, missing or late header are closed without a byte; the limiter
 * admits the named client, not the proxy (421 when that client is over its limit), and every slot comes back.
 * <p>
 * ({@link LoopDouble} does not model the header, as it does not model admission: both happen before a handler exists,
 * and a handler sees the client's address either way.)
 */
@Timeout(60)
class ProxyProtocolLoopTest
{
    private static final long HEADER_TIMEOUT_MS = 1_000;
    private static final byte[] GREETING = "220 proxied\r\n".getBytes(StandardCharsets.US_ASCII);

    private final AtomicBoolean trustLoopback = new AtomicBoolean(true);
    private final List<String> opened = new CopyOnWriteArrayList<>();
    private final List<String> inputs = new CopyOnWriteArrayList<>();
    private final ConnectionLimiter limiter = new ConnectionLimiter(100, 1, address -> false);
    private ServerSocketChannel listener;
    private SelectorLoop loop;
    private Thread thread;

    /** Greets with {@link #GREETING}, records its client at open and every line it gets. */
    private final class RecordingHandler implements ConnectionHandler
    {
        private final Connection connection;

        RecordingHandler(final Connection connection)
        {
            this.connection = connection;
        }

        @Override
        public void onOpen()
        {
            opened.add(connection.remoteAddress().getAddress().getHostAddress() + ":" +
                connection.remoteAddress().getPort());
            connection.idleTimeoutMs(30_000);
            connection.write(GREETING);
        }

        @Override
        public int onInput(final ByteBuffer buffer, final int from, final int to)
        {
            final byte[] bytes = new byte[to - from];
            buffer.get(from, bytes);
            inputs.add(new String(bytes, StandardCharsets.US_ASCII));
            return to;
        }

        @Override
        public void onTimeout()
        {
        }

        @Override
        public void onDrain()
        {
            connection.closeAfterFlush();
        }

        @Override
        public void onClose()
        {
        }
    }

    @BeforeEach
    void startLoop() throws IOException
    {
        listener = ServerSocketChannel.open();
        listener.bind(new InetSocketAddress("127.0.0.1", 0));
        loop = new SelectorLoop(0, List.of(listener), new int[]{7}, new BufferPool(16 * 1024, 16),
            new BufferPool(16 * 1024, 16), limiter);
        loop.proxyProtocol(7, new ProxyPolicy(address -> trustLoopback.get() && address.isLoopbackAddress(),
            HEADER_TIMEOUT_MS));
        loop.handlerFactory(RecordingHandler::new);
        thread = new Thread(loop, "proxy-loop");
        thread.start();
    }

    @AfterEach
    void stopLoop() throws InterruptedException
    {
        loop.stop();
        thread.join(10_000);
    }

    private Socket connect() throws IOException
    {
        final Socket socket = new Socket();
        socket.connect(listener.getLocalAddress());
        socket.setSoTimeout(10_000);
        return socket;
    }

    @Test
    void theHeadersClientIsTheRemoteAddressAndTheBytesAfterItTheFirstInput() throws Exception
    {
        try (Socket v1 = connect(); Socket v2 = connect(); Socket local = connect())
        {
            v1.getOutputStream().write(concat(ProxyHeaders.v1("192.0.2.10", 40001),
                "EHLO one\r\n".getBytes(StandardCharsets.US_ASCII)));
            assertEquals("220 proxied", readLine(v1.getInputStream()));
            await(() -> inputs.contains("EHLO one\r\n"), "the bytes after the header, to the handler");

            // v2 with TLVs in three pieces: nothing opens before the last one
            final byte[] header = ProxyHeaders.v2(new InetSocketAddress("2001:db8::7", 40002),
                new InetSocketAddress("2001:db8::1", 25), ProxyHeaders.tlv(0x01, new byte[300]));
            final OutputStream out = v2.getOutputStream();
            out.write(header, 0, 5);
            out.flush();
            Thread.sleep(100);
            out.write(header, 5, 30);
            out.flush();
            Thread.sleep(100);
            assertEquals(1, opened.size(), "opened before its header was whole: " + opened);
            out.write(header, 35, header.length - 35);
            assertEquals("220 proxied", readLine(v2.getInputStream()));

            local.getOutputStream().write(ProxyHeaders.v2Local());
            assertEquals("220 proxied", readLine(local.getInputStream()));
            await(() -> opened.size() == 3, "three opened");
            assertEquals("192.0.2.10:40001", opened.get(0));
            assertEquals("2001:db8:0:0:0:0:0:7:40002", opened.get(1));
            assertEquals("127.0.0.1:" + local.getLocalPort(), opened.get(2), "LOCAL: the peer is the client");
            assertEquals(1, limiter.clientConnections(InetAddress.getByName("192.0.2.10")));
            assertEquals(1, limiter.clientConnections(InetAddress.getByName("127.0.0.1")),
                "the proxy is a client only for LOCAL");
        }
        awaitAllReleased();
        assertEquals(0, loop.proxyRefusedTotal());
    }

    @Test
    void anUntrustedPeerAMalformedOrMissingHeaderAreClosedWithoutAByte() throws Exception
    {
        try (Socket smtpClient = connect(); Socket garbage = connect(); Socket quiet = connect())
        {
            // a client that speaks first, as SMTP clients do not but HTTP ones do
            smtpClient.getOutputStream().write("EHLO direct\r\n".getBytes(StandardCharsets.US_ASCII));
            assertEquals(-1, readOrTimeout(smtpClient.getInputStream()), "closed without a greeting");
            garbage.getOutputStream().write("PROXY TCP4 192.0.2.1 192.0.2.2 99999 25\r\n"
                .getBytes(StandardCharsets.US_ASCII));
            assertEquals(-1, readOrTimeout(garbage.getInputStream()), "a bad port: closed");
            quiet.close();
        }
        trustLoopback.set(false);
        try (Socket untrusted = connect())
        {
            untrusted.getOutputStream().write(ProxyHeaders.v1("192.0.2.1", 1));
            assertEquals(-1, readOrTimeout(untrusted.getInputStream()), "an untrusted peer: closed");
        }
        await(() -> loop.proxyRefusedTotal() == 4, () -> "four refused, not " + loop.proxyRefusedTotal());
        assertEquals(List.of(), opened, "no handler was made");
        awaitAllReleased();
    }

    @Test
    void aHeaderTricklingInIsClosedAtItsTimeoutWhateverArrives() throws Exception
    {
        try (Socket slow = connect())
        {
            final byte[] header = ProxyHeaders.v1("192.0.2.1", 1);
            final long start = System.nanoTime();
            final OutputStream out = slow.getOutputStream();
            int sent = 0;
            try
            {
                while (sent < header.length - 2)
                {
                    out.write(header[sent++]);
                    out.flush();
                    Thread.sleep(100);
                }
            }
            catch (final IOException closed)
            {
                // the loop closed it while bytes were still coming
            }
            final int end = readOrTimeout(slow.getInputStream());
            final long elapsedMs = (System.nanoTime() - start) / 1_000_000;
            assertEquals(-1, end, "closed");
            assertTrue(elapsedMs >= HEADER_TIMEOUT_MS - 50, "closed after " + elapsedMs + " ms, before its timeout");
            assertTrue(sent < header.length - 2 || elapsedMs < 5 * HEADER_TIMEOUT_MS,
                "reads moved the header's deadline: closed after " + elapsedMs + " ms");
        }
        await(() -> loop.proxyRefusedTotal() == 1, "refused");
        assertEquals(List.of(), opened);
        awaitAllReleased();
    }

    @Test
    void theLimiterAdmitsTheNamedClientNotTheProxy() throws Exception
    {
        try (Socket first = connect(); Socket second = connect(); Socket other = connect())
        {
            first.getOutputStream().write(ProxyHeaders.v2("192.0.2.20", 1));
            assertEquals("220 proxied", readLine(first.getInputStream()));
            // smtp.max_connections_per_ip=1 for 192.0.2.20, whatever the proxy's address
            second.getOutputStream().write(ProxyHeaders.v1("192.0.2.20", 2));
            assertEquals("421 4.7.0 Error: too many connections from your address", readLine(second.getInputStream()));
            assertEquals(-1, readOrTimeout(second.getInputStream()));
            other.getOutputStream().write(ProxyHeaders.v1("192.0.2.21", 3));
            assertEquals("220 proxied", readLine(other.getInputStream()));
            assertEquals(List.of("192.0.2.20:1", "192.0.2.21:3"), opened);
            assertEquals(1, limiter.clientConnections(InetAddress.getByName("192.0.2.20")));
            assertEquals(0, limiter.clientConnections(InetAddress.getByName("127.0.0.1")), "the proxy is no client");
        }
        awaitAllReleased();
    }

    @Test
    void aDrainClosesConnectionsStillWaitingForTheirHeader() throws Exception
    {
        try (Socket waiting = connect())
        {
            waiting.getOutputStream().write("PROXY TCP4 ".getBytes(StandardCharsets.US_ASCII));
            await(() -> limiter.openConnections() == 1, "accepted");
            loop.drain(5_000);
            assertEquals(-1, readOrTimeout(waiting.getInputStream()));
        }
        thread.join(10_000);
        assertTrue(loop.isFinished(), "the loop ended with its last connection");
        assertEquals(0, limiter.openConnections());
    }

    private void awaitAllReleased()
    {
        await(() -> limiter.openConnections() == 0, () -> limiter.openConnections() + " slots still held");
        await(() -> loop.connectionCount() == 0, "connections gone");
        assertEquals(0, limiter.clientConnections(loopback()));
    }

    private static void await(final BooleanSupplier condition, final String what)
    {
        await(condition, () -> what);
    }

    /** Polls with a generous deadline: the machine is shared. */
    private static void await(final BooleanSupplier condition, final Supplier<String> what)
    {
        final long deadline = System.nanoTime() + 15_000_000_000L;
        while (!condition.getAsBoolean())
        {
            assertTrue(System.nanoTime() - deadline < 0, () -> "timed out waiting for " + what.get());
            try
            {
                Thread.sleep(10);
            }
            catch (final InterruptedException ex)
            {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted", ex);
            }
        }
    }

    private static InetAddress loopback()
    {
        return InetAddress.getLoopbackAddress();
    }

    private static int readOrTimeout(final InputStream in) throws IOException
    {
        try
        {
            return in.read();
        }
        catch (final SocketTimeoutException ex)
        {
            return -2;
        }
        catch (final IOException reset)
        {
            return -1;
        }
    }

    private static String readLine(final InputStream in) throws IOException
    {
        final StringBuilder line = new StringBuilder();
        int c;
        while ((c = in.read()) >= 0 && c != '\n')
        {
            if (c != '\r')
            {
                line.append((char)c);
            }
        }
        return line.toString();
    }
}
