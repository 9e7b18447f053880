package dev.relay.transfer;

import dev.relay.spool.OutcomeJournal;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * What the outcome journal says about each queued message, replayed once before a transfer: per recipient its
 * last status (delivered, bounced, deferred), the reply of a bounce (for the report still owed), the attempts so
 * far, and whether the message is done. The same reading {@code spool list} and a restarting relay make: a recipient
 * is still to be sent unless its last record says delivered or bounced, and a message with a DONE record is finished.
 * <p>
 * Kept compact, since a spool can hold millions of messages: a status byte per recipient, and reply texts only for
 * bounced recipients. Control thread; allocates per message.
 */
final class JournalState
{
    private static final byte[] NO_STATUS = new byte[0];

    /** One message's records. */
    static final class Entry
    {
        private byte[] status = NO_STATUS;
        private String[] bouncedText;
        int attempts;
        boolean done;
        /** This run has sent (or listed) the message already: a second copy of it in the spool is skipped. */
        boolean handled;

        /** Whether recipient {@code index} is delivered, bounced or deleted by an operator. */
        boolean isFinal(final int index)
        {
            final byte last = index < status.length ? status[index] : 0;
            return last == OutcomeJournal.DELIVERED || last == OutcomeJournal.BOUNCED ||
                last == OutcomeJournal.DELETED;
        }

        boolean isBounced(final int index)
        {
            return index < status.length && status[index] == OutcomeJournal.BOUNCED;
        }

        /** The reply that bounced recipient {@code index}, or null. */
        String bouncedText(final int index)
        {
            return bouncedText == null || index >= bouncedText.length ? null : bouncedText[index];
        }

        void record(final int index, final byte result, final String text)
        {
            if (index < 0 || index > 1_000_000)
            {
                return;
            }
            if (index >= status.length)
            {
                status = Arrays.copyOf(status, index + 1);
            }
            status[index] = result;
            if (result == OutcomeJournal.BOUNCED)
            {
                if (bouncedText == null || index >= bouncedText.length)
                {
                    bouncedText = Arrays.copyOf(bouncedText == null ? new String[0] : bouncedText, status.length);
                }
                bouncedText[index] = text;
            }
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
                final Entry entry = state.track(queueId);
                entry.record(recipient, status, text);
                entry.attempts = Math.max(entry.attempts, attempts);
            }

            @Override
            public void onDone(final long queueId)
            {
                state.track(queueId).done = true;
            }
        });
        return state;
    }

    /** The records of {@code queueId}, read only: an empty entry (nothing done yet) when there are none. */
    Entry of(final long queueId)
    {
        final Entry entry = entries.get(queueId);
        return entry == null ? NOTHING : entry;
    }

    /** The records of {@code queueId}, made when there are none yet, to be changed. */
    Entry track(final long queueId)
    {
        return entries.computeIfAbsent(queueId, ignored -> new Entry());
    }
}
