package dev.relay.delivery;

import dev.relay.spool.OutcomeJournal;

import java.util.HashMap;
import java.util.Map;

/**
 * What the outcome journal said about each message before this start (Postfix keeps it in the queue file itself;
 * here it is a journal beside the spool): per recipient the last outcome and its reply, the attempts so far, when
 * the next is due, and whether the message was finished. Filled by {@link #replay} before the queue manager's
 * thread starts; the queue manager then takes each message's entry as the spool tailer meets the message again
 * ({@link #take}), and drops what is left when the tailer reaches the end of the spool (those messages are gone).
 * <p>
 * Owned by the queue manager (the control thread replays before handing it over). Allocates per replayed record.
 */
final class JournalRecovery implements OutcomeJournal.Visitor
{
    private final Map<Long, Entry> entries = new HashMap<>();

    /** One message's journal records, merged. */
    static final class Entry
    {
        private final Map<Integer, Byte> status = new HashMap<>();
        private final Map<Integer, String> text = new HashMap<>();
        private int attempts;
        private long nextAttemptMs;
        private boolean done;

        /** Every recipient was final and the message was removed: it is not to be delivered again. */
        boolean done()
        {
            return done;
        }

        /** When the next attempt was due (0 when none was scheduled). */
        long nextAttemptMs()
        {
            return nextAttemptMs;
        }

        /** Sets the recipients' outcomes and the attempt count the journal recorded on {@code queued}. */
        void applyTo(final QueuedMessage queued)
        {
            for (final Map.Entry<Integer, Byte> entry : status.entrySet())
            {
                final int index = entry.getKey();
                if (index >= 0 && index < queued.recipientCount())
                {
                    queued.status[index] = toQueuedStatus(entry.getValue());
                    queued.lastReply[index] = text.get(index);
                }
            }
            queued.attempts = attempts;
        }
    }

    /** Reads the whole journal; returns the records read. Before the queue manager runs. */
    long replay(final OutcomeJournal journal)
    {
        return journal.replay(this);
    }

    @Override
    public void onResult(
        final long queueId, final int recipient, final byte status, final int attempts, final long nextAttemptMs,
        final String text)
    {
        final Entry entry = entries.computeIfAbsent(queueId, ignored -> new Entry());
        entry.status.put(recipient, status);
        entry.text.put(recipient, text);
        entry.attempts = Math.max(entry.attempts, attempts);
        entry.nextAttemptMs = Math.max(entry.nextAttemptMs, nextAttemptMs);
    }

    @Override
    public void onDone(final long queueId)
    {
        entries.computeIfAbsent(queueId, ignored -> new Entry()).done = true;
    }

    /**
     * The entry of {@code queueId}; null when the journal named it not. An entry that is not done is removed (its
     * message is live from now on, and a later copy of it is the live message's newer copy); a done one stays until
     * the end of the spool, since a message moved forward has two copies in the spool until its old cycle file is
     * deleted, and neither may be delivered again.
     */
    Entry take(final long queueId)
    {
        final Entry entry = entries.get(queueId);
        if (entry != null && !entry.done)
        {
            entries.remove(queueId);
        }
        return entry;
    }

    /** Still replaying: some journaled messages were not met in the spool yet, so nothing is known finished. */
    boolean replaying()
    {
        return !entries.isEmpty();
    }

    /** The tailer reached the end of the spool: what the journal still names is no longer spooled. */
    void endOfSpool()
    {
        entries.clear();
    }

    private static byte toQueuedStatus(final byte journalStatus)
    {
        switch (journalStatus)
        {
            case OutcomeJournal.DELIVERED:
                return QueuedMessage.DELIVERED;
            case OutcomeJournal.BOUNCED:
                return QueuedMessage.BOUNCED;
            default:
                return QueuedMessage.DEFERRED;
        }
    }
}
