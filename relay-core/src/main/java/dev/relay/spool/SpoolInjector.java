package dev.relay.spool;

import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.QueueIds;
import dev.relay.smtp.ReceivedHeader;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * Mail the relay itself puts into the spool, as Postfix's cleanup takes mail from its bounce daemon and qmgr moves
 * mail to its deferred queue — never by pretending to be an SMTP client:
 * <ul>
 * <li>{@link #inject}: a new message the relay made (a delivery status notification). The spool gives it its queue
 * id, from the relay's own generator ({@link QueueIds#DSN_GENERATOR}); it has no client address and no HELO name,
 * its {@code Received:} header says only who made it ({@link ReceivedHeader#buildLocal}), and its records say
 * {@link SpoolRecords#ORIGIN_DSN}.</li>
 * <li>{@link #requeue}: a deferred message moved forward into the current cycle, so the cycle its records are in
 * can be deleted. The copy keeps its queue id and its whole envelope as read from its records (trace header and
 * DSN parameters included); its records say {@link SpoolRecords#ORIGIN_REQUEUE}. A reader that meets both takes
 * the later one.</li>
 * </ul>
 * A requeue is copied a slice at a time: {@link #doWork()} copies at most {@link #BYTES_PER_PASS}, so a 25 MiB
 * message (or hundreds of them) never holds the owning thread for more than a fraction of a millisecond. One
 * message is copied at a time, in the order asked; the body streams from the old mapped records through one direct
 * buffer into the new ones. A requeue {@link #abandon abandoned} before its END is written leaves a partial copy no
 * reader ever sees.
 * <p>
 * Owned by one thread (the queue manager's): its writer's appender, its cursor and its generator are confined to
 * it, and commits come back to it through {@link #drainCompletions()}. Allocates per injected message; a requeue
 * allocates its envelope once.
 */
public final class SpoolInjector
{
    /** Bytes copied per {@link #doWork()}: ~0.1-0.5 ms of memcpy and page faults into fresh mapped pages. */
    public static final int BYTES_PER_PASS = 1024 * 1024;
    /** Requeues waiting to be copied; {@link #requeue} refuses more. */
    public static final int MAX_WAITING = 256;

    /** Told when an injected message is committed (durable as {@code queue.sync} says, or not). */
    @FunctionalInterface
    public interface Committed
    {
        void onCommitted(String queueIdText, boolean durable);
    }

    /** Told how a requeue ended; on the owning thread, from inside {@link #doWork()}. */
    public interface Requeued
    {
        /**
         * The copy is committed (durable as {@code queue.sync} says): {@code copy} is it, with the same envelope
         * and where its records are.
         */
        void onCopied(long queueId, SpooledMessage copy);

        /** No copy (no room, the records are gone, a write failed); the message stays where it was. */
        void onFailed(long queueId, String why);
    }

    private final SpoolWriter writer;
    private final SpoolBodyCursor cursor;
    private final QueueIds queueIds = new QueueIds(QueueIds.DSN_GENERATOR);
    private final ReceivedHeader receivedHeader;
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(SpoolRecords.MAX_CHUNK_BYTES);
    private final ArrayDeque<Requeue> waiting = new ArrayDeque<>();
    private Requeue current;
    private InboundMessage copy;

    /** One requeue asked for. */
    private record Requeue(SpooledMessage message, Requeued listener)
    {
    }

    SpoolInjector(final Spool spool, final SpoolWriter writer, final String hostname)
    {
        this.writer = writer;
        this.cursor = spool.newBodyCursor();
        this.receivedHeader = new ReceivedHeader(hostname);
    }

    /** The queue id of the next message the relay makes; the spool's, from the relay's own generator. */
    public long nextQueueId(final long nowMs)
    {
        return queueIds.next(nowMs);
    }

    /**
     * Writes a message the relay made: from {@code reversePath} (empty: the null sender) to {@code recipient}, with
     * {@code body} in wire form (CRLF, dot-stuffed) and {@code flags} ({@code InboundMessage.FLAG_*}).
     *
     * @param queueId from {@link #nextQueueId}.
     * @return false when the spool refused it (no room, a failed write); {@code onCommitted} follows otherwise.
     */
    public boolean inject(
        final long queueId, final long nowMs, final byte[] reversePath, final byte[] recipient, final int flags,
        final byte[] body, final Committed onCommitted)
    {
        final InboundMessage message = new InboundMessage();
        message.queueId(queueId);
        message.origin(SpoolRecords.ORIGIN_DSN);
        message.receivedAtMs(nowMs);
        message.addFlags(flags);
        message.clientAddress(new byte[0]);
        message.heloName(new byte[0]);
        message.reversePath(reversePath);
        message.addRecipient(recipient, 0, null);
        message.receivedHeader(receivedHeader.buildLocal(message.queueIdText(), nowMs));
        if (!writer.begin(message))
        {
            return false;
        }
        final ByteBuffer bytes = ByteBuffer.allocateDirect(Math.max(1, body.length));
        bytes.put(body).flip();
        if (!writer.append(message, bytes, 0, body.length))
        {
            writer.abort(message);
            return false;
        }
        message.addBodyBytes(body.length);
        return writer.complete(message, (m, durable) -> onCommitted.onCommitted(m.queueIdText(), durable));
    }

    /**
     * Queues {@code message} to be copied into the current cycle; {@code listener} says how it ended.
     *
     * @return false when {@link #MAX_WAITING} are already waiting (ask again later).
     */
    public boolean requeue(final SpooledMessage message, final Requeued listener)
    {
        if (waiting.size() >= MAX_WAITING)
        {
            return false;
        }
        waiting.addLast(new Requeue(message, listener));
        return true;
    }

    /** Stops copying {@code queueId}: a partial copy is left without its END (no reader sees it). */
    public void abandon(final long queueId)
    {
        if (current != null && current.message().queueId() == queueId)
        {
            writer.abort(copy);
            current = null;
            copy = null;
            return;
        }
        waiting.removeIf(requeue -> requeue.message().queueId() == queueId);
    }

    /** A requeue is waiting or being copied. */
    public boolean hasWork()
    {
        return current != null || !waiting.isEmpty();
    }

    /** Copies the next slice of the requeues; returns the bytes copied (0 when idle). */
    public int doWork()
    {
        int copied = 0;
        while (copied < BYTES_PER_PASS)
        {
            if (current == null && !startNext())
            {
                return copied;
            }
            if (current == null)
            {
                continue;
            }
            buffer.clear();
            final int read;
            try
            {
                read = cursor.read(buffer);
            }
            catch (final IllegalStateException ex)
            {
                fail(ex.getMessage());
                continue;
            }
            if (read <= 0)
            {
                finishCurrent();
                continue;
            }
            if (!writer.append(copy, buffer, 0, read))
            {
                fail("the spool refused the copy");
                continue;
            }
            copy.addBodyBytes(read);
            copied += read;
        }
        return copied;
    }

    /** Runs the commit callbacks of what the syncer made durable; the owning thread, every pass. */
    public int drainCompletions()
    {
        return writer.drainCompletions();
    }

    /** Whether commits wait for {@link #drainCompletions()}. */
    public boolean hasCompletions()
    {
        return writer.hasCompletions();
    }

    /** Ends the owning thread's pass: the pass's commits go to the syncer as one group. */
    public void endOfPass()
    {
        writer.endOfPass();
    }

    /** @return false when there was nothing to start; true when one started or failed at once. */
    private boolean startNext()
    {
        final Requeue next = waiting.pollFirst();
        if (next == null)
        {
            return false;
        }
        final SpooledMessage original = next.message();
        final InboundMessage envelope = envelopeOf(original);
        if (!writer.begin(envelope))
        {
            next.listener().onFailed(original.queueId(), "no room in the spool now");
            return true;
        }
        try
        {
            cursor.open(original);
        }
        catch (final IllegalStateException ex)
        {
            writer.abort(envelope);
            next.listener().onFailed(original.queueId(), ex.getMessage());
            return true;
        }
        current = next;
        copy = envelope;
        return true;
    }

    /** The envelope of {@code original} as its records hold it, for the copy's records. */
    private static InboundMessage envelopeOf(final SpooledMessage original)
    {
        final InboundMessage envelope = new InboundMessage();
        envelope.queueId(original.queueId);
        envelope.origin(SpoolRecords.ORIGIN_REQUEUE);
        envelope.receivedAtMs(original.receivedAtMs);
        envelope.addFlags(original.flags);
        envelope.clientAddress(original.clientAddress);
        envelope.heloName(original.heloName);
        envelope.reversePath(original.reversePath);
        for (int i = 0; i < original.recipientArray.length; i++)
        {
            envelope.addRecipient(original.recipientArray[i], original.notify(i), original.originalRecipient(i));
        }
        envelope.receivedHeader(original.receivedHeader);
        envelope.dsnRet(original.dsnRet);
        envelope.envelopeId(original.envelopeId);
        return envelope;
    }

    private void finishCurrent()
    {
        final Requeue moved = current;
        final InboundMessage written = copy;
        current = null;
        copy = null;
        final SpooledMessage original = moved.message();
        final SpooledMessage[] made = new SpooledMessage[1];
        final boolean[] committed = new boolean[1];
        if (writer.complete(written, (message, durable) ->
        {
            // with queue.sync=none this runs inside complete(), before the copy's indexes are known
            committed[0] = true;
            if (made[0] != null)
            {
                moved.listener().onCopied(original.queueId(), made[0]);
            }
        }))
        {
            made[0] = copyOf(original, writer.lane(), writer.lastStartIndex, writer.lastEndIndex, writer.lastChunkCount,
                written.bodyBytes());
            if (committed[0])
            {
                moved.listener().onCopied(original.queueId(), made[0]);
            }
        }
        else
        {
            moved.listener().onFailed(original.queueId(), "the spool refused the copy's end");
        }
    }

    /**
     * The copy of {@code original} at {@code startIndex}..{@code endIndex} of {@code lane} (the injector's, which
     * need not be the original's): the same envelope, origin requeue.
     */
    private static SpooledMessage copyOf(
        final SpooledMessage original, final int lane, final long startIndex, final long endIndex, final int chunkCount,
        final long bodyBytes)
    {
        final SpooledMessage copy = new SpooledMessage();
        copy.queueId = original.queueId;
        copy.origin = SpoolRecords.ORIGIN_REQUEUE;
        copy.receivedAtMs = original.receivedAtMs;
        copy.flags = original.flags;
        copy.clientAddress = original.clientAddress;
        copy.heloName = original.heloName;
        copy.reversePath = original.reversePath;
        copy.recipientArray = original.recipientArray;
        copy.recipients = original.recipients;
        copy.receivedHeader = original.receivedHeader;
        copy.dsnRet = original.dsnRet;
        copy.envelopeId = original.envelopeId;
        copy.notify = original.notify;
        copy.originalRecipients = original.originalRecipients;
        copy.bodyBytes = bodyBytes;
        copy.chunkCount = chunkCount;
        copy.lane = lane;
        copy.startIndex = startIndex;
        copy.endIndex = endIndex;
        copy.intactChunks = chunkCount;
        copy.intactBodyBytes = bodyBytes;
        return copy;
    }

    private void fail(final String why)
    {
        final Requeue failed = current;
        writer.abort(copy);
        current = null;
        copy = null;
        failed.listener().onFailed(failed.message().queueId(), why);
    }
}
