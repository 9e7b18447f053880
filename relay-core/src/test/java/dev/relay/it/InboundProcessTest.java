package dev.relay.it;

import dev.relay.testing.Await;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The relay as an operator runs it: a child JVM stopped with SIGTERM (idle, and with a client mid-DATA), bad
 * configuration files (exit 2 naming the key), {@code ops/relay} with an impossible queue.dir, and
 * {@code spool list} / {@code spool show} on a stopped relay's spool.
 */
@Timeout(120)
class InboundProcessTest
{
    @TempDir
    Path tmp;
    private final List<ChildRelay> children = new ArrayList<>();

    @AfterEach
    void stopChildren()
    {
        for (final ChildRelay child : children)
        {
            child.close();
        }
    }

    private Map<String, String> config(final String... overrides)
    {
        final Map<String, String> config = InProcessRelay.config(tmp.resolve("spool"), overrides);
        config.put("smtp.io_threads", "1");
        return config;
    }

    private ChildRelay start(final Map<String, String> config) throws Exception
    {
        final ChildRelay child = ChildRelay.start(tmp, config);
        children.add(child);
        return child;
    }

    @Test
    void sigtermWhileIdleExitsZero() throws Exception
    {
        final ChildRelay child = start(config());
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(child.port()))
        {
            client.command("QUIT").expect(221);
        }
        final long startNs = System.nanoTime();
        child.sigterm();
        assertEquals(0, child.awaitExit(Duration.ofSeconds(10)), child::output);
        final Duration took = Duration.ofNanos(System.nanoTime() - startNs);
        assertTrue(took.compareTo(Duration.ofSeconds(5)) < 0, "exit took " + took);
    }

    @Test
    void sigtermMidDataLetsTheClientFinish() throws Exception
    {
        final ChildRelay child = start(config("smtp.drain_timeout", "10s"));
        final String id;
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(child.port()))
        {
            client.command("MAIL FROM:<late@client.test>").expect(250);
            client.command("RCPT TO:<r@ours.test>").expect(250);
            client.command("DATA").expect(354);
            client.write("Subject: draining\r\n\r\nfirst half\r\n");
            child.sigterm();
            Await.until(() -> child.stdout().contains("draining"), Duration.ofSeconds(10),
                () -> "the child to log that it is draining\n" + child.stdout());
            assertTrue(child.isAlive(), "still alive while a client is in DATA");
            client.write("second half\r\n.\r\n");
            id = client.read().queueId();
            // after the transaction the session is shut down
            final SmtpTestClient.Reply next = client.command("NOOP");
            next.expect(421, "4.3.2");
        }
        catch (final java.io.IOException ex)
        {
            throw new AssertionError("client failed during drain\n" + child.output(), ex);
        }
        assertEquals(0, child.awaitExit(Duration.ofSeconds(10)), child::output);
        final SpoolContents.Stored stored = SpoolContents.find(tmp.resolve("spool"), id);
        assertEquals("Subject: draining\r\n\r\nfirst half\r\nsecond half\r\n", stored.bodyText());
    }

    @Test
    void unknownKeyExitsTwoNamingTheKey() throws Exception
    {
        final Map<String, String> config = config();
        config.put("smtp.max_recipeints", "10");
        final ChildRelay child = launch(List.of("--config", ChildRelay.writeConfig(tmp, config).toString()));
        assertEquals(2, child.awaitExit(Duration.ofSeconds(30)), child::output);
        assertTrue(child.stderr().contains("smtp.max_recipeints"), child::output);
    }

    @Test
    void badValueExitsTwoNamingTheKey() throws Exception
    {
        final ChildRelay child = launch(List.of("--config",
            ChildRelay.writeConfig(tmp, config("smtp.max_recipients", "many")).toString()));
        assertEquals(2, child.awaitExit(Duration.ofSeconds(30)), child::output);
        assertTrue(child.stderr().contains("smtp.max_recipients"), child::output);
        assertTrue(child.stderr().contains("many"), child::output);
    }

    @Test
    void spoolListAndShowOnAStoppedRelay() throws Exception
    {
        final Path spool = tmp.resolve("spool");
        final String id;
        try (InProcessRelay relay = InProcessRelay.start(spool);
             SmtpTestClient client = relay.connectEhlo())
        {
            id = client.sendMessage("lister@client.test", List.of("one@ours.test", "two@ours.test"),
                "Subject: listed\r\n\r\nshow me\r\n".getBytes(StandardCharsets.US_ASCII));
            client.command("QUIT").expect(221);
        }
        final Path file = ChildRelay.writeConfig(tmp, config());
        final ChildRelay list = launch(List.of("--config", file.toString(), "spool", "list"));
        assertEquals(0, list.awaitExit(Duration.ofSeconds(30)), list::output);
        final String listed = list.stdout();
        assertTrue(listed.contains(id) && listed.contains("<lister@client.test>") &&
            listed.contains("one@ours.test two@ours.test"), listed);
        assertTrue(listed.contains("-- 1 message, "), listed);

        final ChildRelay show = launch(List.of("--config", file.toString(), "spool", "show", id));
        assertEquals(0, show.awaitExit(Duration.ofSeconds(30)), show::output);
        final String shown = show.stdout();
        assertTrue(shown.contains("sender:      <lister@client.test>"), shown);
        assertTrue(shown.contains("recipients:  one@ours.test two@ours.test"), shown);
        assertTrue(shown.contains("Received: from client.test"), shown);
        assertTrue(shown.endsWith("Subject: listed\r\n\r\nshow me\r\n"), shown);

        final ChildRelay missing = launch(List.of("--config", file.toString(), "spool", "show", "NOSUCHID"));
        assertEquals(1, missing.awaitExit(Duration.ofSeconds(30)), missing::output);
    }

    private ChildRelay launch(final List<String> args) throws Exception
    {
        final ChildRelay child = ChildRelay.launch(tmp, args);
        children.add(child);
        return child;
    }

    private static Path repositoryRoot()
    {
        Path dir = Path.of(System.getProperty("basedir", System.getProperty("user.dir"))).toAbsolutePath();
        while (dir != null)
        {
            if (Files.isRegularFile(dir.resolve("ops/relay")) && Files.isRegularFile(dir.resolve("ops/jvm.options")))
            {
                return dir;
            }
            dir = dir.getParent();
        }
        return fail("ops/relay not found above " + System.getProperty("user.dir"));
    }
}
