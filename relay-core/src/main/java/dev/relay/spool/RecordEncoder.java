package dev.relay.spool;

import dev.relay.smtp.InboundMessage;
import net.openhft.chronicle.bytes.Bytes;

import java.nio.ByteBuffer;

/**
 * Writes one record of {@link SpoolRecords} into an excerpt being written, for {@link SpoolWriter}: the header (and
 * envelope) composed in the writer's {@code head} buffer, copied in, then the body straight from the read buffer
 * (one memcpy) or from the stage, then the {@link RecordChecksum} computed from those sources, never read back from
 * the mapped file (see the writer's {@code head}). Static: the writer passes its buffers, so this owns no state;
 * called on the writer's loop thread and allocates nothing.
 */
final class RecordEncoder
{
    private RecordEncoder()
    {
    }

    /**
     * START_BODY or WHOLE ({@code type}): the envelope, then a body of {@code bodyLength} bytes from
     * {@code buffer[from, from + bodyLength)}, or from {@code stage} when {@code buffer} is null.
     */
    static void writeEnvelopeRecord(
        final Bytes<?> bytes,
        final Bytes<byte[]> head,
        final RecordChecksum checksum,
        final byte type,
        final InboundMessage message,
        final int bodyLength,
        final ByteBuffer buffer,
        final int from,
        final ByteBuffer stage)
    {
        head.clear();
        SpoolRecords.writeEnvelope(head, type, message);
        head.writeInt(bodyLength);
        writeHead(bytes, head);
        checksum.reset().update(head);
        if (bodyLength > 0)
        {
            final ByteBuffer source = buffer != null ? buffer : stage;
            final int at = buffer != null ? from : 0;
            copy(bytes, source, at, bodyLength);
            checksum.update(source, at, at + bodyLength);
        }
        bytes.writeInt(checksum.value());
    }

    /** BODY: a chunk of message {@code queueId} from {@code buffer[from, from + length)}. */
    static void writeBody(
        final Bytes<?> bytes,
        final Bytes<byte[]> head,
        final RecordChecksum checksum,
        final long queueId,
        final ByteBuffer buffer,
        final int from,
        final int length)
    {
        head.clear();
        SpoolRecords.writeHeader(head, SpoolRecords.BODY, queueId);
        head.writeInt(length);
        writeHead(bytes, head);
        checksum.reset().update(head);
        copy(bytes, buffer, from, length);
        bytes.writeInt(checksum.update(buffer, from, from + length).value());
    }

    /** END: the commit record of message {@code queueId}, with its totals. */
    static void writeEnd(
        final Bytes<?> bytes,
        final Bytes<byte[]> head,
        final RecordChecksum checksum,
        final long queueId,
        final long bodyBytes,
        final int chunkCount)
    {
        head.clear();
        SpoolRecords.writeEnd(head, queueId, bodyBytes, chunkCount);
        writeHead(bytes, head);
        bytes.writeInt(checksum.reset().update(head).value());
    }

    /**
     * Copies the composed {@code head} into {@code bytes} as one array copy. (Chronicle copies one {@code Bytes} into
     * another a long at a time, checking on each that the target is open and on its owning thread: with a ~200-byte
     * envelope that was the largest single cost of a spool append in a profile of the relay under load.)
     */
    private static void writeHead(final Bytes<?> bytes, final Bytes<byte[]> head)
    {
        bytes.write(head.underlyingObject(), 0, (int)head.writePosition());
    }

    /**
     * Copies {@code buffer[from, from + length)} into {@code bytes}: one memcpy (native from a direct buffer, a Java
     * loop from a heap one), buffer position/limit kept.
     */
    static void copy(final Bytes<?> bytes, final ByteBuffer buffer, final int from, final int length)
    {
        if (buffer.hasArray())
        {
            bytes.write(buffer.array(), buffer.arrayOffset() + from, length);
            return;
        }
        final int position = buffer.position();
        final int limit = buffer.limit();
        try
        {
            buffer.limit(buffer.capacity()).position(from).limit(from + length);
            bytes.writeSome(buffer);
            if (buffer.hasRemaining())
            {
                throw new IllegalStateException("short copy into the spool: " + buffer.remaining() + " bytes left");
            }
        }
        finally
        {
            buffer.limit(buffer.capacity()).position(position).limit(limit);
        }
    }
}
