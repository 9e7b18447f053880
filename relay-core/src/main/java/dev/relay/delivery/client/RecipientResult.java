package dev.relay.delivery.client;

/**
 * The outcome of one recipient of one transaction, for the outcome journal, the log and a DSN. Immutable.
 *
 * @param status       what happened.
 * @param replyCode    the peer's reply code that decided it, or 0 when it was decided here (timeout, lost
 *                     connection, a check before sending).
 * @param enhancedCode the RFC 3463 status ({@code "5.1.1"}): the peer's when it sent one, else one chosen here.
 * @param text         the reply text without code and enhanced code, or why it was decided here.
 */
public record RecipientResult(Status status, int replyCode, String enhancedCode, String text)
{
    public enum Status
    {
        /** The peer accepted the message for this recipient (2xx after the end of data). */
        DELIVERED,
        /** Try again later (4xx, timeout, lost connection). */
        DEFERRED,
        /** Permanent failure: bounce (5xx, or the peer cannot take this message). */
        FAILED
    }

    /** {@code "550 5.1.1 user unknown"}, without the code when decided here. Allocates. */
    public String diagnostic()
    {
        final StringBuilder out = new StringBuilder();
        if (replyCode != 0)
        {
            out.append(replyCode);
        }
        if (enhancedCode != null)
        {
            if (out.length() > 0)
            {
                out.append(' ');
            }
            out.append(enhancedCode);
        }
        if (text != null && !text.isEmpty())
        {
            if (out.length() > 0)
            {
                out.append(' ');
            }
            out.append(text);
        }
        return out.toString();
    }

    /** Status from a reply code's class: 2 delivered, 4 deferred, else failed. */
    static Status statusOf(final int replyCode)
    {
        switch (replyCode / 100)
        {
            case 2:
                return Status.DELIVERED;
            case 4:
                return Status.DEFERRED;
            default:
                return Status.FAILED;
        }
    }
}
