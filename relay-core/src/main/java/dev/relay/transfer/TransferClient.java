package dev.relay.transfer;

import dev.relay.delivery.client.PeerCapabilities;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A plain, blocking SMTP client (RFC 5321) for one operator command: one connection to one peer, one command at a
 * time (no PIPELINING), reused for many transactions. It speaks EHLO (HELO when EHLO is refused) and reads what the
 * peer offers ({@link PeerCapabilities}): SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC 3461)
 * and CHUNKING (RFC 3030). The caller decides what to send; this class only frames it: commands, a body as DATA
 * (verbatim when already in wire form, or dot-stuffed on the way, RFC 5321 §4.5.2) or as one {@code BDAT n LAST}.
 * <p>
 * Every step has a deadline (the {@code delivery.*_timeout} settings): a blocking channel has no timeout of its
 * own, so a watchdog thread ({@link StepWatchdog}) closes the channel when a read or a write runs past it, and the
 * blocked call fails with an {@link IOException}. A peer that closes, resets or times out is an
 * {@link IOException}; a reply is a value.
 * <p>
 * One thread (the command's) uses it; the watchdog only closes the channel. Allocates per reply and command (a
 * control path).
 */
final class TransferClient implements AutoCloseable
{
    /** Longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512; peers send longer text). */
    private static final int MAX_REPLY_LINE = 64 * 1024;
    private static final int MAX_REPLY_LINES = 1000;
    private static final byte[] CRLF = {'\r', '\n'};
    private static final byte[] DOT_CRLF = {'.', '\r', '\n'};

    /** The deadlines, in milliseconds, of each step (RFC 5321 §4.5.3.2). */
    record Timeouts(long connectMs, long commandMs, long dataInitMs, long dataBlockMs, long dataDoneMs)
    {
    }

    /** One reply: its code and its lines (control characters and non-ASCII shown as {@code ?}). */
    record Reply(int code, List<String> lines)
    {
        /** The lines joined by {@code " / "}: for logs and the journal. */
        String text()
        {
            return String.join(" / ", lines);
        }

        /** The lines without their reply codes, joined by LF: an EHLO reply's keywords as the parser reads them. */
        String keywordText()
        {
            final StringBuilder text = new StringBuilder();
            for (final String line : lines)
            {
                text.append(line.length() > 4 ? line.substring(4) : "").append('\n');
            }
            return text.toString();
        }

        boolean positive()
        {
            return code >= 200 && code < 300;
        }

        boolean transient4xx()
        {
            return code >= 400 && code < 500;
        }

        @Override
        public String toString()
        {
            return text();
        }
    }

    private final SocketChannel channel;
    private final String peer;
    private final Timeouts timeouts;
    private final ByteBuffer in = ByteBuffer.allocate(16 * 1024);
    private final ByteBuffer stuffed = ByteBuffer.allocateDirect(128 * 1024 + 2);
    private final StepWatchdog watchdog;
    private final PeerCapabilities offered = new PeerCapabilities();
    private String greeting;

    // body state
    private boolean stuffing;
    private boolean lineStart;
    private boolean lastCr;
    private byte secondLast;
    private byte last;
    private long bodyBytesOut;

    private TransferClient(final SocketChannel channel, final String peer, final Timeouts timeouts)
    {
        this.channel = channel;
        this.peer = peer;
        this.timeouts = timeouts;
        this.in.flip();
        this.watchdog = new StepWatchdog(channel);
    }

    /**
     * Connects, reads the greeting and says EHLO {@code helo} (HELO when the peer refuses EHLO with a 5xx).
     *
     * @throws IOException when the connection fails or the peer does not greet with 220 or refuses both.
     */
    static TransferClient connect(final InetSocketAddress address, final String helo, final Timeouts timeouts)
        throws IOException
    {
        final SocketChannel channel = SocketChannel.open();
        final String peer = address.getHostString() + ":" + address.getPort();
        final TransferClient client = new TransferClient(channel, peer, timeouts);
        try
        {
            client.watchdog.arm(timeouts.connectMs());
            channel.connect(address);
            channel.socket().setTcpNoDelay(true);
            final Reply greeting = client.readReply(timeouts.commandMs());
            if (greeting.code() != 220)
            {
                throw new IOException(peer + " greeted with " + greeting);
            }
            client.greeting = greeting.text();
            Reply hello = client.command("EHLO " + helo, timeouts.commandMs());
            if (hello.positive())
            {
                client.offered.parseEhlo(hello.keywordText());
            }
            else if (hello.code() >= 500)
            {
                hello = client.command("HELO " + helo, timeouts.commandMs());
            }
            if (!hello.positive())
            {
                throw new IOException(peer + " refused HELO/EHLO " + helo + ": " + hello);
            }
            return client;
        }
        catch (final IOException ex)
        {
            client.close();
            throw client.watchdog.timedOut() ?
                new IOException(peer + ": timed out (" + ex.getMessage() + ")", ex) : ex;
        }
        catch (final RuntimeException ex)
        {
            client.close();
            throw ex;
        }
    }

    String peer()
    {
        return peer;
    }

    String greeting()
    {
        return greeting;
    }

    /** The SIZE limit the peer announced; 0 when none (no SIZE, or SIZE without a number; RFC 1870 §4). */
    long maxSize()
    {
        return offered.maxSize();
    }

    boolean offersSize()
    {
        return offered.esmtp() && offered.size();
    }

    boolean eightBitMime()
    {
        return offered.eightBitMime();
    }

    boolean smtpUtf8()
    {
        return offered.smtpUtf8();
    }

    boolean dsn()
    {
        return offered.dsn();
    }

    boolean chunking()
    {
        return offered.chunking();
    }

    /** Sends {@code line} + CRLF and reads one reply within the command timeout. */
    Reply command(final String line) throws IOException
    {
        return command(line, timeouts.commandMs());
    }

    /** DATA: expects 354 within the DATA-initiation timeout; then {@link #beginBody}. */
    Reply data() throws IOException
    {
        return command("DATA", timeouts.dataInitMs());
    }

    /**
     * Starts a body: what follows through {@link #body} goes out verbatim ({@code stuff} false: already wire form,
     * e.g. a DATA-received body as spooled) or dot-stuffed with bare LF made CRLF ({@code stuff} true: a
     * BDAT-received raw body going out as DATA), or raw after {@link #bdatLast}.
     */
    void beginBody(final boolean stuff)
    {
        stuffing = stuff;
        lineStart = true;
        lastCr = false;
        secondLast = 0;
        last = 0;
        bodyBytesOut = 0;
    }

    /** The next body bytes, from {@code src}'s position to its limit (consumed). */
    void body(final ByteBuffer src) throws IOException
    {
        if (!stuffing)
        {
            final int n = src.remaining();
            if (n >= 2)
            {
                secondLast = src.get(src.limit() - 2);
                last = src.get(src.limit() - 1);
            }
            else if (n == 1)
            {
                secondLast = last;
                last = src.get(src.limit() - 1);
            }
            bodyBytesOut += n;
            write(src, timeouts.dataBlockMs());
            return;
        }
        while (src.hasRemaining())
        {
            stuffed.clear();
            // RFC 5321 §4.5.2: a line starting with "." gets another; a bare LF becomes CRLF, so the peer sees the
            // end of data only where it is put. At most doubles the bytes taken.
            final int take = Math.min(src.remaining(), (stuffed.capacity() - 2) / 2);
            for (int i = 0; i < take; i++)
            {
                final byte b = src.get();
                if (b == '.' && lineStart)
                {
                    stuffed.put((byte)'.');
                }
                else if (b == '\n' && !lastCr)
                {
                    stuffed.put((byte)'\r');
                }
                stuffed.put(b);
                lastCr = b == '\r';
                lineStart = b == '\n';
            }
            bodyBytesOut += stuffed.position();
            stuffed.flip();
            write(stuffed, timeouts.dataBlockMs());
        }
    }

    /** Ends a DATA body: CRLF unless it ended with one, then {@code .CRLF}; the reply within the DATA-done timeout. */
    Reply endData() throws IOException
    {
        final boolean endsWithCrlf = stuffing ? lineStart : bodyBytesOut >= 2 && secondLast == '\r' && last == '\n';
        if (!endsWithCrlf)
        {
            write(ByteBuffer.wrap(CRLF), timeouts.dataBlockMs());
        }
        write(ByteBuffer.wrap(DOT_CRLF), timeouts.dataBlockMs());
        return readReply(timeouts.dataDoneMs());
    }

    /** {@code BDAT size LAST} (RFC 3030 §2): the whole message as one chunk; then {@link #beginBody} and the bytes. */
    void bdatLast(final long size) throws IOException
    {
        write(ByteBuffer.wrap(("BDAT " + size + " LAST\r\n").getBytes(StandardCharsets.US_ASCII)),
            timeouts.commandMs());
    }

    /** The reply to the BDAT LAST chunk, within the DATA-done timeout. */
    Reply endBdat() throws IOException
    {
        return readReply(timeouts.dataDoneMs());
    }

    /** QUIT, politely and without waiting long; then closes. */
    void quit()
    {
        try
        {
            command("QUIT", Math.min(timeouts.commandMs(), 5_000));
        }
        catch (final IOException ex)
        {
            // closing anyway
        }
        close();
    }

    @Override
    public void close()
    {
        watchdog.stop();
        try
        {
            channel.close();
        }
        catch (final IOException ex)
        {
            // nothing to do
        }
    }

    private Reply command(final String line, final long timeoutMs) throws IOException
    {
        write(ByteBuffer.wrap((line + "\r\n").getBytes(StandardCharsets.UTF_8)), timeoutMs);
        return readReply(timeoutMs);
    }

    private void write(final ByteBuffer src, final long timeoutMs) throws IOException
    {
        watchdog.arm(timeoutMs);
        try
        {
            while (src.hasRemaining())
            {
                channel.write(src);
            }
        }
        catch (final IOException ex)
        {
            throw failure("writing", ex);
        }
        finally
        {
            watchdog.disarm();
        }
    }

    private Reply readReply(final long timeoutMs) throws IOException
    {
        watchdog.arm(timeoutMs);
        try
        {
            final List<String> lines = new ArrayList<>();
            int code = -1;
            while (lines.size() < MAX_REPLY_LINES)
            {
                final String line = readLine();
                if (line.length() < 3 || !isDigits(line) || (line.length() > 3 && line.charAt(3) != ' ' &&
                    line.charAt(3) != '-'))
                {
                    throw new IOException(peer + " sent a malformed reply line: " + printable(line));
                }
                final int lineCode = Integer.parseInt(line.substring(0, 3));
                if (code >= 0 && lineCode != code)
                {
                    throw new IOException(peer + " changed the code inside a reply: " + printable(line));
                }
                code = lineCode;
                lines.add(printable(line));
                if (line.length() == 3 || line.charAt(3) == ' ')
                {
                    return new Reply(code, lines);
                }
            }
            throw new IOException(peer + " sent a reply of more than " + MAX_REPLY_LINES + " lines");
        }
        catch (final IOException ex)
        {
            throw failure("reading", ex);
        }
        finally
        {
            watchdog.disarm();
        }
    }

    private String readLine() throws IOException
    {
        final StringBuilder line = new StringBuilder(80);
        while (true)
        {
            if (!in.hasRemaining())
            {
                in.clear();
                final int n = channel.read(in);
                in.flip();
                if (n < 0)
                {
                    throw new IOException("connection closed by " + peer);
                }
                continue;
            }
            final byte b = in.get();
            if (b == '\n')
            {
                final int end = line.length() > 0 && line.charAt(line.length() - 1) == '\r' ? line.length() - 1 :
                    line.length();
                return line.substring(0, end);
            }
            if (line.length() >= MAX_REPLY_LINE)
            {
                throw new IOException(peer + " sent a reply line longer than " + MAX_REPLY_LINE + " bytes");
            }
            line.append((char)(b & 0xFF));
        }
    }

    private IOException failure(final String doing, final IOException ex)
    {
        if (watchdog.timedOut())
        {
            return new IOException(peer + ": timed out " + doing, ex);
        }
        return ex;
    }

    private static boolean isDigits(final String line)
    {
        return Character.isDigit(line.charAt(0)) && Character.isDigit(line.charAt(1)) &&
            Character.isDigit(line.charAt(2));
    }

    /** A reply line with control characters and non-ASCII shown as {@code ?} (it goes to logs and the journal). */
    private static String printable(final String line)
    {
        final StringBuilder text = new StringBuilder(line.length());
        for (int i = 0; i < line.length(); i++)
        {
            final char c = line.charAt(i);
            text.append(c < 0x20 || c > 0x7E ? '?' : c);
        }
        return text.toString();
    }
}
