package dev.relay.e2e;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * A plain blocking SMTP client for end-to-end tests: one connection, EHLO once, then any number of
 * transactions ({@link #send}). Not pipelined, so every reply belongs to the command just written.
 * The body is given in wire form (CRLF lines, already dot-stuffed, without the final {@code .CRLF}).
 */
final class SmtpTestClient implements AutoCloseable
{
    private static final int READ_TIMEOUT_MS = 30_000;

    private final Socket socket;
    private final InputStream in;
    private final OutputStream out;

    SmtpTestClient(final InetSocketAddress address) throws IOException
    {
        socket = new Socket();
        socket.connect(address, 5_000);
        socket.setSoTimeout(READ_TIMEOUT_MS);
        socket.setTcpNoDelay(true);
        in = new BufferedInputStream(socket.getInputStream());
        out = socket.getOutputStream();
        expect("220", readReply());
        command("EHLO client.test", "250");
    }

    /** Sends one message; returns the queue id from {@code 250 ... queued as ID}. */
    String send(final String from, final List<String> to, final byte[] wireBody) throws IOException
    {
        command("MAIL FROM:<" + from + ">", "250");
        for (final String rcpt : to)
        {
            command("RCPT TO:<" + rcpt + ">", "250");
        }
        return data(wireBody);
    }

    /** DATA, {@code wireBody} and the final dot after an envelope sent with {@link #command}; returns the queue id. */
    String data(final byte[] wireBody) throws IOException
    {
        command("DATA", "354");
        out.write(wireBody);
        out.write(".\r\n".getBytes(StandardCharsets.US_ASCII));
        out.flush();
        final String reply = readReply();
        expect("250", reply);
        final int at = reply.lastIndexOf("queued as ");
        return at < 0 ? reply : reply.substring(at + "queued as ".length()).trim();
    }

    String command(final String line, final String expectedCode) throws IOException
    {
        out.write((line + "\r\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        final String reply = readReply();
        expect(expectedCode, reply);
        return reply;
    }

    /** A whole (possibly multi-line) reply, lines joined with LF, without the last CRLF. */
    String readReply() throws IOException
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
                final int length = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                return new String(bytes, 0, length, StandardCharsets.UTF_8);
            }
            line.write(b);
        }
        return null;
    }

    private static void expect(final String code, final String reply) throws IOException
    {
        if (!reply.startsWith(code))
        {
            throw new IOException("expected " + code + ", got: " + reply);
        }
    }

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
