package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.QueueIds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.relay.spool.SpoolTestSupport.appendAll;
import static dev.relay.spool.SpoolTestSupport.ascii;
import static dev.relay.spool.SpoolTestSupport.message;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class SpoolCommandTest
{
    @TempDir
    Path dir;

    private static String run(final Path spoolDir, final int expectedExit, final String... args)
    {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        assertEquals(expectedExit, SpoolCommand.run(spoolDir, args, out));
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void listAndShowOnARunningSpool() throws Exception
    {
        final long id1 = new QueueIds(1).next(System.currentTimeMillis() - 120_000);
        final long id2 = id1 + 1;
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final InboundMessage m1 = message(id1, "alice@example.org", "bob@example.net", "carol@example.net");
            m1.receivedAtMs(System.currentTimeMillis() - 120_000);
            writer.begin(m1);
            appendAll(writer, m1, ascii("Subject: hi\r\n\r\nhello\r\n..dot\r\n"), 1000);
            writer.complete(m1, (m, d) -> { });
            final InboundMessage m2 = message(id2, "", "postmaster@example.net");
            writer.begin(m2);
            appendAll(writer, m2, new byte[100_000], 30_000);
            writer.complete(m2, (m, d) -> { });
            final InboundMessage aborted = message(id2 + 1, "x@y", "z@w");
            writer.begin(aborted);
            appendAll(writer, aborted, new byte[50_000], 50_000);
            writer.abort(aborted);

            final String list = run(dir, 0, "list");
            final String[] lines = list.split("\n");
            assertEquals(3, lines.length, list);
            assertTrue(lines[0].startsWith(QueueIds.format(id1)), list);
            assertTrue(lines[0].contains(" 2m "), list);
            assertTrue(lines[0].contains("<alice@example.org>  bob@example.net carol@example.net"), list);
            assertTrue(lines[1].contains("100000  <>  postmaster@example.net"), list);
            assertEquals("-- 2 messages, 100029 bytes", lines[2]);

            final String show = run(dir, 0, "show", QueueIds.format(id1).toLowerCase());
            assertTrue(show.contains("sender:      <alice@example.org>"), show);
            assertTrue(show.contains("recipients:  bob@example.net carol@example.net"), show);
            assertTrue(show.endsWith("Received: from client.example ([127.0.0.1]) by relay; " + id1 +
                "\r\nSubject: hi\r\n\r\nhello\r\n..dot\r\n"), show);

            // qshape: recipients still to deliver by domain and age (bob and carol 2 minutes old, postmaster new)
            final String[] shape = run(dir, 0, "shape").split("\n");
            assertEquals(3, shape.length, String.join("\n", shape));
            assertTrue(shape[0].trim().startsWith("T     5    10    20"), shape[0]);
            assertTrue(shape[0].trim().endsWith("1280 1280+"), shape[0]);
            assertTrue(shape[1].matches(" *TOTAL +3 +3 +0 .*"), shape[1]);
            assertTrue(shape[2].matches(" *example.net +3 +3 +0 .*"), shape[2]);
            final String bySender = run(dir, 0, "shape", "--sender");
            assertTrue(bySender.contains("example.org      2     2"), bySender);
            assertTrue(bySender.matches("(?s).*\n +<> +1 +1 .*"), bySender);
            assertEquals(2, run(dir, 2, "shape", "--nonsense").isEmpty() ? 0 : 2);

            assertTrue(run(dir, 1, "show", QueueIds.format(id2 + 1)).contains("no message"));
            assertTrue(run(dir, 1, "show", "nonsense").contains("no message nonsense"));
        }
        // stopped relay
        assertTrue(run(dir, 0, "list").contains("-- 2 messages"));
        assertEquals(2, run(dir, 2, "frobnicate").isEmpty() ? 0 : 2);
    }

    @Test
    void listStreamsTheActiveSetTheDeferredIndexAndNewMail() throws Exception
    {
        final int deferred = 20_000;
        final long dueAtMs = System.currentTimeMillis() + 3_600_000;
        BacklogBuilder.build(dir, deferred, 300, dueAtMs, 600_000, "backlog.test", "daily");
        // mail spooled after the checkpoint: the queue manager has not read it yet
        final long newId = new QueueIds(1).next(System.currentTimeMillis());
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final InboundMessage fresh = message(newId, "alice@example.org", "bob@example.net");
            writer.begin(fresh);
            appendAll(writer, fresh, ascii("Subject: new\r\n\r\nnew\r\n"), 1000);
            writer.complete(fresh, (m, d) -> { });
        }
        final long[] firstLineNs = {0};
        final long startNs = System.nanoTime();
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)
        {
            @Override
            public void println(final String line)
            {
                if (firstLineNs[0] == 0)
                {
                    firstLineNs[0] = System.nanoTime() - startNs;
                }
                super.println(line);
            }
        };
        assertEquals(0, SpoolCommand.run(dir, new String[] {"list"}, out));
        final String[] lines = bytes.toString(StandardCharsets.UTF_8).split("\n");
        assertEquals(deferred + 2, lines.length);
        assertTrue(lines[0].contains("<bench@client.test>  user-0@backlog.test  deferred until "), lines[0]);
        assertTrue(lines[0].contains("attempts=1 (connect to 127.0.0.1[127.0.0.1]:9: Connection refused)"), lines[0]);
        assertTrue(lines[deferred].startsWith(QueueIds.format(newId)) && lines[deferred].endsWith("  ready"),
            lines[deferred]);
        assertTrue(lines[deferred + 1].startsWith("-- " + (deferred + 1) + " messages, "), lines[deferred + 1]);
        final String[] shape = run(dir, 0, "shape").split("\n");
        assertTrue(shape[1].matches(" *TOTAL +" + (deferred + 1) + " +" + (deferred + 1) + " +0 .*"), shape[1]);
        assertTrue(shape[2].matches(" *backlog.test +" + deferred + " .*"), shape[2]);
        System.out.printf("spool list of %d deferred messages: %.1f s, %d lines%n", deferred,
            (System.nanoTime() - startNs) / 1e9, lines.length);
    }

    @Test
    void listsASpoolFromBeforeTheCheckpointByItsJournal() throws Exception
    {
        // the layout of a relay before the deferred index: spool and journal, no deferred/ directory
        final long nowMs = System.currentTimeMillis();
        final long deferredId = new QueueIds(1).next(nowMs);
        final long partlyId = deferredId + 1;
        final long doneId = deferredId + 2;
        final long readyId = deferredId + 3;
        final long dueMs = nowMs + 3_600_000;
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "daily", 0))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            for (final long id : new long[] {deferredId, partlyId, doneId, readyId})
            {
                final InboundMessage m = message(id, "alice@example.org", "bob@example.net", "carol@example.com");
                writer.begin(m);
                appendAll(writer, m, ascii("Subject: old\r\n\r\nold\r\n"), 1000);
                writer.complete(m, (x, d) -> { });
            }
        }
        try (OutcomeJournal journal = OutcomeJournal.open(dir.resolve("journal"), "daily"))
        {
            journal.recordResult(deferredId, 0, OutcomeJournal.DEFERRED, 2, dueMs, "451 try later");
            journal.recordResult(deferredId, 1, OutcomeJournal.DEFERRED, 2, dueMs, "451 try later");
            journal.recordResult(partlyId, 0, OutcomeJournal.DELIVERED, 1, 0, "250 ok");
            journal.recordResult(partlyId, 1, OutcomeJournal.DEFERRED, 1, dueMs, "452 full");
            journal.recordResult(doneId, 0, OutcomeJournal.DELIVERED, 1, 0, "250 ok");
            journal.recordResult(doneId, 1, OutcomeJournal.BOUNCED, 1, 0, "550 no");
            journal.recordDone(doneId);
        }
        assertFalse(Files.exists(dir.resolve("deferred")));

        final String list = run(dir, 0, "list");
        final String[] lines = list.split("\n");
        assertEquals(4, lines.length, list);
        assertTrue(lines[0].startsWith(QueueIds.format(deferredId)), list);
        assertTrue(lines[0].contains("bob@example.net carol@example.com  deferred until "), list);
        assertTrue(lines[0].endsWith("attempts=2 (451 try later)"), list);
        assertTrue(lines[1].startsWith(QueueIds.format(partlyId)), list);
        assertTrue(lines[1].contains("<alice@example.org>  carol@example.com  deferred until "), list);
        assertTrue(lines[2].startsWith(QueueIds.format(readyId)) && lines[2].endsWith("  ready"), list);
        assertTrue(lines[3].startsWith("-- 3 messages, "), list);
        final String shape = run(dir, 0, "shape");
        assertTrue(shape.split("\n")[1].matches(" *TOTAL +5 +5 .*"), shape);
        // listing never creates the index or a checkpoint in an old spool
        assertFalse(Files.exists(dir.resolve("deferred")));
    }

    @Test
    void missingSpoolIsNotCreated()
    {
        final Path missing = dir.resolve("nope");
        assertEquals("no spool at " + missing + System.lineSeparator(), run(missing, 1, "list"));
        assertFalse(Files.exists(missing));
    }
}
