package dev.relay.net;

import java.util.ArrayList;

/**
 * The connections of a {@link ConnectionLoop} whose buffered input is offered to their handler again: tarpitted
 * ones ({@link Connection#pauseInputFor}) once their delay has passed, and ones queued for this pass (input
 * resumed, output space freed with input left waiting, a TLS step that left plaintext to unwrap), which the socket
 * may never announce again since the peer may have sent everything already.
 * <p>
 * Loop thread only, called from each pass ({@link #resumeDue}, then {@link #deliverQueued}) and from the
 * connection's steps; allocates nothing once the lists have grown (the tarpit list is short and scanned each pass).
 */
final class ResumeLists
{
    private final ConnectionLoop loop;
    /** Connections to have their buffered input offered again in this pass. */
    private final ArrayList<NioConnection> queued = new ArrayList<>();
    /** Tarpitted connections and when each may read again (few; scanned each pass). */
    private final ArrayList<NioConnection> tarpitted = new ArrayList<>();

    ResumeLists(final ConnectionLoop loop)
    {
        this.loop = loop;
    }

    /** Tarpit: input resumes at {@code atMs} (the loop's wall clock). */
    void resumeAt(final NioConnection connection, final long atMs)
    {
        connection.resumeAtMs = atMs;
        if (!tarpitted.contains(connection))
        {
            tarpitted.add(connection);
        }
    }

    /** Resumes the input of the tarpitted connections due at {@code nowMs}; returns how many. */
    int resumeDue(final long nowMs)
    {
        int count = 0;
        for (int i = tarpitted.size() - 1; i >= 0; i--)
        {
            final NioConnection connection = tarpitted.get(i);
            if (connection.closed || nowMs >= connection.resumeAtMs)
            {
                tarpitted.remove(i);
                if (!connection.closed)
                {
                    connection.resumeInput();
                    count++;
                }
            }
        }
        return count;
    }

    /** The earliest end of a tarpit, or {@link Long#MAX_VALUE} with none (the test double's clock jumps there). */
    long nextResumeAtMs()
    {
        long next = Long.MAX_VALUE;
        for (int i = 0, n = tarpitted.size(); i < n; i++)
        {
            next = Math.min(next, tarpitted.get(i).resumeAtMs);
        }
        return next;
    }

    /** Queues the connection to have its buffered input offered again in this pass. */
    void queue(final NioConnection connection)
    {
        if (!connection.resumeQueued)
        {
            connection.resumeQueued = true;
            queued.add(connection);
        }
    }

    /** @return true when a connection waits to have its input offered again (the select must not sleep). */
    boolean hasQueued()
    {
        return !queued.isEmpty();
    }

    /**
     * Offers the queued connections' buffered input to their handlers (an inbound one only with no output
     * pending), then flushes what they wrote at the end of this pass; returns how many.
     */
    int deliverQueued()
    {
        int count = 0;
        for (int i = 0; i < queued.size(); i++)
        {
            final NioConnection connection = queued.get(i);
            connection.resumeQueued = false;
            if (connection.closed)
            {
                continue;
            }
            try
            {
                if (!connection.outputPending || connection.outbound)
                {
                    connection.deliverInput();
                }
                loop.dirty.addIfOutput(connection);
                loop.updateInterest(connection);
            }
            catch (final RuntimeException ex)
            {
                loop.onHandlerFailure(connection, ex);
            }
            count++;
        }
        queued.clear();
        return count;
    }
}
