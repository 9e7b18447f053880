package dev.relay.testing;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

/**
 * A plain blocking SMTP client for the in-process end-to-end and hardening tests: one connection, greeting and EHLO
 * checked at connect, then any number of transactions. Not pipelined, so every reply belongs to the command just
 * written; replies are strings (a multi-line reply's lines joined with LF). Every read has a timeout, so a stuck
 * relay fails the test instead of hanging it. Bodies are given in wire form (CRLF lines, already dot-stuffed, without
 * the final {@code .CRLF}). For raw bytes and malformed input use the integration tests' {@code SmtpTestClient}.
 */
public final class BlockingSmtpClient implements AutoCloseable
{
    private static final Duration DEFAULT_READ_TIMEOUT = Duration.ofSeconds(30);

    private final Socket socket;
    private final InputStream in;
    private final OutputStream out;

    public BlockingSmtpClient(final InetSocketAddress address) throws IOException
    {
        this(address, DEFAULT_READ_TIMEOUT);
    }

    public BlockingSmtpClient(final InetSocketAddress address, final Duration readTimeout) throws IOException
    {
        socket = new Socket();
        try
        {
            socket.connect(address, 5_000);
            socket.setSoTimeout((int)readTimeout.toMillis());
            socket.setTcpNoDelay(true);
            in = new BufferedInputStream(socket.getInputStream());
            out = socket.getOutputStream();
            expect("220", readReply());
            command("EHLO client.test", "250");
        }
        catch (final IOException | RuntimeException ex)
        {
            socket.close();
            throw ex;
        }
    }

    /** One transaction that must be accepted. @return the queue id of its 250; IOException for any other reply. */
    public String send(final String from, final List<String> to, final byte[] wireBody) throws IOException
    {
        final String reply = transaction(from, to, wireBody);
        expect("250", reply);
        return queueId(reply);
    }

    /**
     * One transaction, whatever the relay answers. @return the final reply (the one after the body, or the first
     * non-2xx/3xx reply to MAIL, RCPT or DATA, in which case the transaction is reset).
     */
    public String transaction(final String from, final List<String> to, final byte[] wireBody) throws IOException
    {
        String reply = command("MAIL FROM:<" + from + ">");
        if (!reply.startsWith("250"))
        {
            return reply;
        }
        for (final String rcpt : to)
        {
            reply = command("RCPT TO:<" + rcpt + ">");
            if (!reply.startsWith("250"))
            {
                command("RSET");
                return reply;
            }
        }
        reply = command("DATA");
        if (!reply.startsWith("354"))
        {
            command("RSET");
            return reply;
        }
        return sendBody(wireBody);
    }

    /** DATA, {@code wireBody} and the final dot after an envelope sent with {@link #command}; returns the queue id. */
    public String data(final byte[] wireBody) throws IOException
    {
        command("DATA", "354");
        final String reply = sendBody(wireBody);
        expect("250", reply);
        return queueId(reply);
    }

    /** After a 354: the body and the terminating dot. @return the reply to the end of data. */
    public String sendBody(final byte[] wireBody) throws IOException
    {
        // one write: body and dot in two would wait out Nagle + delayed ACK (~40 ms) on every message
        final byte[] withDot = Arrays.copyOf(wireBody, wireBody.length + 3);
        withDot[wireBody.length] = '.';
        withDot[wireBody.length + 1] = '\r';
        withDot[wireBody.length + 2] = '\n';
        out.write(withDot);
        out.flush();
        return readReply();
    }

    /** @return the reply to {@code line}, whatever it is. */
    public String command(final String line) throws IOException
    {
        out.write((line + "\r\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        return readReply();
    }

    /** @return the reply to {@code line}; IOException unless it starts with {@code expectedCode}. */
    public String command(final String line, final String expectedCode) throws IOException
    {
        final String reply = command(line);
        expect(expectedCode, reply);
        return reply;
    }

    /** A whole (possibly multi-line) reply, lines joined with LF, without the last CRLF. */
    public String readReply() throws IOException
    {
        final StringBuilder reply = new StringBuilder();
        while (true)
        {
            final String line = readLine();
            if (line == null)
            {
                throw new IOException("connection closed; reply so far: " + reply);
            }
            if (reply.length() > 0)
            {
                reply.append('\n');
            }
            reply.append(line);
            if (line.length() < 4 || line.charAt(3) != '-')
            {
                return reply.toString();
            }
        }
    }

    private String readLine() throws IOException
    {
        final ByteArrayOutputStream line = new ByteArrayOutputStream(128);
        int b;
        while ((b = in.read()) >= 0)
        {
            if (b == '\n')
            {
                final byte[] bytes = line.toByteArray();
                final int length = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 :
                    bytes.length;
                return new String(bytes, 0, length, StandardCharsets.UTF_8);
            }
            line.write(b);
        }
        return null;
    }

    /** IOException unless {@code reply} starts with {@code code}. */
    public static void expect(final String code, final String reply) throws IOException
    {
        if (!reply.startsWith(code))
        {
            throw new IOException("expected " + code + ", got: " + reply);
        }
    }

    /** The queue id of {@code 250 ... queued as ID}, or null. */
    public static String queueId(final String reply)
    {
        final int at = reply.lastIndexOf("queued as ");
        return at < 0 ? null : reply.substring(at + "queued as ".length()).trim();
    }

    /** QUIT (its reply read if it comes), then the socket closed. */
    @Override
    public void close()
    {
        try
        {
            out.write("QUIT\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            readReply();
        }
        catch (final IOException ignored)
        {
            // the peer may already be gone
        }
        try
        {
            socket.close();
        }
        catch (final IOException ignored)
        {
            // nothing left to do
        }
    }
}
