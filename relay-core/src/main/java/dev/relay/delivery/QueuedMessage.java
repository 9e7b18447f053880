package dev.relay.delivery;

import dev.relay.spool.SpooledMessage;

/**
 * Delivery's view of one spooled message: where each recipient stands, the attempts so far and when the next is
 * due. Owned by the delivery thread.
 */
final class QueuedMessage
{
    static final byte READY = 0;
    static final byte IN_FLIGHT = 1;
    static final byte DEFERRED = 2;
    static final byte DELIVERED = 3;
    static final byte BOUNCED = 4;

    /** The spool copy delivery reads; replaced when the message is moved forward to a newer cycle. */
    SpooledMessage message;
    /** A newer copy seen while jobs were out: it takes over when the round ends. */
    SpooledMessage newerCopy;
    /** Queued for, or being copied into, the current cycle by the spool ({@code SpoolInjector#requeue}). */
    boolean moving;
    /** The copy was written (END appended) and the tailer has not read it back yet. */
    boolean copyPending;
    final byte[] status;
    final String[] lastReply;
    final String[] lastStatusCode;
    final String[] remoteMta;
    int attempts;
    long nextAttemptMs;
    /** Jobs of this message currently queued at or sent to a hop. */
    int jobsOut;
    /** Position in the retry heap, -1 when not scheduled. */
    int heapIndex = -1;
    /** The DSN for this message is being spooled: finished when it commits. */
    boolean bouncing;
    boolean finished;
    /** A delay warning went to the sender. */
    boolean warned;
    /**
     * Recipients relayed to a next hop without DSN whose NOTIFY asked for SUCCESS, not yet reported to the sender
     * (RFC 3461 §6.2.3); null until the first one.
     */
    boolean[] successToReport;

    QueuedMessage(final SpooledMessage message)
    {
        this.message = message;
        final int count = message.recipients().size();
        this.status = new byte[count];
        this.lastReply = new String[count];
        this.lastStatusCode = new String[count];
        this.remoteMta = new String[count];
    }

    long queueId()
    {
        return message.queueId();
    }

    String queueIdText()
    {
        return message.queueIdText();
    }

    int recipientCount()
    {
        return status.length;
    }

    boolean allFinal()
    {
        for (final byte s : status)
        {
            if (s != DELIVERED && s != BOUNCED)
            {
                return false;
            }
        }
        return true;
    }

    boolean anyBounced()
    {
        for (final byte s : status)
        {
            if (s == BOUNCED)
            {
                return true;
            }
        }
        return false;
    }

    void markSuccessToReport(final int index)
    {
        if (successToReport == null)
        {
            successToReport = new boolean[status.length];
        }
        successToReport[index] = true;
    }

    boolean anySuccessToReport()
    {
        if (successToReport != null)
        {
            for (final boolean report : successToReport)
            {
                if (report)
                {
                    return true;
                }
            }
        }
        return false;
    }

    boolean anyDeferred()
    {
        for (final byte s : status)
        {
            if (s == DEFERRED)
            {
                return true;
            }
        }
        return false;
    }
}
