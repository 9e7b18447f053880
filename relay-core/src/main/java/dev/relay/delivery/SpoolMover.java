package dev.relay.delivery;

import dev.relay.smtp.InboundMessage;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpoolRecords;
import dev.relay.spool.SpoolWriter;
import dev.relay.spool.SpooledMessage;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * Copies deferred messages, records and all, into the spool's current cycle under the same queue id, so the cycle
 * file their old records are in can be deleted (see {@code DeliveryAgent#moveDeferredForward}).
 * <p>
 * A copy is made a slice at a time: {@link #doWork()} copies at most {@link #BYTES_PER_PASS} per loop pass, so a
 * 25 MiB message (or hundreds of them) never holds the delivery loop for more than a fraction of a millisecond.
 * One message is copied at a time, in the order they were queued; the body streams from the old mapped records
 * through one direct buffer into the new ones. A message whose delivery round starts while it is being copied is
 * {@link #abandon abandoned}: its partial copy never gets an END, so no reader ever sees it, and it is moved again
 * later if still deferred. Delivery loop thread only.
 */
final class SpoolMover
{
    /** Bytes copied per loop pass: ~0.1-0.5 ms of memcpy and page faults into fresh mapped pages. */
    static final int BYTES_PER_PASS = 1024 * 1024;
    /** Messages waiting to be moved; {@link #offer} refuses more (they are chosen again next second). */
    static final int MAX_WAITING = 256;

    private final SpoolWriter writer;
    private final SpoolBodyCursor cursor;
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(SpoolRecords.MAX_CHUNK_BYTES);
    private final ArrayDeque<QueuedMessage> waiting = new ArrayDeque<>();
    private QueuedMessage current;
    private InboundMessage copy;

    SpoolMover(final SpoolWriter writer, final Spool spool)
    {
        this.writer = writer;
        this.cursor = spool.newBodyCursor();
    }

    /**
     * Queues {@code queued} to be moved; marks it {@link QueuedMessage#moving} until its copy is read back (the
     * agent clears the mark when it takes the copy, or when the copy fails).
     *
     * @return false when {@link #MAX_WAITING} are already waiting.
     */
    boolean offer(final QueuedMessage queued)
    {
        if (waiting.size() >= MAX_WAITING)
        {
            return false;
        }
        queued.moving = true;
        waiting.addLast(queued);
        return true;
    }

    boolean hasWork()
    {
        return current != null || !waiting.isEmpty();
    }

    /** Copies the next slice; returns the bytes copied (0 when idle). */
    int doWork()
    {
        int copied = 0;
        while (copied < BYTES_PER_PASS)
        {
            if (current == null && !startNext())
            {
                return copied;
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

    /** The message's delivery round starts: stop moving it (a partial copy is left without its END). */
    void abandon(final QueuedMessage queued)
    {
        if (current == queued)
        {
            writer.abort(copy);
            current = null;
            copy = null;
        }
        else
        {
            waiting.remove(queued);
        }
        queued.moving = false;
    }

    private boolean startNext()
    {
        final QueuedMessage next = waiting.pollFirst();
        if (next == null)
        {
            return false;
        }
        final SpooledMessage original = next.message;
        final InboundMessage envelope = new InboundMessage();
        envelope.queueId(original.queueId());
        envelope.receivedAtMs(original.receivedAtMs());
        envelope.addFlags(original.flags());
        envelope.clientAddress(original.clientAddress());
        envelope.heloName(original.heloName());
        envelope.reversePath(original.reversePath());
        for (int i = 0; i < original.recipients().size(); i++)
        {
            envelope.addRecipient(original.recipients().get(i), original.notify(i), original.originalRecipient(i));
        }
        envelope.receivedHeader(original.receivedHeader());
        envelope.dsnRet(original.dsnRet());
        envelope.envelopeId(original.envelopeId());
        if (!writer.begin(envelope))
        {
            // no room in the spool now: try again when chosen again
            next.moving = false;
            return true;
        }
        try
        {
            cursor.open(original);
        }
        catch (final IllegalStateException ex)
        {
            writer.abort(envelope);
            next.moving = false;
            DeliveryLog.warn("{}: cannot move forward: {}", original.queueIdText(), ex.getMessage());
            return true;
        }
        current = next;
        copy = envelope;
        return true;
    }

    private void finishCurrent()
    {
        final QueuedMessage moved = current;
        final InboundMessage written = copy;
        current = null;
        copy = null;
        if (writer.complete(written, (message, durable) ->
            DeliveryLog.info("{}: moved forward to the current spool cycle", message.queueIdText())))
        {
            moved.copyPending = true;
        }
        else
        {
            moved.moving = false;
        }
    }

    private void fail(final String why)
    {
        DeliveryLog.warn("{}: cannot move forward: {}", current.queueIdText(), why);
        writer.abort(copy);
        current.moving = false;
        current = null;
        copy = null;
    }
}
