package dev.relay.transfer;

import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpooledMessage;

import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * Moves queued messages of a stopped relay's spool to another relay over SMTP, one message at a time on one reused
 * connection ({@link TargetConnection}), and records each recipient the other relay accepted in this spool's
 * {@link OutcomeJournal} exactly as delivery does: DELIVERED right after the 250 to the end of data, DONE once every
 * recipient is final. A later start of this relay therefore delivers none of it again, and a crash of the transfer
 * repeats at most the message in flight (the journal is not fsynced, as in delivery: a power cut can lose its newest
 * records, which then means messages sent twice, never lost).
 * <p>
 * Per message: the envelope as received (sender, {@code <>} kept; the recipients not yet delivered or bounced; SIZE;
 * BODY=8BITMIME and SMTPUTF8 as the message needs; RET, ENVID, NOTIFY and ORCPT when the target offers DSN), then the
 * body as stored, behind two header fields: {@link TransferEnvelope#TRACE_HEADER} naming this node and the original
 * queue id, and this relay's own {@code Received:}. A DATA-received body goes out verbatim (it is spooled in wire
 * form); a BDAT-received (raw) one goes as {@code BDAT n LAST} when the target offers CHUNKING, else dot-stuffed as
 * DATA.
 * More recipients than {@code delivery.max_recipients_per_transaction} take several transactions.
 * <p>
 * What stays queued (reported on the error stream, counted): a recipient the target refuses (any 4xx or 5xx to RCPT,
 * or to the message's data), and a whole message the target cannot take as it is (over its SIZE, 8-bit or SMTPUTF8
 * to a target without the extension): it is never altered to fit. Nothing is bounced: a transfer moves mail, it does
 * not judge it; what is left can be transferred again, or delivered by this relay. The run stops
 * ({@link TargetUnavailable}) when the target goes away (connection lost or timed out, 421), refuses mail altogether
 * (4xx to MAIL) or wants TLS or AUTH first (530): this client speaks plain SMTP.
 * <p>
 * When the transfer makes a message's last recipient final and earlier attempts bounced some, the non-delivery
 * report the relay would have sent then goes to the target too, before the message is recorded done
 * ({@link OwedBounce}).
 * <p>
 * Control thread only; allocates per message (a control path).
 */
final class SpoolTransfer implements AutoCloseable
{
    /**
     * The target cannot take more now: the run stops, the message being sent stays queued (when its end of data
     * went without a reply, the target may have it too: the one duplicate a stop can cause; the text says so).
     */
    static final class TargetUnavailable extends Exception
    {
        private static final long serialVersionUID = 1L;

        TargetUnavailable(final String message)
        {
            super(message);
        }
    }

    /** What happened to one message. */
    enum Outcome
    {
        /** Every recipient now final here: sent, or final before. */
        TRANSFERRED,
        /** Some recipient (or the owed report) stays queued. */
        LEFT
    }

    private final String hostname;
    private final TargetConnection connection;
    private final String targetText;
    private final int maxRecipients;
    private final OutcomeJournal journal;
    private final JournalState state;
    private final SpoolBodyCursor cursor;
    private final PrintStream out;
    private final PrintStream err;
    private final ByteBuffer chunk = ByteBuffer.allocateDirect(256 * 1024);

    long messagesSent;
    long recipientsSent;
    long bytesSent;
    long messagesFinished;
    long messagesLeft;
    long recipientsLeft;
    long reportsSent;

    SpoolTransfer(
        final String hostname, final InetSocketAddress target, final String helo,
        final TransferClient.Timeouts timeouts, final int maxRecipients, final OutcomeJournal journal,
        final JournalState state, final SpoolBodyCursor cursor, final PrintStream out, final PrintStream err)
    {
        this.hostname = hostname;
        this.connection = new TargetConnection(target, helo, timeouts);
        this.targetText = connection.targetText();
        this.maxRecipients = Math.max(1, maxRecipients);
        this.journal = journal;
        this.state = state;
        this.cursor = cursor;
        this.out = out;
        this.err = err;
    }

    /** Recipients of {@code message} still to be sent: not delivered or bounced by the journal's account. */
    static List<Integer> pending(final SpooledMessage message, final JournalState.Entry entry)
    {
        final List<Integer> pending = new ArrayList<>();
        for (int i = 0; i < message.recipients().size(); i++)
        {
            if (!entry.isFinal(i))
            {
                pending.add(i);
            }
        }
        return pending;
    }

    /** Connects now, so a target that is not there stops the run before the first message. */
    void connect() throws TargetUnavailable
    {
        connection.connectIfNeeded();
    }

    Outcome transfer(final SpooledMessage message) throws TargetUnavailable
    {
        final JournalState.Entry entry = state.track(message.queueId());
        entry.handled = true;
        List<Integer> pending = pending(message, entry);
        final boolean hadPending = !pending.isEmpty();
        final List<Integer> left = new ArrayList<>();
        final byte[] headers = TransferEnvelope.traceHeaders(hostname, message, Instant.now());
        final long size = headers.length + message.bodyBytes();
        int sentHere = 0;
        boolean warnedDsn = false;
        while (!pending.isEmpty())
        {
            connection.connectIfNeeded();
            final TransferClient client = connection.client();
            final String refusal = TransferEnvelope.cannotTake(message, size, client);
            if (refusal != null)
            {
                err.println("transfer: " + message.queueIdText() + ": not sent: " + refusal + "; it stays queued");
                left.addAll(pending);
                break;
            }
            if (!client.dsn() && !warnedDsn && TransferEnvelope.asksForDsn(message))
            {
                warnedDsn = true;
                err.println("transfer: " + message.queueIdText() + ": " + targetText + " does not offer DSN: the " +
                    "message's DSN requests (RET, ENVID, NOTIFY, ORCPT) are not passed on");
            }
            final List<Integer> batch = new ArrayList<>(pending.subList(0, Math.min(maxRecipients, pending.size())));
            final List<Integer> rest = new ArrayList<>(pending.subList(batch.size(), pending.size()));
            final List<Integer> deferred = new ArrayList<>();
            final int sent = sendMessage(message, entry, batch, headers, size, deferred, left);
            sentHere += sent;
            // RFC 5321 §4.5.3.1.10: recipients a server put off (452 too many) go in another transaction, as long
            // as each one gets somewhere
            if (sent > 0)
            {
                rest.addAll(deferred);
            }
            else
            {
                left.addAll(deferred);
            }
            pending = rest;
        }
        if (sentHere > 0)
        {
            messagesSent++;
        }
        if (!left.isEmpty())
        {
            messagesLeft++;
            recipientsLeft += left.size();
            return Outcome.LEFT;
        }
        final byte[] report;
        try
        {
            report = OwedBounce.build(hostname, message, entry, cursor, System.currentTimeMillis());
        }
        catch (final IllegalArgumentException | IllegalStateException ex)
        {
            err.println("transfer: " + message.queueIdText() + ": cannot build its non-delivery report (" +
                ex.getMessage() + "); the message stays queued");
            messagesLeft++;
            return Outcome.LEFT;
        }
        if (report != null && !sendReport(message, report))
        {
            messagesLeft++;
            return Outcome.LEFT;
        }
        journal.recordDone(message.queueId());
        entry.done = true;
        if (!hadPending)
        {
            messagesFinished++;
        }
        return Outcome.TRANSFERRED;
    }

    /** Sends {@code message} to the recipients of {@code batch}; returns how many the target took. */
    private int sendMessage(
        final SpooledMessage message, final JournalState.Entry entry, final List<Integer> batch, final byte[] headers,
        final long size, final List<Integer> deferred, final List<Integer> left) throws TargetUnavailable
    {
        final String id = message.queueIdText();
        final TransferClient client = connection.client();
        final List<String> rcpts = new ArrayList<>(batch.size());
        for (final int index : batch)
        {
            rcpts.add(TransferEnvelope.rcpt(message, index, client));
        }
        final boolean raw = TransferEnvelope.raw(message);
        final boolean bdat = raw && client.chunking();
        final String mail = TransferEnvelope.mail(message, size, client);
        final TargetConnection.Exchange exchange = connection.exchange(id, mail, rcpts, size, bdat, raw, c ->
        {
            c.body(ByteBuffer.wrap(headers));
            cursor.open(message);
            while (true)
            {
                chunk.clear();
                if (cursor.read(chunk) < 0)
                {
                    break;
                }
                chunk.flip();
                c.body(chunk);
            }
        });
        int sent = 0;
        for (int k = 0; k < batch.size(); k++)
        {
            final int index = batch.get(k);
            final TransferClient.Reply reply = exchange.mailReply.positive() ? exchange.rcptReplies[k] :
                exchange.mailReply;
            final TransferClient.Reply result = reply.positive() ? exchange.finalReply : reply;
            if (result.positive())
            {
                journal.recordResult(message.queueId(), index, OutcomeJournal.DELIVERED, entry.attempts + 1, 0,
                    "transferred to " + targetText + ": " + result.text());
                entry.record(index, OutcomeJournal.DELIVERED, null);
                sent++;
                continue;
            }
            final String step = result == exchange.mailReply ? "MAIL" : result == reply ? "RCPT" : "DATA";
            final String why = result.code() == TargetConnection.CODE_SPOOL_FAILURE ? "not sent: " :
                "refused by " + targetText + " at " + step + ": ";
            err.println("transfer: " + id + " <" + TransferEnvelope.recipient(message, index) + ">: " + why +
                result.text() + "; stays queued");
            (result.transient4xx() ? deferred : left).add(index);
        }
        if (sent > 0)
        {
            recipientsSent += sent;
            bytesSent += size;
            out.println(id + " -> " + targetText + ": " + sent + (sent == 1 ? " recipient, " : " recipients, ") +
                size + " bytes: " + exchange.finalReply.text());
        }
        return sent;
    }

    /** The owed non-delivery report of {@code message}, from {@code <>} to its sender; true once the target took it. */
    private boolean sendReport(final SpooledMessage message, final byte[] report) throws TargetUnavailable
    {
        connection.connectIfNeeded();
        final TransferClient client = connection.client();
        final String id = message.queueIdText();
        boolean eightBit = false;
        for (final byte b : report)
        {
            eightBit |= b < 0;
        }
        final boolean utf8 = TransferEnvelope.smtpUtf8(message);
        if ((eightBit && !client.eightBitMime()) || (utf8 && !client.smtpUtf8()))
        {
            err.println("transfer: " + id + ": its non-delivery report needs " + (utf8 ? "SMTPUTF8" : "8BITMIME") +
                ", which " + targetText + " does not offer; the message stays queued");
            return false;
        }
        final String mail = "MAIL FROM:<>" + (client.offersSize() ? " SIZE=" + report.length : "") +
            (eightBit ? " BODY=8BITMIME" : "") + (utf8 ? " SMTPUTF8" : "");
        final TargetConnection.Exchange exchange = connection.exchange(id, mail,
            List.of("RCPT TO:<" + new String(message.reversePath(), StandardCharsets.UTF_8) + ">"), report.length,
            false, false, c -> c.body(ByteBuffer.wrap(report)));
        final TransferClient.Reply result = !exchange.mailReply.positive() ? exchange.mailReply :
            !exchange.rcptReplies[0].positive() ? exchange.rcptReplies[0] : exchange.finalReply;
        if (!result.positive())
        {
            err.println("transfer: " + id + ": its non-delivery report was refused by " + targetText + ": " +
                result.text() + "; the message stays queued");
            return false;
        }
        reportsSent++;
        out.println(id + " -> " + targetText + ": non-delivery report to <" +
            new String(message.reversePath(), StandardCharsets.UTF_8) + ">: " + result.text());
        return true;
    }

    /** QUIT and close. */
    @Override
    public void close()
    {
        connection.close();
    }
}
