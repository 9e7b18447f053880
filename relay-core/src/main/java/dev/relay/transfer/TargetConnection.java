package dev.relay.transfer;

import dev.relay.transfer.SpoolTransfer.TargetUnavailable;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;

/**
 * The one reused SMTP connection of a {@link SpoolTransfer} to its target, and one transaction on it: MAIL (once more
 * on a fresh connection when a reused one turns out closed or answers 421), RCPT for each recipient, then the body
 * as BDAT LAST or DATA; RSET after a transaction that got no end of data. Owns the {@link TransferClient} (made
 * anew after it is dropped) and turns what ends the run (connection lost or timed out, 421, 4xx or 530 to MAIL) into
 * {@link TargetUnavailable}; what the replies mean for each message is {@link SpoolTransfer}'s.
 * <p>
 * Control thread only; allocates per transaction (a control path).
 */
final class TargetConnection implements AutoCloseable
{
    /** The code of the reply made up when the spool cannot give the whole body (nothing was sent of it). */
    static final int CODE_SPOOL_FAILURE = 0;

    /** Writes one transaction's body to the client, between DATA or BDAT and the end of data. */
    interface BodyWriter
    {
        void write(TransferClient client) throws IOException;
    }

    /** One transaction's replies; {@code finalReply} null when no recipient was accepted or MAIL was refused. */
    static final class Exchange
    {
        TransferClient.Reply mailReply;
        TransferClient.Reply[] rcptReplies;
        TransferClient.Reply finalReply;
    }

    private interface Step
    {
        TransferClient.Reply run() throws IOException;
    }

    private final InetSocketAddress target;
    private final String targetText;
    private final String helo;
    private final TransferClient.Timeouts timeouts;
    private TransferClient client;

    TargetConnection(final InetSocketAddress target, final String helo, final TransferClient.Timeouts timeouts)
    {
        this.target = target;
        this.targetText = target.getHostString() + ":" + target.getPort();
        this.helo = helo;
        this.timeouts = timeouts;
    }

    /** The target as {@code host:port}, for what the run prints. */
    String targetText()
    {
        return targetText;
    }

    /** The client connected now; null until {@link #connectIfNeeded} and after it was dropped. */
    TransferClient client()
    {
        return client;
    }

    /**
     * One transaction: MAIL (on a fresh connection once more when a reused one turns out closed or answers 421),
     * RCPT for each, then the body as BDAT LAST or DATA when any recipient was accepted.
     */
    Exchange exchange(
        final String id, final String mail, final List<String> rcpts, final long size, final boolean bdat,
        final boolean stuff, final BodyWriter body) throws TargetUnavailable
    {
        final Exchange exchange = new Exchange();
        exchange.mailReply = mail(id, mail);
        if (!exchange.mailReply.positive())
        {
            reset();
            return exchange;
        }
        exchange.rcptReplies = new TransferClient.Reply[rcpts.size()];
        boolean anyAccepted = false;
        for (int i = 0; i < rcpts.size(); i++)
        {
            final String rcpt = rcpts.get(i);
            exchange.rcptReplies[i] = checked(id, "RCPT", () -> client.command(rcpt));
            anyAccepted |= exchange.rcptReplies[i].positive();
        }
        if (!anyAccepted)
        {
            reset();
            return exchange;
        }
        try
        {
            if (bdat)
            {
                client.bdatLast(size);
                client.beginBody(false);
            }
            else
            {
                final TransferClient.Reply go = checked(id, "DATA", client::data);
                if (go.code() != 354)
                {
                    exchange.finalReply = go;
                    reset();
                    return exchange;
                }
                client.beginBody(stuff);
            }
            body.write(client);
        }
        catch (final IOException ex)
        {
            dropClient();
            throw new TargetUnavailable("connection to " + targetText + " lost while sending " + id + ": " +
                ex.getMessage());
        }
        catch (final IllegalStateException ex)
        {
            // the spool cannot give the whole body: never end the data (that would deliver it cut short); closing
            // the connection makes the target drop the transaction
            dropClient();
            exchange.finalReply = new TransferClient.Reply(CODE_SPOOL_FAILURE,
                List.of("cannot read the message from the spool: " + ex.getMessage()));
            return exchange;
        }
        try
        {
            exchange.finalReply = bdat ? client.endBdat() : client.endData();
        }
        catch (final IOException ex)
        {
            dropClient();
            throw new TargetUnavailable("no reply from " + targetText + " to the end of " + id + " (" +
                ex.getMessage() + "): it stays queued; the target may have it");
        }
        if (exchange.finalReply.code() == 421)
        {
            dropClient();
            throw new TargetUnavailable(targetText + " closed the connection after " + id + ": " +
                exchange.finalReply.text());
        }
        return exchange;
    }

    private TransferClient.Reply mail(final String id, final String mail) throws TargetUnavailable
    {
        for (int attempt = 0; ; attempt++)
        {
            final boolean fresh = connectIfNeeded();
            TransferClient.Reply reply = null;
            IOException failure = null;
            try
            {
                reply = client.command(mail);
            }
            catch (final IOException ex)
            {
                failure = ex;
            }
            if (failure == null && reply.code() != 421)
            {
                // 4xx to MAIL: the target takes no mail now (full, 452 4.3.1; shutting down); 530: TLS or AUTH first
                if (reply.transient4xx() || reply.code() == 530)
                {
                    dropClient();
                    throw new TargetUnavailable(targetText + " refused MAIL for " + id + ": " + reply.text());
                }
                return reply;
            }
            dropClient();
            if (fresh || attempt > 0)
            {
                throw new TargetUnavailable(targetText + (failure != null ? ": " + failure.getMessage() :
                    " refused MAIL for " + id + ": " + reply.text()));
            }
            // a reused connection the target had closed (idle timeout, a limit per connection): once more, anew
        }
    }

    /** A command whose failure or 421 ends the run (the message stays queued, nothing was sent of it). */
    private TransferClient.Reply checked(final String id, final String what, final Step step) throws TargetUnavailable
    {
        final TransferClient.Reply reply;
        try
        {
            reply = step.run();
        }
        catch (final IOException ex)
        {
            dropClient();
            throw new TargetUnavailable("connection to " + targetText + " lost at " + what + " for " + id + ": " +
                ex.getMessage());
        }
        if (reply.code() == 421)
        {
            dropClient();
            throw new TargetUnavailable(targetText + " closed the connection at " + what + " for " + id + ": " +
                reply.text());
        }
        return reply;
    }

    /** RSET after a transaction that got no end of data; a connection that fails it is dropped (and made anew). */
    private void reset()
    {
        if (client == null)
        {
            return;
        }
        try
        {
            if (client.command("RSET").positive())
            {
                return;
            }
        }
        catch (final IOException ex)
        {
            // dropped below
        }
        dropClient();
    }

    /** @return true when a new connection was made. */
    boolean connectIfNeeded() throws TargetUnavailable
    {
        if (client != null)
        {
            return false;
        }
        try
        {
            client = TransferClient.connect(target, helo, timeouts);
            return true;
        }
        catch (final IOException ex)
        {
            throw new TargetUnavailable("cannot connect to " + targetText + ": " + ex.getMessage());
        }
    }

    private void dropClient()
    {
        if (client != null)
        {
            client.close();
            client = null;
        }
    }

    /** QUIT and close. */
    @Override
    public void close()
    {
        if (client != null)
        {
            client.quit();
            client = null;
        }
    }
}
