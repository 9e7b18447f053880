package dev.relay.config;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Properties;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConfigLoadTest
{
    @TempDir
    Path dir;

    private Path write(final String... lines) throws IOException
    {
        final Path file = dir.resolve("relay.properties");
        Files.writeString(file, String.join("\n", lines) + "\n", StandardCharsets.UTF_8);

        return file;
    }

    private List<String> problems(final Path file, final Properties overrides)
    {
        return assertThrows(ConfigException.class, () -> RelayConfig.load(file, overrides)).problems();
    }

    @Test
    void separatorsCommentsAndWhitespace() throws Exception
    {
        final Path file = write(
            "# comment",
            "! also a comment",
            "",
            "   smtp.max_recipients = 50   ",
            "smtp.max_errors: 7",
            "smtp.max_hops 30",
            "\tsmtp.max_connections\t=\t9",
            "queue.sync=always");

        final RelayConfig c = RelayConfig.load(file, new Properties());

        assertEquals(50, c.smtp().maxRecipients());
        assertEquals(7, c.smtp().maxErrors());
        assertEquals(30, c.smtp().maxHops());
        assertEquals(9, c.admission().maxConnections());
        assertEquals(SyncMode.ALWAYS, c.spool().sync());
        assertEquals("50", c.effective().get("smtp.max_recipients"));
    }

    @Test
    void continuationLines() throws Exception
    {
        final Path file = write(
            "delivery.retry.schedule = 1m, \\",
            "                          5m, \\",
            "    1h",
            "smtp.max_recipients=abc");

        final List<String> problems = problems(file, new Properties());

        assertEquals(List.of(file + ":4: smtp.max_recipients: \"abc\" is not a positive integer"), problems);

        Files.writeString(file, "delivery.retry.schedule = 1m, \\\r\n   5m,\\\r\n 1h\r\n");
        assertEquals(List.of(Duration.ofMinutes(1), Duration.ofMinutes(5), Duration.ofHours(1)),
            RelayConfig.load(file, new Properties()).queue().retrySchedule());
    }

    @Test
    void evenBackslashesDoNotContinueAndEscapesWork() throws Exception
    {
        final Path file = write(
            "relay.domains=example.com\\\\",
            "smtp.max_recipients=5",
            "smtp\\u002Ehostname=mx.example.com");

        final List<String> problems = problems(file, new Properties());

        assertEquals(1, problems.size(), problems.toString());
        assertTrue(problems.get(0).startsWith(file + ":1: relay.domains: \"example.com\\\" "), problems.get(0));

        Files.writeString(file, "smtp\\u002Ehostname=mx.example.com\nsmtp\\.max_hops =\\ 5\n");
        final RelayConfig c = RelayConfig.load(file, new Properties());
        assertEquals("mx.example.com", c.smtp().hostname());
        assertEquals(5, c.smtp().maxHops());
    }

    @Test
    void commentLineEndingInBackslashDoesNotContinue() throws Exception
    {
        final Path file = write("# a comment \\", "smtp.max_hops=5");

        assertEquals(5, RelayConfig.load(file, new Properties()).smtp().maxHops());
    }

    @Test
    void valuesMayContainSeparatorsAndLineNumbersCountContinuedAndCrlfLines() throws Exception
    {
        final Path file = dir.resolve("relay.properties");
        Files.writeString(file,
            "delivery.routes = example.com=[10.0.0.5]:2525, \\\r\n" +
            "    *=smarthost:587\r\n" +
            "\r\n" +
            "smtp.listen [::1]:0\r\n" +
            "smtp.max_hops: x\r\n");

        final List<String> problems = problems(file, new Properties());
        assertEquals(List.of(file + ":5: smtp.max_hops: \"x\" is not a positive integer"), problems);

        Files.writeString(file, "delivery.routes = example.com=[10.0.0.5]:2525, \\\n    *=smarthost:587\n");
        final RelayConfig c = RelayConfig.load(file, new Properties());
        assertEquals(new Route("example.com", "10.0.0.5", 2525, true), c.queue().routing().routeFor("example.com"));
        assertEquals(new Route("*", "smarthost", 587, true), c.queue().routing().routeFor("other.example"));
    }

    @Test
    void unknownKeyNamesKeyAndLine() throws Exception
    {
        final Path file = write("# x", "smtp.max_recipents=10");

        assertEquals(
            List.of(file + ":2: smtp.max_recipents: unknown key (did you mean smtp.max_recipients?)"),
            problems(file, new Properties()));
    }

    @Test
    void badValueNamesKeyValueAndLine() throws Exception
    {
        final Path file = write(
            "smtp.max_recipients=abc",
            "relay.networks=10.0.0.0/8, 192.168.1.0/99",
            "queue.max_age=5",
            "smtp.max_message_size=lots");

        final List<String> problems = problems(file, new Properties());

        assertEquals(4, problems.size(), problems.toString());
        assertEquals(file + ":1: smtp.max_recipients: \"abc\" is not a positive integer", problems.get(0));
        assertTrue(problems.get(1).startsWith(
            file + ":2: relay.networks: \"10.0.0.0/8, 192.168.1.0/99\" is not a CIDR list: \"192.168.1.0/99\""),
            problems.get(1));
        assertTrue(problems.get(2).startsWith(file + ":3: queue.max_age: \"5\" is not a duration"), problems.get(2));
        assertTrue(problems.get(3).startsWith(file + ":4: smtp.max_message_size: \"lots\" is not a size"),
            problems.get(3));
    }

    @Test
    void allProblemsAreReportedTogether() throws Exception
    {
        final Path file = write(
            "smtp.listen=nowhere",
            "bogus.key=1",
            "smtp.max_recipients=10",
            "smtp.max_recipients=20",
            "queue.sync=sometimes",
            "relay.networks=not-a-cidr");
        final Properties overrides = new Properties();
        overrides.setProperty("smtp.max_errors", "x");
        overrides.setProperty("smtp.no_such_key", "1");
        overrides.setProperty("java.version.other", "ignored");

        final ConfigException ex = assertThrows(ConfigException.class, () -> RelayConfig.load(file, overrides));
        final List<String> problems = ex.problems();

        assertEquals(7, problems.size(), ex.getMessage());
        assertTrue(problems.get(0).startsWith(file + ":1: smtp.listen: \"nowhere\" "), problems.get(0));
        assertTrue(problems.get(1).startsWith(file + ":2: bogus.key: unknown key"), problems.get(1));
        assertEquals(file + ":4: smtp.max_recipients: duplicate key (first set at line 3)", problems.get(2));
        assertTrue(problems.get(3).startsWith(file + ":5: queue.sync: \"sometimes\" "), problems.get(3));
        assertTrue(problems.get(4).startsWith(file + ":6: relay.networks: \"not-a-cidr\" "), problems.get(4));
        assertEquals("system property smtp.max_errors: \"x\" is not a positive integer", problems.get(5));
        assertTrue(problems.get(6).startsWith("system property smtp.no_such_key: unknown key"), problems.get(6));
        assertEquals(String.join("\n", problems), ex.getMessage());
        assertEquals(2, ConfigException.EXIT_CODE);
    }

    @Test
    void systemPropertiesWinOverTheFile() throws Exception
    {
        final Path file = write("smtp.max_recipients=10", "smtp.listen=127.0.0.1:2525");
        final Properties overrides = new Properties();
        overrides.setProperty("smtp.max_recipients", "20");
        overrides.setProperty("smtp.listen", "127.0.0.1:0");
        overrides.setProperty("queue.sync", " none ");
        overrides.setProperty("user.home", "/elsewhere");

        final RelayConfig c = RelayConfig.load(file, overrides);

        assertEquals(20, c.smtp().maxRecipients());
        assertEquals(0, c.inbound().smtpListen().get(0).getPort());
        assertEquals(SyncMode.NONE, c.spool().sync());
        assertEquals("20", c.effective().get("smtp.max_recipients"));
    }

    @Test
    void realSystemPropertiesAreAccepted() throws Exception
    {
        final Path file = write("smtp.max_recipients=10");

        assertEquals(10, RelayConfig.load(file, System.getProperties()).smtp().maxRecipients());
    }

    @Test
    void missingFileIsAProblem()
    {
        final Path file = dir.resolve("absent.properties");

        assertEquals(List.of(file + ": cannot read the configuration file: no such file"),
            problems(file, new Properties()));
    }

    @Test
    void emptyFileGivesDefaults() throws Exception
    {
        final Path file = write("");
        final RelayConfig c = RelayConfig.load(file, new Properties());

        assertEquals(RelayConfig.defaults().effective(), c.effective());
        assertEquals(List.of(new InetSocketAddress("0.0.0.0", 2525)), c.inbound().smtpListen());
    }

    @Test
    void fromMapReportsLineZero()
    {
        final ConfigException ex = assertThrows(ConfigException.class,
            () -> RelayConfig.fromMap(java.util.Map.of("smtp.max_hops", "x", "nope", "1")));

        assertEquals(List.of("map:0: nope: unknown key", "map:0: smtp.max_hops: \"x\" is not a positive integer"),
            ex.problems());
    }
}
