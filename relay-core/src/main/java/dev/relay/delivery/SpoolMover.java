package dev.relay.delivery;

import dev.relay.smtp.InboundMessage;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolBodyCursor;
import dev.relay.spool.SpoolWriter;
import dev.relay.spool.SpooledMessage;

import java.nio.ByteBuffer;

/**
 * Copies a spooled message, records and all, into the spool's current cycle under the same queue id, so the
 * cycle file its old records are in can be deleted (see {@code DeliveryAgent#moveDeferredForward}). The body is
 * streamed from the old mapped records to the new ones through one direct buffer. Delivery loop thread only.
 */
final class SpoolMover
{
    private static final int COPY_BUFFER_BYTES = 64 * 1024;

    private final SpoolWriter writer;
    private final SpoolBodyCursor cursor;
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(COPY_BUFFER_BYTES);

    SpoolMover(final SpoolWriter writer, final Spool spool)
    {
        this.writer = writer;
        this.cursor = spool.newBodyCursor();
    }

    /** @return true when the copy was written (it commits asynchronously; the tailer will see it). */
    boolean copyForward(final SpooledMessage original)
    {
        final InboundMessage copy = new InboundMessage();
        copy.queueId(original.queueId());
        copy.receivedAtMs(original.receivedAtMs());
        copy.addFlags(original.flags());
        copy.clientAddress(original.clientAddress());
        copy.heloName(original.heloName());
        copy.reversePath(original.reversePath());
        for (int i = 0; i < original.recipients().size(); i++)
        {
            copy.addRecipient(original.recipients().get(i), original.notify(i), original.originalRecipient(i));
        }
        copy.receivedHeader(original.receivedHeader());
        copy.dsnRet(original.dsnRet());
        copy.envelopeId(original.envelopeId());
        if (!writer.begin(copy))
        {
            return false;
        }
        try
        {
            cursor.open(original);
            while (true)
            {
                buffer.clear();
                final int read = cursor.read(buffer);
                if (read <= 0)
                {
                    break;
                }
                if (!writer.append(copy, buffer, 0, read))
                {
                    writer.abort(copy);
                    return false;
                }
                copy.addBodyBytes(read);
            }
        }
        catch (final IllegalStateException ex)
        {
            writer.abort(copy);
            DeliveryLog.warn("{}: cannot move forward: {}", original.queueIdText(), ex.getMessage());
            return false;
        }
        return writer.complete(copy, (message, durable) ->
            DeliveryLog.info("{}: moved forward to the current spool cycle", message.queueIdText()));
    }
}
