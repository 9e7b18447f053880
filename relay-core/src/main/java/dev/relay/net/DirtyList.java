package dev.relay.net;

import java.io.IOException;
import java.util.ArrayList;

/**
 * The connections of a {@link ConnectionLoop} with output to flush at the end of this pass (each once however
 * often it wrote), and the flush of each with what follows it: write interest while the socket is full, the close
 * of a closing connection once its output is out, {@link ConnectionHandler#onOutputDrained()} when its buffer
 * emptied, and input left waiting for output space offered again.
 * <p>
 * Loop thread only: added to from the connection's steps, flushed once per pass ({@link #flushAll}). Two lists
 * swapped while flushing (what a drained handler writes goes into the other one, for the next pass); allocates
 * nothing once they have grown.
 */
final class DirtyList
{
    private final ConnectionLoop loop;
    private ArrayList<NioConnection> queued = new ArrayList<>();
    private ArrayList<NioConnection> spare = new ArrayList<>();

    DirtyList(final ConnectionLoop loop)
    {
        this.loop = loop;
    }

    /** The connection is flushed at the end of this pass (once, however often it is added). */
    void add(final NioConnection connection)
    {
        if (!connection.dirty)
        {
            connection.dirty = true;
            queued.add(connection);
        }
    }

    /** As {@link #add}, when the connection has output buffered or is closing. */
    void addIfOutput(final NioConnection connection)
    {
        if (connection.writeBuffer != null || connection.closing)
        {
            add(connection);
        }
    }

    /** @return true when no connection waits for its flush (the select may sleep). */
    boolean isEmpty()
    {
        return queued.isEmpty();
    }

    /**
     * Writes the output of every connection that produced some in this pass. A connection whose output drained
     * is told so ({@link ConnectionHandler#onOutputDrained()}); what it writes then goes out in the next pass, so
     * one connection streaming a big body cannot hold the loop in this one.
     */
    int flushAll()
    {
        final ArrayList<NioConnection> flushing = queued;
        queued = spare;
        spare = flushing;
        int count = 0;
        for (int i = 0, n = flushing.size(); i < n; i++)
        {
            final NioConnection connection = flushing.get(i);
            connection.dirty = false;
            if (connection.closed)
            {
                continue;
            }
            count++;
            try
            {
                final int flushed = loop.flush(connection);
                if (connection.closed)
                {
                    continue;
                }
                if (flushed == NioConnection.FLUSH_PENDING)
                {
                    connection.outputPending = true;
                    loop.updateInterest(connection);
                    continue;
                }
                connection.outputPending = false;
                if (flushed == NioConnection.FLUSH_HELD && !connection.closing)
                {
                    // plaintext waits for the TLS handshake; the handshake's end marks it dirty again
                    loop.updateInterest(connection);
                    continue;
                }
                if (connection.closing)
                {
                    loop.close(connection);
                    continue;
                }
                if (flushed == NioConnection.FLUSH_DRAINED)
                {
                    connection.handler.onOutputDrained();
                    if (connection.closed)
                    {
                        continue;
                    }
                }
                if (connection.hasBufferedInput() &&
                    (connection.tls == null || flushed == NioConnection.FLUSH_DRAINED))
                {
                    // input left waiting for output space: the socket may never be readable again (the client
                    // sent everything), so offer it again next pass
                    loop.resumes.queue(connection);
                }
                loop.updateInterest(connection);
            }
            catch (final IOException ex)
            {
                loop.close(connection);
            }
            catch (final RuntimeException ex)
            {
                loop.onHandlerFailure(connection, ex);
            }
        }
        flushing.clear();
        return count;
    }
}
