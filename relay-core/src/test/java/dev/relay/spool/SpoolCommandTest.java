package dev.relay.spool;

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
    void missingSpoolIsNotCreated()
    {
        final Path missing = dir.resolve("nope");
        assertEquals("no spool at " + missing + System.lineSeparator(), run(missing, 1, "list"));
        assertFalse(Files.exists(missing));
    }
}
