package dev.relay.delivery;

import dev.relay.spool.QueueEntry;
import dev.relay.spool.SpooledMessage;

/**
 * Delivery's view of one active message (in memory: being delivered, due soon, or being moved forward): where each
 * recipient stands, the attempts so far and when the next is due. A deferred message is not one of these but a
 * {@link QueueEntry} on disk; {@link #toEntry} and {@link #fromEntry} convert. Owned by the queue manager's thread.
 */
final class QueuedMessage
{
    static final byte READY = 0;
    static final byte IN_FLIGHT = 1;
    static final byte DEFERRED = 2;
    static final byte DELIVERED = 3;
    static final byte BOUNCED = 4;
    /** Deleted by an operator: final, no DSN. */
    static final byte DELETED = 5;

    /** The spool copy delivery reads; replaced when the message is moved forward to a newer cycle. */
    SpooledMessage message;
    /** Queued for, or being copied into, the current cycle by the spool ({@code SpoolInjector#requeue}). */
    boolean moving;
    /** Taken from disk only to be moved forward: once moved it goes back to wait there. */
    boolean parkWhenMoved;
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
    /** An operator put it on hold: no round starts, it waits in the hold bucket on disk until released. */
    boolean held;
    /** Taken back from the deferred queue on disk because it came due: counts against the deferred queue's share. */
    boolean takenBack;
    /** An operator deleted it while a round was out: deleted when the round ends. */
    boolean deleteAfterRound;
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

    /** A message read back from disk: {@code entry}'s state, {@code message} its envelope. */
    static QueuedMessage fromEntry(final QueueEntry entry, final SpooledMessage message)
    {
        final QueuedMessage queued = new QueuedMessage(message);
        final int count = Math.min(queued.status.length, entry.recipientCount());
        for (int i = 0; i < count; i++)
        {
            queued.status[i] = entry.status[i];
            queued.lastReply[i] = entry.reply[i];
            queued.lastStatusCode[i] = entry.statusCode[i];
            queued.remoteMta[i] = entry.remoteMta[i];
        }
        queued.attempts = entry.attempts;
        queued.nextAttemptMs = entry.dueMs;
        queued.warned = (entry.flags & QueueEntry.FLAG_WARNED) != 0;
        queued.held = (entry.flags & QueueEntry.FLAG_HELD) != 0;
        return queued;
    }

    /** Writes this message's state into {@code entry} (a recipient in flight as ready), due at {@code dueMs}. */
    void toEntry(final QueueEntry entry, final long dueMs, final int cycle)
    {
        entry.queueId = message.queueId();
        entry.dueMs = dueMs;
        entry.receivedAtMs = message.receivedAtMs();
        entry.lane = message.lane();
        entry.startIndex = message.startIndex();
        entry.endIndex = message.endIndex();
        entry.bodyBytes = message.bodyBytes();
        entry.chunkCount = message.chunkCount();
        entry.attempts = attempts;
        entry.cycle = cycle;
        entry.flags = (warned ? QueueEntry.FLAG_WARNED : 0) | (held ? QueueEntry.FLAG_HELD : 0);
        entry.recipients(status.length);
        for (int i = 0; i < status.length; i++)
        {
            final byte s = status[i];
            entry.status[i] = s == IN_FLIGHT ? READY : s;
            entry.reply[i] = lastReply[i];
            entry.statusCode[i] = lastStatusCode[i];
            entry.remoteMta[i] = remoteMta[i];
        }
    }

    /** Takes the recipients' outcomes, attempts and hold of {@code entry} (the journal's word after a restart). */
    void applyEntry(final QueueEntry entry)
    {
        final int count = Math.min(status.length, entry.recipientCount());
        for (int i = 0; i < count; i++)
        {
            if (entry.status[i] != READY)
            {
                status[i] = entry.status[i];
                lastReply[i] = entry.reply[i];
            }
        }
        attempts = Math.max(attempts, entry.attempts);
        held = (entry.flags & QueueEntry.FLAG_HELD) != 0;
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
            if (s != DELIVERED && s != BOUNCED && s != DELETED)
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
