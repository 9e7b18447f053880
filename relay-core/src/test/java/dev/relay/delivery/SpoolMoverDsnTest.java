package dev.relay.delivery;

import dev.relay.smtp.DsnParameters;
import dev.relay.smtp.InboundMessage;
import dev.relay.spool.Spool;
import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpoolWriter;
import dev.relay.spool.SpooledMessage;
import dev.relay.spool.SyncMode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A deferred message moved forward to the current spool cycle keeps its DSN parameters (RFC 3461). */
@Timeout(30)
class SpoolMoverDsnTest
{
    @TempDir
    Path dir;

    @Test
    void copyKeepsRetEnvidNotifyAndOrcpt() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final InboundMessage message = new InboundMessage();
            message.queueId(77);
            message.receivedAtMs(System.currentTimeMillis());
            message.clientAddress(new byte[] {127, 0, 0, 1});
            message.heloName(ascii("client.test"));
            message.reversePath(ascii("alice@client.test"));
            message.dsnRet(DsnParameters.RET_HDRS);
            message.envelopeId(ascii("env+2B1"));
            message.addRecipient(ascii("bob@example.test"), DsnParameters.NOTIFY_SUCCESS, ascii("rfc822;old@x.test"));
            message.addRecipient(ascii("carol@example.test"), 0, null);
            message.receivedHeader(ascii("Received: by relay.test\r\n"));
            final byte[] body = ascii("Subject: moved\r\n\r\nbody\r\n");
            final ByteBuffer buffer = ByteBuffer.allocateDirect(body.length);
            buffer.put(body).flip();
            assertTrue(writer.begin(message));
            assertTrue(writer.append(message, buffer, 0, body.length));
            message.addBodyBytes(body.length);
            assertTrue(writer.complete(message, (m, durable) -> { }));

            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = new ArrayList<>();
            while (reader.poll(read::add, 10) > 0)
            {
                // to the end
            }
            assertEquals(1, read.size());
            final SpoolMover mover = new SpoolMover(writer, spool);
            final QueuedMessage queued = new QueuedMessage(read.get(0));
            assertTrue(mover.offer(queued));
            while (mover.hasWork())
            {
                mover.doWork();
            }
            assertTrue(queued.copyPending, "the copy was written");
            while (reader.poll(read::add, 10) > 0)
            {
                // the copy
            }
            assertEquals(2, read.size());
            final SpooledMessage copy = read.get(1);
            assertEquals(77, copy.queueId());
            assertEquals(DsnParameters.RET_HDRS, copy.dsnRet());
            assertArrayEquals(ascii("env+2B1"), copy.envelopeId());
            assertEquals(DsnParameters.NOTIFY_SUCCESS, copy.notify(0));
            assertArrayEquals(ascii("rfc822;old@x.test"), copy.originalRecipient(0));
            assertEquals(0, copy.notify(1));
            assertNull(copy.originalRecipient(1));
            assertArrayEquals(body, reader.readBodyToArray(copy));
            reader.close();
        }
    }

    private static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }
}
