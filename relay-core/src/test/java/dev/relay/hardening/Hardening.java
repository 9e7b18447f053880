package dev.relay.hardening;

import dev.relay.Relay;
import dev.relay.config.RelayConfig;
import dev.relay.testing.Await;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Shared pieces of the hardening tests: relay config, polling with a deadline, a blocking SMTP client, DNS. */
final class Hardening
{
    private Hardening()
    {
    }

    /** In-process relay on 127.0.0.1:0, one inbound loop, spool in {@code dir}; {@code keyValues} win. */
    static Map<String, String> config(final Path dir, final String... keyValues)
    {
        final Map<String, String> values = new LinkedHashMap<>();
        values.put("smtp.listen", "127.0.0.1:0");
        values.put("smtp.hostname", "relay.test");
        values.put("smtp.io_threads", "1");
        values.put("queue.dir", dir.toString());
        values.put("queue.min_free_bytes", "0");
        values.put("metrics.listen", "off");
        values.put("delivery.retry.schedule", "200ms");
        values.put("delivery.timeout.connect", "1s");
        values.put("delivery.timeout.command", "1s");
        values.put("delivery.timeout.data_init", "1s");
        values.put("delivery.timeout.data_block", "1s");
        values.put("delivery.timeout.data_done", "1s");
        for (int i = 0; i + 1 < keyValues.length; i += 2)
        {
            values.put(keyValues[i], keyValues[i + 1]);
        }
        return values;
    }

    static Relay start(final Map<String, String> config) throws Exception
    {
        return Relay.start(RelayConfig.fromMap(config));
    }

    /** Lets {@code window} of wall time pass (a measurement window, not a wait for a condition). */
    static void window(final Duration window)
    {
        final long end = System.nanoTime() + window.toNanos();
        while (System.nanoTime() - end < 0)
        {
            Await.pause();
        }
    }

    /** A small message in wire form with a unique Message-ID. */
    static byte[] message(final String from, final String to, final String id)
    {
        return ("From: <" + from + ">\r\n" +
            "To: <" + to + ">\r\n" +
            "Subject: hardening " + id + "\r\n" +
            "Message-ID: <" + id + "@client.test>\r\n" +
            "\r\n" +
            "body of " + id + "\r\n").getBytes(StandardCharsets.US_ASCII);
    }

    /** The {@code Message-ID} value of a delivered message, or null. */
    static String messageId(final byte[] content)
    {
        final String text = new String(content, StandardCharsets.UTF_8);
        final int at = text.indexOf("\r\nMessage-ID: <");
        if (at < 0)
        {
            return null;
        }
        final int start = at + "\r\nMessage-ID: <".length();
        return text.substring(start, text.indexOf('>', start));
    }

    /**
     * A blocking, unpipelined SMTP client (every reply belongs to the command just written) with a read timeout, so a
     * stuck relay fails the test instead of hanging it.
     */
    static final class Client implements AutoCloseable
    {
        private final Socket socket;
        private final InputStream in;
        private final OutputStream out;

        Client(final InetSocketAddress address, final Duration readTimeout) throws IOException
        {
            socket = new Socket();
            socket.connect(address, 5_000);
            socket.setSoTimeout((int)readTimeout.toMillis());
            in = new BufferedInputStream(socket.getInputStream());
            out = socket.getOutputStream();
            expect("220", readReply());
            expect("250", command("EHLO client.test"));
        }

        /**
         * One transaction. @return the final reply (the one after the body, or the first non-2xx/3xx reply to MAIL,
         * RCPT or DATA, in which case the transaction is reset).
         */
        String send(final String from, final List<String> to, final byte[] wireBody) throws IOException
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

        /** After a 354: the body and the terminating dot. @return the reply to the end of data. */
        String sendBody(final byte[] wireBody) throws IOException
        {
            // one write: body and dot in two would wait out Nagle + delayed ACK (~40 ms) on every message
            final byte[] withDot = java.util.Arrays.copyOf(wireBody, wireBody.length + 3);
            withDot[wireBody.length] = '.';
            withDot[wireBody.length + 1] = '\r';
            withDot[wireBody.length + 2] = '\n';
            out.write(withDot);
            out.flush();
            return readReply();
        }

        String command(final String line) throws IOException
        {
            out.write((line + "\r\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
            return readReply();
        }

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
                    final int length = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 :
                        bytes.length;
                    return new String(bytes, 0, length, StandardCharsets.UTF_8);
                }
                line.write(b);
            }
            return null;
        }

        static void expect(final String code, final String reply) throws IOException
        {
            if (!reply.startsWith(code))
            {
                throw new IOException("expected " + code + ", got: " + reply);
            }
        }

        /** The queue id of {@code 250 ... queued as ID}. */
        static String queueId(final String reply)
        {
            final int at = reply.lastIndexOf("queued as ");
            return at < 0 ? null : reply.substring(at + "queued as ".length()).trim();
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
}
