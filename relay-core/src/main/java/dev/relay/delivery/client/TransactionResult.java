package dev.relay.delivery.client;

import java.util.Arrays;

/**
 * Per-recipient outcomes of one transaction, in the order of {@link OutboundMessage#recipient(int)}. Built once
 * per transaction by the client session and handed to {@link ClientListener#onTransactionDone}; immutable after.
 */
public final class TransactionResult
{
    private final RecipientResult[] results;
    private final boolean sessionBroke;

    /** @param sessionBroke see {@link #sessionBroke()}. */
    public TransactionResult(final RecipientResult[] results, final boolean sessionBroke)
    {
        this.results = results;
        this.sessionBroke = sessionBroke;
    }

    /**
     * True when the transaction ended because the session broke (a timeout, a lost connection, a protocol error, a
     * 421) other than while the body was going out: the next hop is unwell, and delivery backs it off. False when
     * the server's replies ended it, when this side gave it up (the transfer was too slow), and when the session
     * failed while the body was going out: a slow link and a big message say nothing about the hop, and other
     * mail to it must not wait for that.
     */
    public boolean sessionBroke()
    {
        return sessionBroke;
    }

    public int size()
    {
        return results.length;
    }

    public RecipientResult get(final int index)
    {
        return results[index];
    }

    public int count(final RecipientResult.Status status)
    {
        int count = 0;
        for (final RecipientResult result : results)
        {
            if (result.status() == status)
            {
                count++;
            }
        }
        return count;
    }

    @Override
    public String toString()
    {
        return Arrays.toString(results);
    }
}
