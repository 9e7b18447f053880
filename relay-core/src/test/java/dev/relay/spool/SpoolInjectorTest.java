package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.DsnParameters;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.QueueIds;
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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Mail the relay puts into the spool itself: an injected DSN gets its queue id from the spool (the relay's own
 * generator), no client, a {@code Received:} header that names only the relay, and origin dsn; a requeued message
 * keeps its id and its whole envelope (DSN parameters, trace header) with origin requeue, copied a slice at a time.
 */
@Timeout(30)
class SpoolInjectorTest
{
    @TempDir
    Path dir;

    @Test
    void anInjectedMessageIsTheRelaysOwnWithAQueueIdFromTheSpool() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolInjector injector = spool.newInjector(() -> { }, "relay.test");
            assertThrows(IllegalStateException.class, () -> spool.newInjector(() -> { }, "relay.test"),
                "one generator of relay ids per spool");
            final long nowMs = System.currentTimeMillis();
            final long queueId = injector.nextQueueId(nowMs);
            assertEquals(QueueIds.DSN_GENERATOR, QueueIds.generatorOf(queueId));
            final List<String> committed = new ArrayList<>();
            final byte[] body = ascii("From: MAILER-DAEMON@relay.test\r\nSubject: bounce\r\n\r\nsorry\r\n");
            assertTrue(injector.inject(queueId, nowMs, new byte[0], ascii("alice@client.test"), 0, body,
                (id, durable) -> committed.add(id + " " + durable)));
            assertEquals(List.of(QueueIds.format(queueId) + " true"), committed);

            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = new ArrayList<>();
            reader.poll(read::add, 10);
            assertEquals(1, read.size());
            final SpooledMessage dsn = read.get(0);
            assertEquals(queueId, dsn.queueId());
            assertEquals(SpoolRecords.ORIGIN_DSN, dsn.origin());
            assertEquals(0, dsn.clientAddress().length, "no client");
            assertEquals(0, dsn.reversePath().length, "the null sender");
            final String received = new String(dsn.receivedHeader(), StandardCharsets.US_ASCII);
            assertTrue(received.startsWith("Received: by relay.test (relay) id " + QueueIds.format(queueId) + "; "),
                received);
            assertFalse(received.contains("from"), received);
            assertArrayEquals(body, reader.readBodyToArray(dsn));
            reader.close();
        }
    }

    @Test
    void aRequeuedCopyKeepsItsIdAndEnvelopeAndSaysItIsACopy() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final InboundMessage message = new InboundMessage();
            message.queueId(77);
            message.receivedAtMs(System.currentTimeMillis());
            message.clientAddress(ascii("192.0.2.7"));
            message.heloName(ascii("client.test"));
            message.reversePath(ascii("alice@client.test"));
            message.dsnRet(DsnParameters.RET_HDRS);
            message.envelopeId(ascii("env+2B1"));
            message.addRecipient(ascii("bob@example.test"), DsnParameters.NOTIFY_SUCCESS, ascii("rfc822;old@x.test"));
            message.addRecipient(ascii("carol@example.test"), 0, null);
            message.receivedHeader(ascii("Received: from client.test by relay.test\r\n"));
            final byte[] body = new byte[3 * SpoolInjector.BYTES_PER_PASS / 2];
            for (int i = 0; i < body.length; i++)
            {
                body[i] = (byte)('a' + i % 26);
            }
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
            final SpoolInjector injector = spool.newInjector(() -> { }, "relay.test");
            final List<String> outcome = new ArrayList<>();
            final List<SpooledMessage> reported = new ArrayList<>();
            assertTrue(injector.requeue(read.get(0), new SpoolInjector.Requeued()
            {
                @Override
                public void onCopied(final long queueId, final SpooledMessage copy)
                {
                    outcome.add("copied " + queueId);
                    reported.add(copy);
                }

                @Override
                public void onFailed(final long queueId, final String why)
                {
                    outcome.add("failed " + queueId + ": " + why);
                }
            }));
            assertEquals(SpoolInjector.BYTES_PER_PASS, injector.doWork(), "one slice per pass");
            assertTrue(outcome.isEmpty());
            while (injector.hasWork())
            {
                injector.doWork();
            }
            assertEquals(List.of("copied 77"), outcome);
            while (reader.poll(read::add, 10) > 0)
            {
                // the copy
            }
            assertEquals(2, read.size());
            final SpooledMessage copy = read.get(1);
            assertEquals(77, copy.queueId());
            assertEquals(SpoolRecords.ORIGIN_REQUEUE, copy.origin());
            assertEquals(SpoolRecords.ORIGIN_SMTP, read.get(0).origin());
            assertArrayEquals(ascii("192.0.2.7"), copy.clientAddress());
            assertArrayEquals(read.get(0).receivedHeader(), copy.receivedHeader());
            assertEquals(DsnParameters.RET_HDRS, copy.dsnRet());
            assertArrayEquals(ascii("env+2B1"), copy.envelopeId());
            assertEquals(DsnParameters.NOTIFY_SUCCESS, copy.notify(0));
            assertArrayEquals(ascii("rfc822;old@x.test"), copy.originalRecipient(0));
            assertEquals(0, copy.notify(1));
            assertNull(copy.originalRecipient(1));
            assertArrayEquals(body, reader.readBodyToArray(copy));
            assertEquals(copy.startIndex(), reported.get(0).startIndex(), "the copy is reported where it is");
            assertEquals(copy.endIndex(), reported.get(0).endIndex());
            assertEquals(copy.chunkCount(), reported.get(0).chunkCount());
            assertArrayEquals(body, reader.readBodyToArray(reported.get(0)));
            reader.close();
        }
    }

    @Test
    void anAbandonedRequeueLeavesNoCopyAReaderCouldSee() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final InboundMessage message = new InboundMessage();
            message.queueId(78);
            message.receivedAtMs(System.currentTimeMillis());
            message.reversePath(ascii("alice@client.test"));
            message.addRecipient(ascii("bob@example.test"), 0, null);
            final byte[] body = new byte[2 * SpoolInjector.BYTES_PER_PASS];
            final ByteBuffer buffer = ByteBuffer.allocateDirect(body.length);
            buffer.put(body).flip();
            assertTrue(writer.begin(message));
            assertTrue(writer.append(message, buffer, 0, body.length));
            message.addBodyBytes(body.length);
            assertTrue(writer.complete(message, (m, durable) -> { }));
            final SpoolReader reader = spool.newReader(null);
            final List<SpooledMessage> read = new ArrayList<>();
            reader.poll(read::add, 10);
            final SpoolInjector injector = spool.newInjector(() -> { }, "relay.test");
            final List<String> outcome = new ArrayList<>();
            injector.requeue(read.get(0), new SpoolInjector.Requeued()
            {
                @Override
                public void onCopied(final long queueId, final SpooledMessage copy)
                {
                    outcome.add("copied");
                }

                @Override
                public void onFailed(final long queueId, final String why)
                {
                    outcome.add("failed");
                }
            });
            injector.doWork();
            injector.abandon(78);
            assertFalse(injector.hasWork());
            while (reader.poll(read::add, 10) > 0)
            {
                // nothing complete
            }
            assertEquals(1, read.size(), "the partial copy has no END");
            assertTrue(outcome.isEmpty());
            reader.close();
        }
    }

    private static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }
}
