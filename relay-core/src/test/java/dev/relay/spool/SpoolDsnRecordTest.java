package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.DsnParameters;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.QueueIds;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.wire.DocumentContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

import static dev.relay.spool.SpoolTestSupport.appendAll;
import static dev.relay.spool.SpoolTestSupport.ascii;
import static dev.relay.spool.SpoolTestSupport.body;
import static dev.relay.spool.SpoolTestSupport.readAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Record version 3 keeps the DSN parameters (RFC 3461) in the envelope; version 2 records, written before, are read
 * as messages without them, bodies and all, next to version 3 records in the same spool.
 */
@Timeout(60)
class SpoolDsnRecordTest
{
    @TempDir
    Path dir;

    private static InboundMessage dsnMessage(final long queueId)
    {
        final InboundMessage message = new InboundMessage();
        message.queueId(queueId);
        message.receivedAtMs(1_790_000_000_000L);
        message.clientAddress(new byte[] {127, 0, 0, 1});
        message.heloName(ascii("client.example"));
        message.reversePath(ascii("alice@example.org"));
        message.dsnRet(DsnParameters.RET_HDRS);
        message.envelopeId(ascii("QQ+2B314"));
        message.addRecipient(ascii("bob@example.net"), DsnParameters.NOTIFY_SUCCESS | DsnParameters.NOTIFY_FAILURE,
            ascii("rfc822;bob+2Bold@example.net"));
        message.addRecipient(ascii("carol@example.net"), 0, null);
        message.addRecipient(ascii("dave@example.net"), DsnParameters.NOTIFY_NEVER, null);
        message.receivedHeader(ascii("Received: by relay; " + queueId + "\r\n"));
        return message;
    }

    private static void assertDsnParameters(final SpooledMessage m)
    {
        assertEquals(DsnParameters.RET_HDRS, m.dsnRet());
        assertArrayEquals(ascii("QQ+2B314"), m.envelopeId());
        assertEquals(3, m.recipients().size());
        assertEquals(DsnParameters.NOTIFY_SUCCESS | DsnParameters.NOTIFY_FAILURE, m.notify(0));
        assertArrayEquals(ascii("rfc822;bob+2Bold@example.net"), m.originalRecipient(0));
        assertEquals(0, m.notify(1));
        assertNull(m.originalRecipient(1));
        assertEquals(DsnParameters.NOTIFY_NEVER, m.notify(2));
        assertNull(m.originalRecipient(2));
        assertArrayEquals(ascii("dave@example.net"), m.recipients().get(2));
    }

    private static void assertNoDsnParameters(final SpooledMessage m)
    {
        assertEquals(DsnParameters.RET_NONE, m.dsnRet());
        assertNull(m.envelopeId());
        for (int i = 0; i < m.recipients().size(); i++)
        {
            assertEquals(0, m.notify(i));
            assertNull(m.originalRecipient(i));
        }
    }

    /** The body through the delivery cursor, which skips each envelope by its record's version. */
    private static byte[] cursorBody(final Spool spool, final SpooledMessage m)
    {
        final SpoolBodyCursor cursor = spool.newBodyCursor();
        cursor.open(m);
        final ByteBuffer buffer = ByteBuffer.allocateDirect((int)m.bodyBytes() + 16);
        while (cursor.read(buffer) > 0)
        {
            // until the end
        }
        final byte[] body = new byte[buffer.position()];
        buffer.flip().get(body);
        return body;
    }

    @Test
    void dsnParametersRoundTripInWholeAndChunkedMessages() throws IOException
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final byte[] small = body(1, 500);
            final byte[] large = body(2, 700_000);
            final InboundMessage whole = dsnMessage(10);
            assertTrue(writer.begin(whole));
            assertTrue(appendAll(writer, whole, small, 500));
            assertTrue(writer.complete(whole, (m, d) -> { }));
            final InboundMessage chunked = dsnMessage(11);
            assertTrue(writer.begin(chunked));
            assertTrue(appendAll(writer, chunked, large, 64 * 1024));
            assertTrue(writer.complete(chunked, (m, d) -> { }));
            final InboundMessage plain = SpoolTestSupport.message(12, "x@example.org", "y@example.net");
            assertTrue(writer.begin(plain));
            assertTrue(appendAll(writer, plain, small, 100));
            assertTrue(writer.complete(plain, (m, d) -> { }));

            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = readAll(reader);
            assertEquals(3, read.size());
            assertEquals(read.get(0).startIndex(), read.get(0).endIndex(), "one WHOLE record");
            assertTrue(read.get(1).chunkCount() > 1, "START_BODY, BODY..., END");
            assertDsnParameters(read.get(0));
            assertDsnParameters(read.get(1));
            assertNoDsnParameters(read.get(2));
            assertArrayEquals(small, reader.readBodyToArray(read.get(0)));
            assertArrayEquals(large, reader.readBodyToArray(read.get(1)));
            assertArrayEquals(small, reader.readBodyToArray(read.get(2)));
            assertArrayEquals(large, cursorBody(spool, read.get(1)));
            reader.close();
        }
    }

    @Test
    void versionTwoRecordsAreReadAsMessagesWithoutDsnParameters() throws IOException
    {
        final byte[] small = ascii("Subject: old\r\n\r\nwritten by the previous version\r\n");
        final byte[] first = body(3, 4000);
        final byte[] second = body(4, 3000);
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final ExcerptAppender appender = spool.queue().createAppender();
            append(appender, v2Envelope(SpoolRecords.WHOLE, 20, small));
            append(appender, v2Envelope(SpoolRecords.START_BODY, 21, first));
            append(appender, v2Body(21, second));
            append(appender, v2End(21, first.length + second.length, 2));
            appender.close();

            final SpoolWriter writer = spool.newWriter(() -> { });
            final InboundMessage current = dsnMessage(22);
            assertTrue(writer.begin(current));
            assertTrue(appendAll(writer, current, small, 1000));
            assertTrue(writer.complete(current, (m, d) -> { }));

            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = readAll(reader);
            assertEquals(3, read.size(), "nothing damaged: " + reader.damagedRecords());
            assertEquals(0, reader.damagedRecords());
            assertEquals(20, read.get(0).queueId());
            assertEquals(List.of("bob@example.net", "carol@example.net"), texts(read.get(0).recipients()));
            assertArrayEquals(ascii("alice@example.org"), read.get(0).reversePath());
            assertArrayEquals(ascii("Received: v2\r\n"), read.get(0).receivedHeader());
            assertNoDsnParameters(read.get(0));
            assertNoDsnParameters(read.get(1));
            assertArrayEquals(small, reader.readBodyToArray(read.get(0)));
            final byte[] both = new byte[first.length + second.length];
            System.arraycopy(first, 0, both, 0, first.length);
            System.arraycopy(second, 0, both, first.length, second.length);
            assertArrayEquals(both, reader.readBodyToArray(read.get(1)));
            assertArrayEquals(both, cursorBody(spool, read.get(1)));
            assertDsnParameters(read.get(2));
            assertArrayEquals(small, reader.readBodyToArray(read.get(2)));
            reader.close();
        }
    }

    @Test
    void spoolListAndShowPrintTheDsnParameters() throws IOException
    {
        final long id = new QueueIds(1).next(System.currentTimeMillis());
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final InboundMessage message = dsnMessage(id);
            message.receivedAtMs(System.currentTimeMillis());
            assertTrue(writer.begin(message));
            assertTrue(appendAll(writer, message, ascii("Subject: x\r\n\r\nhi\r\n"), 100));
            assertTrue(writer.complete(message, (m, d) -> { }));

            final String list = run("list");
            assertTrue(list.contains("<alice@example.org> RET=HDRS ENVID=QQ+2B314  " +
                "bob@example.net(NOTIFY=SUCCESS,FAILURE) carol@example.net dave@example.net(NOTIFY=NEVER)"), list);
            final String show = run("show", QueueIds.format(id));
            assertTrue(show.contains("sender:      <alice@example.org> RET=HDRS ENVID=QQ+2B314\n"), show);
            assertTrue(show.contains("recipients:  bob@example.net(NOTIFY=SUCCESS,FAILURE " +
                "ORCPT=rfc822;bob+2Bold@example.net) carol@example.net dave@example.net(NOTIFY=NEVER)\n"), show);
        }
    }

    private String run(final String... args)
    {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        assertEquals(0, SpoolCommand.run(dir, args, out));
        return bytes.toString(StandardCharsets.UTF_8).replace(System.lineSeparator(), "\n");
    }

    private static List<String> texts(final List<byte[]> values)
    {
        final List<String> texts = new ArrayList<>();
        for (final byte[] value : values)
        {
            texts.add(new String(value, StandardCharsets.US_ASCII));
        }
        return texts;
    }

    private static void append(final ExcerptAppender appender, final byte[] record)
    {
        try (DocumentContext dc = appender.writingDocument())
        {
            dc.wire().bytes().write(record);
        }
    }

    /** A version 2 START_BODY or WHOLE record, byte by byte as the previous writer laid it out. */
    private static byte[] v2Envelope(final byte type, final long queueId, final byte[] body)
    {
        final ByteBuffer record = header(type, queueId, 512 + body.length);
        record.putLong(1_790_000_000_000L);
        record.putInt(InboundMessage.FLAG_8BITMIME);
        field(record, new byte[] {127, 0, 0, 1});
        field(record, ascii("client.example"));
        field(record, ascii("alice@example.org"));
        record.putInt(2);
        field(record, ascii("bob@example.net"));
        field(record, ascii("carol@example.net"));
        field(record, ascii("Received: v2\r\n"));
        field(record, body);
        return withChecksum(record);
    }

    private static byte[] v2Body(final long queueId, final byte[] body)
    {
        final ByteBuffer record = header(SpoolRecords.BODY, queueId, 64 + body.length);
        field(record, body);
        return withChecksum(record);
    }

    private static byte[] v2End(final long queueId, final long totalBytes, final int chunks)
    {
        final ByteBuffer record = header(SpoolRecords.END, queueId, 64);
        record.putLong(totalBytes);
        record.putInt(chunks);
        return withChecksum(record);
    }

    private static ByteBuffer header(final byte type, final long queueId, final int capacity)
    {
        final ByteBuffer record = ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
        record.put(type).put(SpoolRecords.VERSION_WITHOUT_DSN).putShort((short)0).putLong(queueId);
        return record;
    }

    private static void field(final ByteBuffer record, final byte[] value)
    {
        record.putInt(value.length).put(value);
    }

    private static byte[] withChecksum(final ByteBuffer record)
    {
        final CRC32C crc = new CRC32C();
        crc.update(record.array(), 0, record.position());
        record.putInt((int)crc.getValue());
        final byte[] bytes = new byte[record.position()];
        System.arraycopy(record.array(), 0, bytes, 0, bytes.length);
        return bytes;
    }
}
