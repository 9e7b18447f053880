package dev.relay.spool;

import dev.relay.smtp.DsnParameters;
import dev.relay.smtp.QueueIds;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The read-only spool tool ({@code relay spool list|show ID|shape}): opens the spool directory as a plain Chronicle
 * reader, so it works on a running relay and on a stopped one, and never creates anything.
 * <pre>
 * list     one line per complete message: queue id, age, body size, sender (with RET= and ENVID= when given),
 *          recipients (with NOTIFY= when given), state (ready, deferred until, held); then a count line
 * show ID  the envelope (DSN parameters too: RET, ENVID, NOTIFY, ORCPT), then the message as it will be
 *          delivered (Received header + body, wire form)
 * shape    recipients still to deliver by destination domain and age, as Postfix's qshape ({@link SpoolShape});
 *          {@code --sender} groups by sender domain
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
        if (!validUsage(args))
        {
            out.println("usage: spool list | spool show QUEUE_ID | spool shape [--sender]");
            return 2;
        }
        try (SpoolReader reader = SpoolReader.open(spoolDir))
        {
            switch (args[0])
            {
                case "list":
                    return list(reader, spoolDir, out);
                case "shape":
                    return shape(reader, spoolDir, args.length == 2, out);
                default:
                    return show(reader, args[1], out);
            }
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

    private static boolean validUsage(final String[] args)
    {
        if (args.length == 0)
        {
            return false;
        }
        switch (args[0])
        {
            case "list":
                return args.length == 1;
            case "show":
                return args.length == 2;
            case "shape":
                return args.length == 1 || (args.length == 2 && "--sender".equals(args[1]));
            default:
                return false;
        }
    }

    private static int shape(final SpoolReader reader, final Path spoolDir, final boolean bySender, final PrintStream out)
    {
        final SpoolShape shape = new SpoolShape(bySender, System.currentTimeMillis());
        QueueListing.forEach(spoolDir, reader, (message, state, kind) -> shape.add(message, state));
        shape.print(out);
        return 0;
    }

    /**
     * One line per queued message, streamed (at 10 million messages the first lines come at once, in bounded
     * memory): the active set, then deferred mail by next attempt, then mail the queue manager has not read yet.
     */
    private static int list(final SpoolReader reader, final Path spoolDir, final PrintStream out)
    {
        final long nowMs = System.currentTimeMillis();
        final long[] totals = new long[2];
        QueueListing.forEach(spoolDir, reader, (m, state, kind) ->
        {
            totals[0]++;
            totals[1] += m.bodyBytes();
            out.printf("%-13s %6s %9d  <%s>%s  %s  %s%n",
                m.queueIdText(), age(nowMs - m.receivedAtMs()), m.bodyBytes(), text(m.reversePath()),
                mailDsn(m), pendingRecipients(m, state), state(state, kind, nowMs));
        });
        out.println("-- " + totals[0] + (totals[0] == 1 ? " message, " : " messages, ") + totals[1] + " bytes");
        return 0;
    }

    /** What delivery recorded about one message (see {@link OutcomeJournal}). */
    static final class JournalEntry
    {
        final Map<Integer, Byte> status = new HashMap<>();
        String lastError;
        int attempts;
        long nextAttemptMs;
        boolean done;
        /** An operator put it on hold ({@code spool hold}) and has not released it. */
        boolean held;
    }

    /** A spool from before the deferred index: what the whole journal says, per message (see {@link QueueListing}). */
    static Map<Long, JournalEntry> readJournal(final Path spoolDir)
    {
        final Map<Long, JournalEntry> entries = new HashMap<>();
        final Path dir = spoolDir.resolve("journal");
        if (!Files.isDirectory(dir))
        {
            return entries;
        }
        try (OutcomeJournal journal = OutcomeJournal.open(dir, null))
        {
            journal.replay(new OutcomeJournal.Visitor()
            {
                @Override
                public void onResult(
                    final long queueId, final int recipient, final byte status, final int attempts,
                    final long nextAttemptMs, final String text)
                {
                    final JournalEntry entry = entries.computeIfAbsent(queueId, ignored -> new JournalEntry());
                    entry.status.put(recipient, status);
                    entry.attempts = Math.max(entry.attempts, attempts);
                    if (status == OutcomeJournal.DEFERRED)
                    {
                        entry.nextAttemptMs = nextAttemptMs;
                        entry.lastError = text;
                    }
                }

                @Override
                public void onDone(final long queueId)
                {
                    entries.computeIfAbsent(queueId, ignored -> new JournalEntry()).done = true;
                }

                @Override
                public void onHeld(final long queueId, final boolean held)
                {
                    entries.computeIfAbsent(queueId, ignored -> new JournalEntry()).held = held;
                }
            });
        }
        catch (final RuntimeException ex)
        {
            // a journal that cannot be read leaves the listing without delivery state, not without messages
        }
        return entries;
    }

    private static String pendingRecipients(final SpooledMessage m, final QueueEntry state)
    {
        final List<byte[]> recipients = m.recipients();
        final StringBuilder text = new StringBuilder();
        for (int i = 0; i < recipients.size(); i++)
        {
            final byte status = i < state.recipientCount() ? state.status[i] : QueueEntry.READY;
            if (status == QueueEntry.DELIVERED || status == QueueEntry.BOUNCED)
            {
                continue;
            }
            if (text.length() > 0)
            {
                text.append(' ');
            }
            text.append(text(recipients.get(i)));
            if (m.notify(i) != 0)
            {
                text.append("(NOTIFY=").append(DsnParameters.notifyText(m.notify(i))).append(')');
            }
        }
        return text.toString();
    }

    /** {@code " RET=HDRS ENVID=x"}: the DSN parameters of MAIL (RFC 3461 §4.3, §4.4), empty when none were given. */
    private static String mailDsn(final SpooledMessage m)
    {
        return (m.dsnRet() == DsnParameters.RET_NONE ? "" : " RET=" + DsnParameters.retText(m.dsnRet())) +
            (m.envelopeId() == null ? "" : " ENVID=" + text(m.envelopeId()));
    }

    private static String state(final QueueEntry state, final QueueListing.Kind kind, final long nowMs)
    {
        if (state.held())
        {
            return "held" + (state.attempts == 0 ? "" : ", attempts=" + state.attempts);
        }
        if (kind == QueueListing.Kind.ACTIVE && state.dueMs <= nowMs)
        {
            return "active" + (state.attempts > 0 ? ", attempts=" + state.attempts : "");
        }
        if (state.dueMs == 0)
        {
            return "ready";
        }
        String lastError = null;
        for (int i = 0; i < state.recipientCount() && lastError == null; i++)
        {
            if (state.status[i] == QueueEntry.DEFERRED)
            {
                lastError = state.reply[i];
            }
        }
        final String when = state.dueMs <= nowMs ? "due now" :
            "deferred until " + java.time.Instant.ofEpochMilli(state.dueMs).truncatedTo(
                java.time.temporal.ChronoUnit.SECONDS);
        return when + ", attempts=" + state.attempts + (lastError == null ? "" : " (" + lastError + ")");
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
        out.println("origin:      " + SpoolRecords.originName(m.origin()));
        out.println("client:      " + (m.clientAddress().length == 0 ? "none" :
            text(m.clientAddress()) + " (helo " + text(m.heloName()) + ")"));
        out.println("sender:      <" + text(m.reversePath()) + ">" + mailDsn(m));
        out.println("recipients:  " + recipients(m));
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

    /** The recipients, each with its NOTIFY and ORCPT when given (RFC 3461 §4.1, §4.2). */
    private static String recipients(final SpooledMessage m)
    {
        final StringBuilder text = new StringBuilder();
        for (int i = 0; i < m.recipients().size(); i++)
        {
            if (text.length() > 0)
            {
                text.append(' ');
            }
            text.append(text(m.recipients().get(i)));
            if (m.notify(i) != 0 || m.originalRecipient(i) != null)
            {
                text.append('(');
                if (m.notify(i) != 0)
                {
                    text.append("NOTIFY=").append(DsnParameters.notifyText(m.notify(i)));
                }
                if (m.originalRecipient(i) != null)
                {
                    text.append(m.notify(i) != 0 ? " " : "").append("ORCPT=").append(text(m.originalRecipient(i)));
                }
                text.append(')');
            }
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
