package dev.relay.smtp;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link MessageSink} in memory, for session tests: keeps completed messages, commits when the test says so
 * (as the syncer would, later and outside {@code complete}).
 */
final class MemorySink implements MessageSink
{
    static final class Stored
    {
        final String queueId;
        final String reversePath;
        final List<String> recipients = new ArrayList<>();
        final byte[] receivedHeader;
        final byte[] body;
        final int flags;
        /** DSN parameters as the envelope kept them: "RET ENVID" and per recipient "NOTIFY ORCPT" (0 / null). */
        final String mailDsn;
        final List<String> rcptDsn = new ArrayList<>();

        Stored(final InboundMessage message, final byte[] body)
        {
            this.queueId = message.queueIdText();
            this.reversePath = new String(message.reversePath(), java.nio.charset.StandardCharsets.UTF_8);
            for (final byte[] recipient : message.recipients())
            {
                recipients.add(new String(recipient, java.nio.charset.StandardCharsets.UTF_8));
            }
            this.receivedHeader = message.receivedHeader();
            this.body = body;
            this.flags = message.flags();
            this.mailDsn = message.dsnRet() + " " + text(message.envelopeId());
            for (int i = 0; i < message.recipients().size(); i++)
            {
                rcptDsn.add(message.notify(i) + " " + text(message.originalRecipient(i)));
            }
        }

        private static String text(final byte[] bytes)
        {
            return bytes == null ? null : new String(bytes, java.nio.charset.StandardCharsets.US_ASCII);
        }
    }

    final List<Stored> committed = new ArrayList<>();
    int begun;
    int aborted;
    boolean refuseBegin;
    boolean refuseAppend;
    private ByteArrayOutputStream open;
    private final List<InboundMessage> pendingMessages = new ArrayList<>();
    private final List<CommitListener> pendingListeners = new ArrayList<>();
    private final List<byte[]> pendingBodies = new ArrayList<>();

    @Override
    public boolean begin(final InboundMessage message)
    {
        if (refuseBegin)
        {
            return false;
        }
        if (open != null)
        {
            throw new AssertionError("begin while a transaction is open");
        }
        begun++;
        open = new ByteArrayOutputStream();
        return true;
    }

    @Override
    public boolean append(final InboundMessage message, final ByteBuffer buffer, final int from, final int to)
    {
        if (open == null)
        {
            throw new AssertionError("append outside a transaction");
        }
        if (refuseAppend)
        {
            return false;
        }
        for (int i = from; i < to; i++)
        {
            open.write(buffer.get(i));
        }
        return true;
    }

    @Override
    public boolean complete(final InboundMessage message, final CommitListener listener)
    {
        if (open == null)
        {
            throw new AssertionError("complete outside a transaction");
        }
        pendingMessages.add(message);
        pendingListeners.add(listener);
        pendingBodies.add(open.toByteArray());
        open = null;
        return true;
    }

    @Override
    public void abort(final InboundMessage message)
    {
        if (open == null)
        {
            throw new AssertionError("abort outside a transaction");
        }
        aborted++;
        open = null;
    }

    boolean hasPending()
    {
        return !pendingMessages.isEmpty();
    }

    boolean isOpen()
    {
        return open != null;
    }

    /** The "syncer": makes pending messages durable and calls back. */
    void commitAll()
    {
        while (!pendingMessages.isEmpty())
        {
            final InboundMessage message = pendingMessages.remove(0);
            final CommitListener listener = pendingListeners.remove(0);
            committed.add(new Stored(message, pendingBodies.remove(0)));
            listener.onCommitted(message, true);
        }
    }
}
