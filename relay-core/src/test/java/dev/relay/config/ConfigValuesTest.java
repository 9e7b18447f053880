package dev.relay.config;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConfigValuesTest
{
    private static RelayConfig with(final String key, final String value) throws ConfigException
    {
        return RelayConfig.fromMap(Map.of(key, value));
    }

    private static String problemFor(final String key, final String value)
    {
        final ConfigException ex = assertThrows(ConfigException.class, () -> with(key, value));
        assertEquals(1, ex.problems().size(), ex.getMessage());

        return ex.problems().get(0);
    }

    @Test
    void defaults() throws Exception
    {
        final RelayConfig c = RelayConfig.defaults();

        assertEquals(List.of(new InetSocketAddress(InetAddress.getByName("0.0.0.0"), 2525)), c.inbound().smtpListen());
        assertFalse(c.smtp().hostname().isEmpty());
        assertTrue(DomainParsers.isDomainName(c.smtp().hostname()), c.smtp().hostname());
        assertEquals(26214400L, c.smtp().maxMessageSize());
        assertEquals(1000, c.smtp().maxRecipients());
        assertEquals(10000, c.admission().maxConnections());
        assertEquals(100, c.admission().maxConnectionsPerIp());
        assertTrue(c.admission().limitsExemptRelayNetworks());
        assertEquals(Runtime.getRuntime().availableProcessors(), c.inbound().ioThreads());
        assertEquals(300_000, c.smtp().commandTimeoutMs());
        assertEquals(180_000, c.smtp().dataTimeoutMs());
        assertEquals(Duration.ofSeconds(30), c.inbound().drainTimeout());
        assertEquals(20, c.smtp().maxErrors());
        assertEquals(100, c.smtp().maxHops());
        assertEquals(512, c.smtp().maxCommandLength());
        assertEquals(65536, c.inbound().bufferSize());
        assertEquals("127.0.0.0/8,0:0:0:0:0:0:0:1/128", c.relay().networks().toString());
        assertTrue(c.relay().networks().contains(InetAddress.getByName("127.0.0.1")));
        assertTrue(c.relay().networks().contains(InetAddress.getByName("::1")));
        assertFalse(c.relay().networks().contains(InetAddress.getByName("10.0.0.1")));
        assertEquals(Set.of(), c.relay().domains());
        assertEquals(Path.of("data/spool"), c.spool().dir());
        assertEquals(SyncMode.BATCH, c.spool().sync());
        assertEquals(Duration.ofDays(5), c.queue().maxAge());
        assertEquals("minutely", c.spool().rollCycle());
        assertEquals(268435456L, c.spool().minFreeBytes());
        assertEquals(List.of(), c.queue().routing().routes());
        assertNull(c.queue().routing().routeFor("example.com"));
        assertEquals(List.of(Duration.ofMinutes(1), Duration.ofMinutes(5), Duration.ofMinutes(15),
            Duration.ofMinutes(30), Duration.ofHours(1), Duration.ofHours(2), Duration.ofHours(4)),
            c.queue().retrySchedule());
        assertEquals(20, c.delivery().maxConnectionsPerHop());
        assertEquals(100, c.delivery().maxMessagesPerConnection());
        assertEquals(Duration.ofSeconds(30), c.delivery().idleTimeout());
        assertEquals(100, c.delivery().maxRecipientsPerTransaction());
        assertEquals(25, c.queue().routing().smtpPort());
        assertEquals(List.of(), c.dns().servers());
        assertEquals(Duration.ofSeconds(30), c.delivery().connectTimeout());
        assertEquals(Duration.ofMinutes(5), c.delivery().commandTimeout());
        assertEquals(Duration.ofMinutes(2), c.delivery().dataInitTimeout());
        assertEquals(Duration.ofMinutes(3), c.delivery().dataBlockTimeout());
        assertEquals(Duration.ofMinutes(10), c.delivery().dataDoneTimeout());
        assertEquals(Duration.ZERO, c.queue().delayWarning());
        assertEquals(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 9025), c.metrics().listen());
    }

    @Test
    void effectiveListsEveryKeyInTableOrder()
    {
        final Map<String, String> effective = RelayConfig.defaults().effective();

        assertEquals(ConfigKey.values().length, effective.size());
        int i = 0;
        for (final String key : effective.keySet())
        {
            assertEquals(ConfigKey.values()[i++].key(), key);
        }
        assertEquals("0.0.0.0:2525", effective.get("smtp.listen"));
        assertEquals(Integer.toString(Runtime.getRuntime().availableProcessors()), effective.get("smtp.io_threads"));
        assertEquals(Integer.toString(Runtime.getRuntime().availableProcessors()),
            effective.get("delivery.io_threads"));
        assertFalse(effective.get("smtp.hostname").isEmpty());
        assertThrows(UnsupportedOperationException.class, () -> effective.put("x", "y"));
    }

    @Test
    void adminTokenIsABearerTokenAndCheckConfigDoesNotShowIt() throws Exception
    {
        assertEquals("", RelayConfig.defaults().metrics().adminToken());
        final RelayConfig c = with("metrics.admin_token", "abc-DEF_1.2~3+4/5==");
        assertEquals("abc-DEF_1.2~3+4/5==", c.metrics().adminToken());
        assertFalse(c.effective().get("metrics.admin_token").contains("abc"), "check-config prints the effective map");
        assertTrue(problemFor("metrics.admin_token", "has space").contains("metrics.admin_token"));
        assertTrue(problemFor("metrics.admin_token", "quote\"d").contains("bearer token"));
    }

    @Test
    void listen() throws Exception
    {
        final RelayConfig c = with("smtp.listen", "127.0.0.1:0, [::1]:25 ,localhost:2526");

        assertEquals(3, c.inbound().smtpListen().size());
        assertEquals(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), c.inbound().smtpListen().get(0));
        assertEquals(new InetSocketAddress(InetAddress.getByName("::1"), 25), c.inbound().smtpListen().get(1));
        assertEquals(2526, c.inbound().smtpListen().get(2).getPort());
        assertFalse(c.inbound().smtpListen().get(2).isUnresolved());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "127.0.0.1|port is missing",
        "127.0.0.1:65536|bad port",
        "127.0.0.1:x|bad port",
        "::1:25|brackets",
        "[::1:25|missing ']'",
        "[::1]x|after ']'",
        "bad_host:25|not a host name",
        "300.1.1.1:25|not a host name",
        "''|at least one"
    })
    void badListen(final String value, final String reason)
    {
        final String problem = problemFor("smtp.listen", value);

        assertTrue(problem.startsWith("map:0: smtp.listen: \"" + value + "\" "), problem);
        assertTrue(problem.contains(reason), problem);
    }

    @Test
    void hostname() throws Exception
    {
        assertEquals("mx1.example.com", with("smtp.hostname", "MX1.Example.COM").smtp().hostname());
        assertEquals("relay", with("smtp.hostname", "relay").smtp().hostname());
        assertTrue(problemFor("smtp.hostname", "bad_name.example").contains("is not a valid domain name"));
        assertTrue(problemFor("smtp.hostname", "-a.example").contains("is not a valid domain name"));
        assertTrue(problemFor("smtp.hostname", "a..example").contains("is not a valid domain name"));
        assertTrue(problemFor("smtp.hostname", "example.com.").contains("is not a valid domain name"));
        assertTrue(problemFor("smtp.hostname", "10.0.0.1").contains("is not a valid domain name"));
        assertTrue(problemFor("smtp.hostname", "a".repeat(64) + ".example").contains("is not a valid domain name"));
    }

    @ParameterizedTest
    @CsvSource({
        "26214400, 26214400",
        "25MiB, 26214400",
        "25M, 26214400",
        "25mb, 26214400",
        "512k, 524288",
        "512 KiB, 524288",
        "1G, 1073741824",
        "100b, 100",
        "1, 1"
    })
    void messageSize(final String text, final long expected) throws Exception
    {
        assertEquals(expected, with("smtp.max_message_size", text).smtp().maxMessageSize());
    }

    @ParameterizedTest
    @CsvSource({ "0", "-1", "abc", "10T", "1.5M", "99999999999999999999", "9999999999G" })
    void badSize(final String text)
    {
        final String problem = problemFor("smtp.max_message_size", text);

        assertTrue(problem.contains("smtp.max_message_size: \"" + text + "\" is not a size in bytes"), problem);
    }

    @Test
    void integers() throws Exception
    {
        assertEquals(50, with("smtp.max_recipients", "50").smtp().maxRecipients());
        assertEquals(7, with("smtp.max_connections", "7").admission().maxConnections());
        assertEquals(0, with("smtp.max_connections_per_ip", "0").admission().maxConnectionsPerIp());
        assertEquals(3, with("smtp.max_errors", "3").smtp().maxErrors());
        assertEquals(30, with("smtp.max_hops", "30").smtp().maxHops());
        assertEquals(2048, with("smtp.max_command_length", "2048").smtp().maxCommandLength());
        assertEquals(4096, with("smtp.buffer_size", "4k").inbound().bufferSize());
        assertEquals(1048576, with("smtp.buffer_size", "1048576").inbound().bufferSize());
        assertEquals(5, with("delivery.max_connections_per_hop", "5").delivery().maxConnectionsPerHop());
        assertEquals(9, with("delivery.max_messages_per_connection", "9").delivery().maxMessagesPerConnection());
        assertEquals(10,
            with("delivery.max_recipients_per_transaction", "10").delivery().maxRecipientsPerTransaction());
        assertEquals(2526, with("delivery.smtp_port", "2526").queue().routing().smtpPort());
        assertEquals(64, with("smtp.io_threads", "64").inbound().ioThreads());
        assertEquals(Runtime.getRuntime().availableProcessors(), with("smtp.io_threads", "auto").inbound().ioThreads());
        assertEquals(3, with("delivery.io_threads", "3").delivery().ioThreads());
        assertEquals(Runtime.getRuntime().availableProcessors(),
            with("delivery.io_threads", "auto").delivery().ioThreads());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "smtp.max_recipients|abc|is not a positive integer",
        "smtp.max_recipients|0|is not a positive integer",
        "smtp.max_recipients|99999999999|is not a positive integer",
        "smtp.max_connections_per_ip|-1|is not a non-negative integer",
        "smtp.max_command_length|511|is not an integer in 512..2048",
        "smtp.max_command_length|2049|is not an integer in 512..2048",
        "smtp.buffer_size|4095|is not a size in bytes in 4096..1048576",
        "smtp.buffer_size|2M|is not a size in bytes in 4096..1048576",
        "smtp.io_threads|0|is not an integer in 1..64",
        "smtp.io_threads|65|is not an integer in 1..64",
        "smtp.io_threads|AUTO|is not an integer in 1..64",
        "delivery.io_threads|0|is not an integer in 1..64",
        "delivery.io_threads|65|is not an integer in 1..64",
        "delivery.smtp_port|0|is not an integer in 1..65535",
        "smtp.limits_exempt_relay_networks|yes|is not true or false",
        "queue.sync|fsync|is not one of always, batch, none",
        "queue.roll_cycle|weekly|is not one of secondly, minutely, hourly, daily",
        "smtp.timeout.command|30|is not a duration",
        "smtp.timeout.command|0|is not a positive duration",
        "smtp.timeout.command|5 m|is not a duration",
        "smtp.timeout.command|1h30m|is not a duration",
        "smtp.timeout.command|-5m|is not a duration",
        "queue.max_age|5w|is not a duration",
        "delivery.delay_warning|4|is not a duration",
        "delivery.retry.schedule|,,|at least one",
        "delivery.retry.schedule|1m,5|\"5\" is not a duration",
        "metrics.listen|127.0.0.1|port is missing",
        "delivery.dns.servers|10.0.0.1:0|bad port",
        "relay.domains|exa mple.com|\"exa mple.com\" is not a domain name",
        "relay.domains|..example.com|is not a domain name",
        "relay.networks|10.0.0.0/33|prefix length must be 0..32"
    })
    void badValues(final String key, final String value, final String reason)
    {
        final String problem = problemFor(key, value);

        assertTrue(problem.startsWith("map:0: " + key + ": \"" + value + "\" "), problem);
        assertTrue(problem.contains(reason), problem);
    }

    @Test
    void durations() throws Exception
    {
        assertEquals(500, with("smtp.timeout.command", "500ms").smtp().commandTimeoutMs());
        assertEquals(30_000, with("smtp.timeout.data", "30s").smtp().dataTimeoutMs());
        assertEquals(Duration.ofHours(1), with("smtp.drain_timeout", "1h").inbound().drainTimeout());
        assertEquals(Duration.ofDays(7), with("queue.max_age", "7d").queue().maxAge());
        assertEquals(Duration.ofSeconds(1), with("delivery.idle_timeout", "1s").delivery().idleTimeout());
        assertEquals(Duration.ofSeconds(5), with("delivery.timeout.connect", "5s").delivery().connectTimeout());
        assertEquals(Duration.ofMinutes(1), with("delivery.timeout.command", "1m").delivery().commandTimeout());
        assertEquals(Duration.ofMinutes(4), with("delivery.timeout.data_init", "4m").delivery().dataInitTimeout());
        assertEquals(Duration.ofMinutes(6), with("delivery.timeout.data_block", "6m").delivery().dataBlockTimeout());
        assertEquals(Duration.ofMinutes(20), with("delivery.timeout.data_done", "20m").delivery().dataDoneTimeout());
        assertEquals(Duration.ofHours(4), with("delivery.delay_warning", "4h").queue().delayWarning());
        assertEquals(Duration.ZERO, with("delivery.delay_warning", "0").queue().delayWarning());
        assertEquals(Duration.ZERO, with("delivery.delay_warning", "off").queue().delayWarning());
        assertEquals(List.of(Duration.ofSeconds(1), Duration.ofSeconds(2)),
            with("delivery.retry.schedule", "1s, 2s").queue().retrySchedule());
    }

    @Test
    void enumsAndPaths() throws Exception
    {
        assertEquals(SyncMode.ALWAYS, with("queue.sync", "always").spool().sync());
        assertEquals(SyncMode.NONE, with("queue.sync", "none").spool().sync());
        assertEquals("secondly", with("queue.roll_cycle", "secondly").spool().rollCycle());
        assertEquals(Path.of("/var/spool/relay"), with("queue.dir", "/var/spool/relay").spool().dir());
        assertFalse(with("smtp.limits_exempt_relay_networks", "false").admission().limitsExemptRelayNetworks());
        assertEquals(0L, with("queue.min_free_bytes", "0").spool().minFreeBytes());
        assertEquals(1L << 30, with("queue.min_free_bytes", "1G").spool().minFreeBytes());
    }

    @Test
    void queueDirMustNotBeAFile() throws Exception
    {
        final Path file = java.nio.file.Files.createTempFile("relay-queue", ".tmp");
        try
        {
            assertTrue(problemFor("queue.dir", file.toString()).contains("exists and is not a directory"));
        }
        finally
        {
            java.nio.file.Files.delete(file);
        }
    }

    @Test
    void relayDomains() throws Exception
    {
        final RelayConfig c = with("relay.domains", "Example.COM, .sub.example.org");

        assertEquals(Set.of("example.com", ".sub.example.org"), c.relay().domains());
        assertTrue(c.relay().isRelayDomain("example.com"));
        assertFalse(c.relay().isRelayDomain("www.example.com"));
        assertFalse(c.relay().isRelayDomain("sub.example.org"));
        assertTrue(c.relay().isRelayDomain("a.sub.example.org"));
        assertTrue(c.relay().isRelayDomain("b.a.sub.example.org"));
        assertFalse(c.relay().isRelayDomain("xsub.example.org"));
        assertFalse(RelayConfig.defaults().relay().isRelayDomain("example.com"));
    }

    @Test
    void dnsServersAndMetrics() throws Exception
    {
        final RelayConfig c = RelayConfig.fromMap(Map.of(
            "delivery.dns.servers", "10.0.0.53, [2001:db8::53]:5353",
            "metrics.listen", "off"));

        assertEquals(List.of(
            new InetSocketAddress(InetAddress.getByName("10.0.0.53"), 53),
            new InetSocketAddress(InetAddress.getByName("2001:db8::53"), 5353)), c.dns().servers());
        assertNull(c.metrics().listen());
        assertEquals("off", c.effective().get("metrics.listen"));
    }

    @Test
    @Timeout(10)
    void eachKeyIsReadByExactlyOneSettingsRecord()
    {
        // RelayConfig checks it at every load: the defaults load, so every key has one reader
        assertDoesNotThrow(RelayConfig::defaults);

        final Map<ConfigKey, Object> parsed = new EnumMap<>(ConfigKey.class);
        for (final ConfigKey key : ConfigKey.values())
        {
            parsed.put(key, key.parse(key.defaultText()));
        }
        final ConfigValues values = new ConfigValues(parsed);
        for (final ConfigKey key : ConfigKey.values())
        {
            if (key != ConfigKey.SMTP_LISTEN)
            {
                values.get(key);
            }
        }
        values.get(ConfigKey.QUEUE_DIR);
        final IllegalStateException ex = assertThrows(IllegalStateException.class, values::checkEachReadOnce);
        assertEquals("configuration keys not read exactly once: smtp.listen (read 0) queue.dir (read 2)",
            ex.getMessage());
    }

    @Test
    @Timeout(10)
    void aValueIsOfTheTypeItsKeySays()
    {
        final Map<ConfigKey, Object> parsed = new EnumMap<>(ConfigKey.class);
        for (final ConfigKey key : ConfigKey.values())
        {
            final Object value = key.parse(key.defaultText());
            assertTrue(value == null || key.type().isInstance(value), key.key() + " default parses to " + value);
            parsed.put(key, value);
        }
        parsed.put(ConfigKey.SMTP_MAX_HOPS, 5L);
        final IllegalStateException ex = assertThrows(IllegalStateException.class,
            () -> new ConfigValues(parsed).get(ConfigKey.SMTP_MAX_HOPS));
        assertEquals("smtp.max_hops parsed to a java.lang.Long, not the java.lang.Integer its ConfigKey entry says",
            ex.getMessage());
    }

    @Test
    @Timeout(10)
    void aReloadWithAnAdminTokenSetIsNotRefused() throws Exception
    {
        final RelayConfig running = with("metrics.admin_token", "abc");
        final RelayConfig next = RelayConfig.fromMap(Map.of("metrics.admin_token", "def", "smtp.max_connections", "7"));

        // the masked token of effective() is not a token: the reload starts from the values as written
        final RelayConfig inForce = running.reloadedWith(next);
        assertEquals(7, inForce.admission().maxConnections());
        assertEquals("abc", inForce.metrics().adminToken(), "needs a restart");
        assertEquals("(set, not shown)", inForce.effective().get("metrics.admin_token"));
        assertEquals(List.of(ConfigKey.SMTP_MAX_CONNECTIONS, ConfigKey.METRICS_ADMIN_TOKEN), running.changedIn(next));
    }
}
