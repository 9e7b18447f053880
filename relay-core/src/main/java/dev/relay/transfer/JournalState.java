package dev.relay.transfer;

import dev.relay.spool.OutcomeJournal;

import java.util.HashMap;
import java.util.Map;

/**
 * What the outcome journal says about each queued message, replayed once before a transfer: per recipient its
 * last status (delivered, bounced, deferred) and reply text, the attempts so far, and whether the message is done.
 * The same reading {@code spool list} and a restarting relay make: a recipient is still to be sent unless its last
 * record says delivered or bounced, and a message with a DONE record is finished.
 * <p>
 * Control thread; allocates per message.
 */
final class JournalState
{
    /** One message's records. */
    static final class Entry
    {
        final Map<Integer, Byte> status = new HashMap<>();
        final Map<Integer, String> text = new HashMap<>();
        int attempts;
        boolean done;

        /** Whether recipient {@code index} is delivered or bounced. */
        boolean isFinal(final int index)
        {
            final Byte last = status.get(index);
            return last != null && last != OutcomeJournal.DEFERRED;
        }

        boolean isBounced(final int index)
        {
            final Byte last = status.get(index);
            return last != null && last == OutcomeJournal.BOUNCED;
        }
    }

    private static final Entry NOTHING = new Entry();

    private final Map<Long, Entry> entries = new HashMap<>();

    private JournalState()
    {
    }

    /** No journal yet: nothing delivered. */
    static JournalState empty()
    {
        return new JournalState();
    }

    static JournalState replay(final OutcomeJournal journal)
    {
        final JournalState state = new JournalState();
        journal.replay(new OutcomeJournal.Visitor()
        {
            @Override
            public void onResult(
                final long queueId, final int recipient, final byte status, final int attempts,
                final long nextAttemptMs, final String text)
            {
                final Entry entry = state.entries.computeIfAbsent(queueId, ignored -> new Entry());
                entry.status.put(recipient, status);
                entry.text.put(recipient, text);
                entry.attempts = Math.max(entry.attempts, attempts);
            }

            @Override
            public void onDone(final long queueId)
            {
                state.entries.computeIfAbsent(queueId, ignored -> new Entry()).done = true;
            }
        });
        return state;
    }

    /** The records of {@code queueId}; an empty entry (nothing done yet) when there are none. */
    Entry of(final long queueId)
    {
        final Entry entry = entries.get(queueId);
        return entry == null ? NOTHING : entry;
    }

    /** Records {@code queueId}'s recipient as final here too (after the journal got the same record). */
    void onFinal(final long queueId, final int recipient, final byte status)
    {
        entries.computeIfAbsent(queueId, ignored -> new Entry()).status.put(recipient, status);
    }

    void onDone(final long queueId)
    {
        entries.computeIfAbsent(queueId, ignored -> new Entry()).done = true;
    }
}
