package dev.relay.delivery;

import dev.relay.smtp.MailAddresses;
import dev.relay.smtp.QueueIds;

import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One operator's queue command ({@code ops/relay spool hold|release|delete|requeue}, Postfix's postsuper verbs): a
 * verb, the messages it selects, and who asked (for the log). Made on the admin endpoint's thread from the request
 * body, handed to the queue manager through its proxy, run there on its own thread ({@link QueueManager}), and
 * answered with how many messages it touched.
 * <p>
 * The request body, one {@code key=value} a line (UTF-8):
 * <pre>
 * id=6H27MCQFW0000       a queue id; repeated for more
 * all=yes                every queued message
 * sender=a@b.example     messages from this sender (the whole address, case-insensitive, angle brackets optional);
 *                        "&lt;&gt;" the null sender
 * recipient-domain=d.example   messages with a recipient still to deliver in this domain (subdomains not included)
 * operator=TEXT          who ran which command, for the log
 * </pre>
 * A selection is ids, or all, or sender and/or recipient-domain (both: messages matching both). Selection is per
 * message, as postsuper's: a message is held, released, deleted or requeued whole.
 * <p>
 * Immutable but for its reply, which the queue manager completes once.
 */
public final class QueueCommand
{
    /** What the command does, with the words of its log line and its reply. */
    public enum Verb
    {
        HOLD("placed on hold", "Placed on hold"),
        RELEASE("released from hold", "Released from hold"),
        DELETE("removed by the operator", "Deleted"),
        REQUEUE("requeued", "Requeued");

        final String logged;
        final String replied;

        Verb(final String logged, final String replied)
        {
            this.logged = logged;
            this.replied = replied;
        }

        /** The verb named in a request path ({@code hold}, ...); null when none is. */
        public static Verb named(final String name)
        {
            for (final Verb verb : values())
            {
                if (verb.name().toLowerCase(Locale.ROOT).equals(name))
                {
                    return verb;
                }
            }
            return null;
        }
    }

    final Verb verb;
    private final Set<Long> ids;
    private final boolean all;
    /** Lower case; "" for the null sender; null when not selected by sender. */
    private final String sender;
    private final String recipientDomain;
    final String operator;
    private final CompletableFuture<Integer> touched = new CompletableFuture<>();

    private QueueCommand(
        final Verb verb, final Set<Long> ids, final boolean all, final String sender, final String recipientDomain,
        final String operator)
    {
        this.verb = verb;
        this.ids = ids;
        this.all = all;
        this.sender = sender;
        this.recipientDomain = recipientDomain;
        this.operator = operator;
    }

    /**
     * @param verb the verb as the request path names it.
     * @param body the request body (see the class comment).
     * @throws IllegalArgumentException with a message for the operator when either is not valid.
     */
    public static QueueCommand parse(final String verb, final String body)
    {
        final Verb named = Verb.named(verb);
        if (named == null)
        {
            throw new IllegalArgumentException("unknown queue command " + verb);
        }
        final Set<Long> ids = new HashSet<>();
        boolean all = false;
        String sender = null;
        String recipientDomain = null;
        String operator = "unknown operator";
        for (final String line : body.split("\r?\n"))
        {
            if (line.isBlank())
            {
                continue;
            }
            final int eq = line.indexOf('=');
            final String key = eq < 0 ? line.trim() : line.substring(0, eq).trim();
            final String value = eq < 0 ? "" : line.substring(eq + 1).trim();
            switch (key)
            {
                case "id":
                    final long id = QueueIds.parse(value);
                    if (id < 0)
                    {
                        throw new IllegalArgumentException("not a queue id: " + value);
                    }
                    ids.add(id);
                    break;
                case "all":
                    all = true;
                    break;
                case "sender":
                    // as written in MAIL FROM or bare; <> is the null sender
                    final String bare = value.startsWith("<") && value.endsWith(">") ?
                        value.substring(1, value.length() - 1) : value;
                    sender = bare.toLowerCase(Locale.ROOT);
                    break;
                case "recipient-domain":
                    recipientDomain = MailAddresses.domain(value.getBytes(StandardCharsets.UTF_8), 0,
                        value.getBytes(StandardCharsets.UTF_8).length);
                    if (recipientDomain.isEmpty())
                    {
                        throw new IllegalArgumentException("recipient-domain is empty");
                    }
                    break;
                case "operator":
                    // goes into log lines: no control characters
                    operator = value.replaceAll("\\p{Cntrl}", "?");
                    break;
                default:
                    throw new IllegalArgumentException("unknown selection " + key);
            }
        }
        final int kinds = (ids.isEmpty() ? 0 : 1) + (all ? 1 : 0) + (sender != null || recipientDomain != null ? 1 : 0);
        if (kinds != 1)
        {
            throw new IllegalArgumentException("give queue ids, or all, or sender and/or recipient-domain");
        }
        return new QueueCommand(named, ids, all, sender, recipientDomain, operator);
    }

    /** Whether the selection needs the envelope (sender, recipients) to decide; else {@link #selects(long)} does. */
    boolean needsEnvelope()
    {
        return sender != null || recipientDomain != null;
    }

    /** Whether the selection takes message {@code queueId} (ids or all; for the others see the envelope). */
    boolean selects(final long queueId)
    {
        return all || ids.contains(queueId);
    }

    /**
     * Whether the selection takes a message from {@code reversePath} whose recipients not yet final
     * ({@code pending[i]}) include {@code recipients}.
     */
    boolean selects(final byte[] reversePath, final java.util.List<byte[]> recipients, final boolean[] pending)
    {
        if (sender != null && !sender.equals(new String(reversePath, StandardCharsets.UTF_8).toLowerCase(Locale.ROOT)))
        {
            return false;
        }
        if (recipientDomain == null)
        {
            return true;
        }
        for (int i = 0; i < recipients.size(); i++)
        {
            if (pending[i] && recipientDomain.equals(MailAddresses.domainOf(recipients.get(i))))
            {
                return true;
            }
        }
        return false;
    }

    /** The queue manager ran it: {@code count} messages touched. */
    void complete(final int count)
    {
        touched.complete(count);
    }

    /** The queue manager could not run it (stopping, or a fault). */
    void fail(final String reason)
    {
        touched.completeExceptionally(new IllegalStateException(reason));
    }

    /**
     * Waits for the queue manager's answer (the admin endpoint's thread).
     *
     * @return the reply's text, as postsuper words it ({@code Placed on hold: 3 messages}).
     * @throws IllegalStateException when it was not run, or not within {@code timeoutMs}.
     */
    public String awaitReply(final long timeoutMs) throws InterruptedException
    {
        try
        {
            final int count = touched.get(timeoutMs, TimeUnit.MILLISECONDS);
            return verb.replied + ": " + count + (count == 1 ? " message" : " messages");
        }
        catch (final ExecutionException ex)
        {
            throw new IllegalStateException(ex.getCause().getMessage(), ex.getCause());
        }
        catch (final TimeoutException ex)
        {
            throw new IllegalStateException("the queue manager did not answer within " + timeoutMs + " ms", ex);
        }
    }

    /** The count once run; -1 before (tests). */
    int touchedNow()
    {
        return touched.getNow(-1);
    }

    @Override
    public String toString()
    {
        return verb.name().toLowerCase(Locale.ROOT) + (all ? " all" : "") + (ids.isEmpty() ? "" : " " + ids.size() +
            " ids") + (sender == null ? "" : " sender=<" + sender + ">") +
            (recipientDomain == null ? "" : " recipient-domain=" + recipientDomain);
    }
}
