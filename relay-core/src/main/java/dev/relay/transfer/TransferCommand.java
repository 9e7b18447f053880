package dev.relay.transfer;

import dev.relay.config.DeliverySettings;
import dev.relay.config.RelayConfig;
import dev.relay.config.SyncMode;
import dev.relay.spool.OutcomeJournal;
import dev.relay.spool.QueueCheckpoint;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpoolLock;
import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpooledMessage;
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueue;

import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * {@code relay spool transfer --to HOST:PORT}: hands every queued message of a stopped relay to another relay over
 * SMTP ({@link SpoolTransfer}), so a node can be scaled down and its volume deleted without losing mail: Postfix's
 * {@code postsuper -r ALL} with a {@code relayhost}, in one command.
 * <pre>
 * --to HOST:PORT   the relay to hand the mail to (required; [IPv6]:PORT); it must relay for this host
 * --helo NAME      the EHLO name (default smtp.hostname)
 * --limit N        at most N messages this run (the rest stays queued, for the next run)
 * --dry-run        list what would go, send nothing (works on a running relay too)
 * </pre>
 * It refuses to run (exit 1) while a relay uses the spool: when another process holds the {@link SpoolLock} (every
 * running relay does), or when {@code /health} on {@code metrics.listen} answers. It then holds the lock itself, so
 * the relay cannot start until it is done. The spool is opened as the relay opens it (a damaged cycle file is
 * repaired first), read in commit order, and each message is sent once with the recipients the journal does not
 * call delivered or bounced (a message moved forward in the spool has two copies: the first is sent).
 * <p>
 * Output: one line per message sent on {@code out} (queue id, recipients, bytes, the target's reply with its new
 * queue id); what stays queued and why, progress every {@link #PROGRESS_EVERY} messages and the summary on
 * {@code err}. Exit codes: 0 every queued message transferred (or, with {@code --limit}, every one tried); 1 some
 * stay queued, the target went away, the spool is in use or unreadable; 2 usage.
 * <p>
 * Control thread; allocates freely.
 */
public final class TransferCommand
{
    static final int PROGRESS_EVERY = 1000;
    private static final String USAGE = "usage: spool transfer --to HOST:PORT [--helo NAME] [--limit N] [--dry-run]";

    private TransferCommand()
    {
    }

    /** Options of one run. */
    private record Options(InetSocketAddress target, String helo, long limit, boolean dryRun)
    {
        String targetText()
        {
            return target.getHostString() + ":" + target.getPort();
        }
    }

    /**
     * Runs {@code spool transfer} with {@code args} (what follows {@code transfer} on the command line) on the spool of
     * {@code config}.
     *
     * @return the exit code.
     */
    public static int run(final RelayConfig config, final String[] args, final PrintStream out, final PrintStream err)
    {
        final Options options;
        try
        {
            options = parse(args, config.delivery().hostname());
        }
        catch (final IllegalArgumentException ex)
        {
            err.println("relay: spool transfer: " + ex.getMessage());
            err.println(USAGE);
            return 2;
        }
        final Path dir = config.spool().dir().toAbsolutePath().normalize();
        if (!Files.isRegularFile(dir.resolve(SingleChronicleQueue.QUEUE_METADATA_FILE)))
        {
            err.println("relay: spool transfer: no spool at " + dir);
            return 1;
        }
        if (options.target().isUnresolved())
        {
            err.println("relay: spool transfer: cannot resolve " + options.target().getHostString());
            return 1;
        }
        if (options.dryRun())
        {
            return dryRun(config, dir, options, out, err);
        }
        final SpoolLock lock;
        try
        {
            lock = SpoolLock.tryAcquire(dir);
        }
        catch (final IOException ex)
        {
            err.println("relay: spool transfer: cannot lock the spool at " + dir + ": " + ex.getMessage());
            return 1;
        }
        if (lock == null)
        {
            err.println("relay: spool transfer: the spool at " + dir + " is in use by " + SpoolLock.holder(dir) +
                " (a running relay holds " + SpoolLock.FILE_NAME + "): stop it first");
            return 1;
        }
        try (lock)
        {
            final String answer = healthAnswer(config);
            if (answer != null)
            {
                err.println("relay: spool transfer: a relay is running: " + answer + " (metrics.listen): stop it " +
                    "first (if that relay uses another spool, run this with -Dmetrics.listen=off)");
                return 1;
            }
            return transfer(config, dir, options, out, err);
        }
        catch (final IOException | RuntimeException ex)
        {
            err.println("relay: spool transfer: " + (ex instanceof IOException ? ex.getMessage() : ex.toString()));
            return 1;
        }
    }

    private static int transfer(
        final RelayConfig config, final Path dir, final Options options, final PrintStream out, final PrintStream err)
        throws IOException
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, config.spool().rollCycle(), 0);
             OutcomeJournal journal = OutcomeJournal.open(dir.resolve("journal"), config.spool().rollCycle());
             SpoolBodyCursor cursor = spool.newBodyCursor())
        {
            final SpoolReader reader = spool.newReader(null);
            final JournalState state = JournalState.replay(journal);
            if (QueueCheckpoint.discard(dir.resolve("deferred")))
            {
                err.println("transfer: the queue checkpoint is removed: the relay's next start on this spool reads"
                    + " the whole journal, so it knows every message this transfer finishes");
            }
            err.println("transfer: sending the mail queued in " + dir + " to " + options.targetText() + " as " +
                options.helo());
            final DeliverySettings delivery = config.delivery();
            final SpoolTransfer transfer = new SpoolTransfer(delivery.hostname(), options.target(), options.helo(),
                new TransferClient.Timeouts(delivery.connectTimeout().toMillis(),
                    delivery.commandTimeout().toMillis(), delivery.dataInitTimeout().toMillis(),
                    delivery.dataBlockTimeout().toMillis(), delivery.dataDoneTimeout().toMillis()),
                delivery.maxRecipientsPerTransaction(), journal, state, cursor, out, err);
            SpoolTransfer.TargetUnavailable stopped = null;
            long tried = 0;
            final long startNs = System.nanoTime();
            try
            {
                // one message at a time, as the spool is read: a queue of millions is never on the heap
                SpooledMessage message;
                while (tried < options.limit() && (message = nextQueued(reader, state)) != null)
                {
                    if (tried == 0)
                    {
                        transfer.connect();
                    }
                    tried++;
                    transfer.transfer(message);
                    if (tried % PROGRESS_EVERY == 0)
                    {
                        err.println("transfer: " + tried + " messages in " +
                            (System.nanoTime() - startNs) / 1_000_000_000L + " s: " + transfer.messagesSent +
                            " sent (" + transfer.bytesSent + " bytes), " + transfer.messagesLeft + " left queued");
                    }
                }
            }
            catch (final SpoolTransfer.TargetUnavailable ex)
            {
                stopped = ex;
            }
            finally
            {
                transfer.close();
            }
            long untried = stopped != null ? 1 : 0;
            while (nextQueued(reader, state) != null)
            {
                untried++;
            }
            return summary(options, untried, stopped, transfer, reader, err);
        }
    }

    private static int summary(
        final Options options, final long notTried, final SpoolTransfer.TargetUnavailable stopped,
        final SpoolTransfer transfer, final SpoolReader reader, final PrintStream err)
    {
        if (stopped != null)
        {
            err.println("transfer: stopped: " + stopped.getMessage());
        }
        final StringBuilder line = new StringBuilder("transfer: ").append(transfer.messagesSent)
            .append(plural(transfer.messagesSent, " message")).append(" (").append(transfer.recipientsSent)
            .append(plural(transfer.recipientsSent, " recipient")).append(", ").append(transfer.bytesSent)
            .append(" bytes) sent to ").append(options.targetText());
        if (transfer.reportsSent > 0)
        {
            line.append(", ").append(transfer.reportsSent).append(plural(transfer.reportsSent, " non-delivery report"));
        }
        if (transfer.messagesFinished > 0)
        {
            line.append(", ").append(transfer.messagesFinished).append(" already delivered marked done");
        }
        line.append("; ").append(transfer.messagesLeft).append(plural(transfer.messagesLeft, " message"))
            .append(" (").append(transfer.recipientsLeft).append(plural(transfer.recipientsLeft, " recipient"))
            .append(") refused and left queued");
        if (notTried > 0)
        {
            line.append(", ").append(notTried).append(stopped == null ? " not tried (--limit)" : " not sent (stopped)");
        }
        err.println(line);
        final long damaged = reader.damagedMessages();
        if (damaged > 0)
        {
            err.println("transfer: " + damaged + plural(damaged, " message") + " could not be read intact from the " +
                "spool (see the ERROR lines above) and were not sent");
        }
        final boolean complete = stopped == null && transfer.messagesLeft == 0 && damaged == 0;
        return complete ? 0 : 1;
    }

    private static int dryRun(
        final RelayConfig config, final Path dir, final Options options, final PrintStream out, final PrintStream err)
    {
        try (SpoolReader reader = SpoolReader.open(dir))
        {
            final Path journalDir = dir.resolve("journal");
            final JournalState state;
            if (Files.isDirectory(journalDir))
            {
                try (OutcomeJournal journal = OutcomeJournal.open(journalDir, null))
                {
                    state = JournalState.replay(journal);
                }
            }
            else
            {
                state = JournalState.empty();
            }
            long messages = 0;
            long recipients = 0;
            long bytes = 0;
            SpooledMessage m;
            while ((m = nextQueued(reader, state)) != null)
            {
                final JournalState.Entry entry = state.track(m.queueId());
                entry.handled = true;
                final List<Integer> pending = SpoolTransfer.pending(m, entry);
                final StringBuilder line = new StringBuilder(m.queueIdText()).append(' ').append(m.bodyBytes())
                    .append(" <").append(new String(m.reversePath(), StandardCharsets.UTF_8)).append('>');
                for (final int index : pending)
                {
                    line.append(' ').append(new String(m.recipients().get(index), StandardCharsets.UTF_8));
                }
                if (pending.isEmpty())
                {
                    line.append(" (every recipient final: would be marked done)");
                }
                out.println(line);
                messages++;
                recipients += pending.size();
                bytes += m.bodyBytes();
            }
            err.println("transfer: dry run: " + messages + plural(messages, " message") + " (" + recipients +
                plural(recipients, " recipient") + ", " + bytes + " bytes) would go to " + options.targetText());
            final SpoolLock probe = SpoolLock.tryAcquire(dir);
            if (probe == null)
            {
                err.println("transfer: note: " + SpoolLock.holder(dir) + " uses this spool; the transfer itself " +
                    "needs the relay stopped");
            }
            else
            {
                probe.close();
            }
            return 0;
        }
        catch (final IOException | RuntimeException ex)
        {
            err.println("relay: spool transfer: cannot read the spool at " + dir + ": " + ex.getMessage());
            return 1;
        }
    }

    /**
     * The next complete message in commit order that is neither done nor handled by this run yet (a message moved
     * forward in the spool has two copies: the first is taken), or null at the end of the spool.
     */
    private static SpooledMessage nextQueued(final SpoolReader reader, final JournalState state)
    {
        final SpooledMessage[] next = new SpooledMessage[1];
        while (reader.poll(m -> next[0] = m, 1) > 0)
        {
            final JournalState.Entry entry = state.of(next[0].queueId());
            if (!entry.done && !entry.handled)
            {
                return next[0];
            }
        }
        return null;
    }

    /**
     * What answers {@code GET /health} on {@code metrics.listen} (any HTTP status: a relay draining says 503), or
     * null when nothing does or it is off.
     */
    private static String healthAnswer(final RelayConfig config)
    {
        final InetSocketAddress address = config.metrics().listen();
        if (address == null)
        {
            return null;
        }
        final String host = address.getAddress().isAnyLocalAddress() ? "127.0.0.1" :
            address.getAddress().getHostAddress();
        final URI uri = URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" +
            address.getPort() + "/health");
        try
        {
            final HttpResponse<String> response = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2))
                .build().send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(3)).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            return uri + " answers HTTP " + response.statusCode();
        }
        catch (final IOException ex)
        {
            return null;
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    private static Options parse(final String[] args, final String hostname)
    {
        InetSocketAddress target = null;
        String helo = hostname;
        long limit = Long.MAX_VALUE;
        boolean dryRun = false;
        for (int i = 0; i < args.length; i++)
        {
            final String arg = args[i];
            switch (arg)
            {
                case "--to":
                    target = hostPort(value(args, i++, arg));
                    break;
                case "--helo":
                    helo = value(args, i++, arg);
                    if (!helo.matches("[A-Za-z0-9.\\-\\[\\]:]+"))
                    {
                        throw new IllegalArgumentException("--helo: not a host name or address literal: " + helo);
                    }
                    break;
                case "--limit":
                    final String n = value(args, i++, arg);
                    if (!n.matches("[1-9][0-9]{0,17}"))
                    {
                        throw new IllegalArgumentException("--limit: a count of at least 1, not " + n);
                    }
                    limit = Long.parseLong(n);
                    break;
                case "--dry-run":
                    dryRun = true;
                    break;
                default:
                    throw new IllegalArgumentException("unknown option " + arg);
            }
        }
        if (target == null)
        {
            throw new IllegalArgumentException("--to HOST:PORT is required");
        }
        return new Options(target, helo, limit, dryRun);
    }

    private static String value(final String[] args, final int at, final String option)
    {
        if (at + 1 >= args.length)
        {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[at + 1];
    }

    /** {@code host:port} or {@code [v6]:port}, resolved now (unresolved when the name does not resolve). */
    static InetSocketAddress hostPort(final String text)
    {
        final int colon = text.lastIndexOf(':');
        if (colon <= 0 || colon == text.length() - 1)
        {
            throw new IllegalArgumentException("--to: HOST:PORT, not " + text);
        }
        String host = text.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]"))
        {
            host = host.substring(1, host.length() - 1);
        }
        else if (host.contains(":"))
        {
            throw new IllegalArgumentException("--to: an IPv6 address goes in brackets: [" + host + "]:PORT");
        }
        final String port = text.substring(colon + 1);
        if (!port.matches("[0-9]{1,5}") || Integer.parseInt(port) < 1 || Integer.parseInt(port) > 65535)
        {
            throw new IllegalArgumentException("--to: bad port " + port);
        }
        return new InetSocketAddress(host, Integer.parseInt(port));
    }

    private static String plural(final long count, final String noun)
    {
        return count == 1 ? noun : noun + "s";
    }
}
