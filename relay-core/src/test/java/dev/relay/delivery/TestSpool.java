package dev.relay.delivery;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolRecords;
import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpoolWriter;
import dev.relay.spool.SpooledMessage;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A real spool in a test's directory ({@code queue.sync=none}, so a message is committed when {@link #write}
 * returns), written the way an inbound session writes it, and read back with a reader of its own. Used from the
 * test thread only; close it to stop the spool's syncer.
 */
final class TestSpool implements AutoCloseable
{
    private final Spool spool;
    private final SpoolWriter writer;
    private final SpoolReader reader;
    private long nextQueueId = 1_000;

    private TestSpool(final Spool spool)
    {
        this.spool = spool;
        this.writer = spool.newWriter(() -> { });
        this.reader = spool.newReader(null);
    }

    static TestSpool open(final Path dir) throws IOException
    {
        return open(dir, "daily");
    }

    static TestSpool open(final Path dir, final String rollCycle) throws IOException
    {
        return new TestSpool(Spool.open(dir, SyncMode.NONE, rollCycle, 0));
    }

    Spool spool()
    {
        return spool;
    }

    /** Writes a message from {@code from} to {@code recipients}, received at {@code receivedAtMs}; its queue id. */
    long write(final long receivedAtMs, final String from, final String body, final String... recipients)
    {
        return writeAs(nextQueueId++, receivedAtMs, from, body, recipients);
    }

    /** Writes a message under {@code queueId}: a second copy of one already written, as a move forward leaves. */
    long writeAs(
        final long queueId, final long receivedAtMs, final String from, final String body, final String... recipients)
    {
        return writeAs((byte)0, queueId, receivedAtMs, from, body, recipients);
    }

    /** A copy of message {@code queueId} as a move forward writes it ({@link SpoolRecords#ORIGIN_REQUEUE}). */
    long writeMovedCopy(
        final long queueId, final long receivedAtMs, final String from, final String body, final String... recipients)
    {
        return writeAs(SpoolRecords.ORIGIN_REQUEUE, queueId, receivedAtMs, from, body, recipients);
    }

    private long writeAs(
        final byte origin, final long queueId, final long receivedAtMs, final String from, final String body,
        final String... recipients)
    {
        final InboundMessage message = new InboundMessage();
        message.queueId(queueId);
        message.origin(origin);
        message.receivedAtMs(receivedAtMs);
        message.clientAddress(new byte[] {127, 0, 0, 1});
        message.heloName(ascii("client.test"));
        message.reversePath(ascii(from));
        for (final String recipient : recipients)
        {
            message.addRecipient(ascii(recipient), 0, null);
        }
        message.receivedHeader(ascii("Received: from client.test by relay.test; " + queueId + "\r\n"));
        final byte[] bytes = ascii(body);
        final ByteBuffer buffer = ByteBuffer.allocateDirect(Math.max(1, bytes.length));
        buffer.put(bytes).flip();
        if (!writer.begin(message) || !writer.append(message, buffer, 0, bytes.length))
        {
            throw new IllegalStateException("the spool refused " + queueId);
        }
        message.addBodyBytes(bytes.length);
        if (!writer.complete(message, (m, durable) -> { }))
        {
            throw new IllegalStateException("the spool refused to complete " + queueId);
        }
        return queueId;
    }

    /** Writes a small message received now and reads it back. */
    SpooledMessage writeAndRead(final String from, final String... recipients)
    {
        final long queueId = write(System.currentTimeMillis(), from,
            "Subject: test\r\nMessage-ID: <" + nextQueueId + "@client.test>\r\n\r\nbody\r\n", recipients);
        for (final SpooledMessage message : readNew())
        {
            if (message.queueId() == queueId)
            {
                return message;
            }
        }
        throw new IllegalStateException("message " + queueId + " not read back");
    }

    /** Every message committed since the last call. */
    List<SpooledMessage> readNew()
    {
        final List<SpooledMessage> read = new ArrayList<>();
        while (reader.poll(read::add, 100) > 0)
        {
            // to the end
        }
        return read;
    }

    byte[] body(final SpooledMessage message)
    {
        return reader.readBodyToArray(message);
    }

    static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    @Override
    public void close()
    {
        reader.close();
        spool.close();
    }
}
