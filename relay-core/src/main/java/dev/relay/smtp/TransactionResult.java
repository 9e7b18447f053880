package dev.relay.smtp;

import java.util.Arrays;

/**
 * Per-recipient outcomes of one transaction, in the order of {@link OutboundMessage#recipient(int)}. Built once
 * per transaction by the client session and handed to {@link ClientListener#onTransactionDone}; immutable after.
 */
public final class TransactionResult
{
    private final RecipientResult[] results;

    TransactionResult(final RecipientResult[] results)
    {
        this.results = results;
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
