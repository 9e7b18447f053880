package dev.relay.spool;

import dev.relay.smtp.QueueIds;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * The read-only spool tool ({@code relay spool list|show ID}): opens the spool directory as a plain Chronicle
 * reader, so it works on a running relay and on a stopped one, and never creates anything.
 * <pre>
 * list     one line per complete message: queue id, age, body size, sender, recipients; then a count line
 * show ID  the envelope, then the message as it will be delivered (Received header + body, wire form)
 * </pre>
 * Exit codes: 0 done, 1 unknown id or no spool, 2 usage.
 * <p>
 * Control thread; allocates freely.
 */
public final class SpoolCommand
{
    private SpoolCommand()
    {
    }

    public static int run(final Path spoolDir, final String[] args, final PrintStream out)
    {
        if (args.length == 0 || ("list".equals(args[0]) && args.length != 1) ||
            ("show".equals(args[0]) && args.length != 2) || !("list".equals(args[0]) || "show".equals(args[0])))
        {
            out.println("usage: spool list | spool show QUEUE_ID");
            return 2;
        }
        try (SpoolReader reader = SpoolReader.open(spoolDir))
        {
            return "list".equals(args[0]) ? list(reader, out) : show(reader, args[1], out);
        }
        catch (final NoSuchFileException ex)
        {
            out.println("no spool at " + spoolDir.toAbsolutePath().normalize());
            return 1;
        }
        catch (final IOException | RuntimeException ex)
        {
            out.println("cannot read spool at " + spoolDir.toAbsolutePath().normalize() + ": " + ex.getMessage());
            return 1;
        }
    }

    private static int list(final SpoolReader reader, final PrintStream out)
    {
        final long nowMs = System.currentTimeMillis();
        final long[] totals = new long[2];
        while (reader.poll(m ->
        {
            totals[0]++;
            totals[1] += m.bodyBytes();
            out.printf("%-13s %6s %9d  <%s>  %s%n",
                m.queueIdText(), age(nowMs - m.receivedAtMs()), m.bodyBytes(), text(m.reversePath()),
                recipients(m.recipients()));
        }, 1024) > 0)
        {
            // until the end of what is there now
        }
        out.println("-- " + totals[0] + (totals[0] == 1 ? " message, " : " messages, ") + totals[1] + " bytes");
        return 0;
    }

    private static int show(final SpoolReader reader, final String idText, final PrintStream out)
    {
        final long queueId = QueueIds.parse(idText);
        final SpooledMessage[] found = new SpooledMessage[1];
        if (queueId >= 0)
        {
            while (found[0] == null && reader.poll(m ->
            {
                if (m.queueId() == queueId)
                {
                    found[0] = m;
                }
            }, 1024) > 0)
            {
                // scanning
            }
        }
        final SpooledMessage m = found[0];
        if (m == null)
        {
            out.println("no message " + idText + " in the spool");
            return 1;
        }
        out.println("queue id:    " + m.queueIdText());
        out.println("received:    " + java.time.Instant.ofEpochMilli(m.receivedAtMs()));
        out.println("client:      " + text(m.clientAddress()) + " (helo " + text(m.heloName()) + ")");
        out.println("sender:      <" + text(m.reversePath()) + ">");
        out.println("recipients:  " + recipients(m.recipients()));
        out.println("flags:       " + m.flags());
        out.println("size:        " + m.bodyBytes() + " bytes in " + m.chunkCount() + " chunks");
        out.println();
        out.write(m.receivedHeader(), 0, m.receivedHeader().length);
        final byte[] chunk = new byte[64 * 1024];
        reader.readBody(m, (bytes, offset, length) ->
        {
            for (int done = 0; done < length; )
            {
                final int n = Math.min(chunk.length, length - done);
                bytes.read(offset + done, chunk, 0, n);
                out.write(chunk, 0, n);
                done += n;
            }
        });
        out.flush();
        return 0;
    }

    private static String recipients(final List<byte[]> recipients)
    {
        final StringBuilder text = new StringBuilder();
        for (final byte[] rcpt : recipients)
        {
            if (text.length() > 0)
            {
                text.append(' ');
            }
            text.append(text(rcpt));
        }
        return text.toString();
    }

    private static String text(final byte[] bytes)
    {
        return bytes == null ? "" : new String(bytes, StandardCharsets.UTF_8);
    }

    static String age(final long ms)
    {
        final long s = Math.max(0, ms) / 1000;
        if (s < 60)
        {
            return s + "s";
        }
        if (s < 3600)
        {
            return (s / 60) + "m";
        }
        if (s < 86400)
        {
            return (s / 3600) + "h";
        }
        return (s / 86400) + "d";
    }
}
