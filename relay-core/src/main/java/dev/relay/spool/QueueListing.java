package dev.relay.spool;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Every queued message with where it stands, streamed as the queue manager holds them — for {@code spool list} and
 * {@code spool shape}, on a running or a stopped relay, in memory bounded by the active set whatever the backlog:
 * <ol>
 * <li>the active set of the last checkpoint, with what the journal says since ({@link QueueRecovery}, read only);</li>
 * <li>the deferred messages, from the {@link DeferredIndex}, by next attempt;</li>
 * <li>the mail spooled after the checkpoint that the queue manager has not finished (its spool tail).</li>
 * </ol>
 * Each message's envelope is read from its spool records where the state says they are. On a running relay the
 * listing is a moment's view: a message that changes state while it runs can be missed or shown twice.
 * <p>
 * A spool without a checkpoint (never run by a relay with the deferred index) is listed as before: the whole journal
 * is read into memory, then the spool from its start.
 * <p>
 * Control thread; allocates per message listed.
 */
final class QueueListing
{
    /** Where a listed message is. */
    enum Kind
    {
        ACTIVE, DEFERRED, NEW
    }

    /** One message: its envelope, its state (recipient statuses, attempts, next attempt), where it is. */
    @FunctionalInterface
    interface Visitor
    {
        void onMessage(SpooledMessage message, QueueEntry state, Kind kind);
    }

    private QueueListing()
    {
    }

    /** Streams every queued message of the spool at {@code spoolDir} (read by {@code reader}) to {@code visitor}. */
    static void forEach(final Path spoolDir, final SpoolReader reader, final Visitor visitor)
    {
        final Path deferredDir = spoolDir.resolve("deferred");
        final Path journalDir = spoolDir.resolve("journal");
        if (!Files.exists(deferredDir.resolve(QueueCheckpoint.FILE)) || !Files.isDirectory(journalDir))
        {
            legacy(spoolDir, reader, visitor);
            return;
        }
        final QueueRecovery.Result state;
        try (DeferredIndex index = DeferredIndex.openReadOnly(deferredDir);
             OutcomeJournal journal = OutcomeJournal.open(journalDir, null))
        {
            state = QueueRecovery.recover(index, journal);
            for (final QueueEntry entry : state.active)
            {
                final SpooledMessage message = reader.readMessage(entry.lane, entry.queueId, entry.startIndex,
                    entry.endIndex, entry.bodyBytes, entry.chunkCount);
                if (message != null)
                {
                    visitor.onMessage(message, entry, Kind.ACTIVE);
                }
            }
            final DeferredIndex.ScanCursor cursor = new DeferredIndex.ScanCursor();
            final QueueEntry entry = new QueueEntry();
            while (index.scanNext(cursor, entry))
            {
                final SpooledMessage message = reader.readMessage(entry.lane, entry.queueId, entry.startIndex,
                    entry.endIndex, entry.bodyBytes, entry.chunkCount);
                if (message != null)
                {
                    visitor.onMessage(message, entry, Kind.DEFERRED);
                }
            }
        }
        reader.startAt(state.spoolResumeIndexes);
        final long[] readIndexes = state.spoolReadIndexes;
        final Map<Long, QueueRecovery.Tail> named = state.filter;
        final QueueEntry fresh = new QueueEntry();
        while (reader.poll(message ->
        {
            if (message.lane() < readIndexes.length && message.endIndex() < readIndexes[message.lane()])
            {
                return;
            }
            final QueueRecovery.Tail tail = named.get(message.queueId());
            if (tail != null ? !tail.takeOnce() : message.origin() == SpoolRecords.ORIGIN_REQUEUE)
            {
                return;
            }
            freshState(message, fresh);
            if (tail != null)
            {
                tail.applyTo(fresh, -1);
                fresh.dueMs = tail.legacyDueMs();
                if (!fresh.anyPending())
                {
                    return;
                }
            }
            visitor.onMessage(message, fresh, Kind.NEW);
        }, 1024) > 0)
        {
            // until the end of what is there now
        }
    }

    /** A spool from before the deferred index: the journal's word on each message, the spool from its start. */
    private static void legacy(final Path spoolDir, final SpoolReader reader, final Visitor visitor)
    {
        final Map<Long, SpoolCommand.JournalEntry> journal = SpoolCommand.readJournal(spoolDir);
        final QueueEntry state = new QueueEntry();
        while (reader.poll(message ->
        {
            final SpoolCommand.JournalEntry entry = journal.get(message.queueId());
            if (entry != null && entry.done)
            {
                return;
            }
            freshState(message, state);
            if (entry != null)
            {
                for (final Map.Entry<Integer, Byte> status : entry.status.entrySet())
                {
                    final int i = status.getKey();
                    if (i >= 0 && i < state.recipientCount())
                    {
                        state.status[i] = status.getValue() == OutcomeJournal.DELIVERED ? QueueEntry.DELIVERED :
                            status.getValue() == OutcomeJournal.BOUNCED ? QueueEntry.BOUNCED : QueueEntry.DEFERRED;
                        state.reply[i] = entry.lastError;
                    }
                }
                state.attempts = entry.attempts;
                state.dueMs = entry.nextAttemptMs;
            }
            visitor.onMessage(message, state, entry != null && entry.nextAttemptMs > 0 ? Kind.DEFERRED : Kind.NEW);
        }, 1024) > 0)
        {
            // until the end of what is there now
        }
    }

    private static void freshState(final SpooledMessage message, final QueueEntry state)
    {
        state.queueId = message.queueId();
        state.receivedAtMs = message.receivedAtMs();
        state.bodyBytes = message.bodyBytes();
        state.attempts = 0;
        state.dueMs = 0;
        state.recipients(message.recipients().size());
    }
}
