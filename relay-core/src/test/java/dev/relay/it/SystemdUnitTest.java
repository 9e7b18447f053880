package dev.relay.it;

import dev.relay.config.RelayConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ops/systemd/relay.service: the settings the README promises (a dedicated user, the sandbox with the spool as the
 * one writable path, port 25 through a capability, reload, restart, a stop timeout that covers the drain), then
 * {@code systemd-analyze verify} on it (skipped with a message outside CI when systemd-analyze is missing; .ci/run
 * installs it).
 */
@Timeout(60)
class SystemdUnitTest
{
    private static final Pattern QUEUE_DIR = Pattern.compile("-Dqueue\\.dir=(\\S+)");
    /** What the relay takes after the inbound drain: delivery transactions in flight (Relay.DELIVERY_DRAIN_MS). */
    private static final Duration DELIVERY_DRAIN = Duration.ofSeconds(5);

    @TempDir
    Path tmp;

    @Test
    void unitSandboxesTheRelayAndCoversItsDrain() throws Exception
    {
        final Path root = Deployment.repositoryRoot();
        final Map<String, Map<String, List<String>>> unit = parse(root.resolve("ops/systemd/relay.service"));
        final Map<String, List<String>> service = unit.get("Service");

        // a dedicated user, the one ops/systemd/relay.sysusers.conf creates
        final String user = one(service, "User");
        assertTrue(!user.equals("root") && !user.equals("0"), "User=" + user);
        final String sysusers = Files.readString(root.resolve("ops/systemd/relay.sysusers.conf"));
        assertTrue(sysusers.lines().anyMatch(l -> l.startsWith("u " + user + " ")), sysusers);

        assertEquals("/opt/relay/bin/relay --config /etc/relay/relay.properties", one(service, "ExecStart"));
        assertEquals("yes", one(service, "NoNewPrivileges"));
        assertEquals("strict", one(service, "ProtectSystem"));
        assertEquals("CAP_NET_BIND_SERVICE", one(service, "AmbientCapabilities"));
        assertEquals("CAP_NET_BIND_SERVICE", one(service, "CapabilityBoundingSet"));
        assertEquals("on-failure", one(service, "Restart"));
        assertTrue(one(service, "ExecReload").matches("/bin/kill -HUP \\$MAINPID"), one(service, "ExecReload"));

        // the spool is the only writable path, and it is the queue.dir the relay uses (a system property wins)
        final Matcher queueDir = QUEUE_DIR.matcher(one(service, "Environment"));
        assertTrue(queueDir.find(), "Environment sets -Dqueue.dir: " + one(service, "Environment"));
        assertEquals(queueDir.group(1), one(service, "ReadWritePaths"));
        assertEquals(queueDir.group(1), "/var/lib/" + one(service, "StateDirectory"));

        final RelayConfig shipped = Deployment.relayConfig(root.resolve("ops/relay.properties"));
        assertTrue(Long.parseLong(one(service, "LimitNOFILE")) > shipped.admission().maxConnections() * 2L,
            "LimitNOFILE covers smtp.max_connections inbound and as many outbound and files");
        final Duration stop = seconds(one(service, "TimeoutStopSec"));
        final Duration drain = shipped.inbound().drainTimeout().plus(DELIVERY_DRAIN);
        assertTrue(stop.compareTo(drain.plusSeconds(10)) >= 0,
            "TimeoutStopSec " + stop + " covers smtp.drain_timeout + delivery drain " + drain + " with room");
        assertEquals("multi-user.target", one(unit.get("Install"), "WantedBy"));
    }

    @Test
    void systemdAnalyzeVerifiesTheUnit() throws Exception
    {
        final Path analyze = ExternalTool.require("systemd-analyze");
        final Path root = Deployment.repositoryRoot();
        // verify checks that ExecStart's program exists: point /opt/relay at a copy of the launcher
        final Path opt = Files.createDirectories(tmp.resolve("opt/relay/bin"));
        Files.copy(root.resolve("ops/relay"), opt.resolve("relay"), StandardCopyOption.COPY_ATTRIBUTES);
        final String text = Files.readString(root.resolve("ops/systemd/relay.service"))
            .replace("/opt/relay/", tmp.resolve("opt/relay") + "/");
        final Path unit = tmp.resolve("relay.service");
        Files.writeString(unit, text);
        final ExternalTool.Result result = ExternalTool.run(List.of(analyze.toString(), "verify", unit.toString()),
            tmp, Duration.ofSeconds(30));
        assertEquals(0, result.exitCode(), result::toString);
        assertEquals("", (result.stdout() + result.stderr()).strip(), "no warnings: " + result);
    }

    /** systemd's time span, as this unit writes it: {@code 60s}, {@code 2min}. */
    private static Duration seconds(final String span)
    {
        final Matcher m = Pattern.compile("([0-9]+)(s|min)?").matcher(span);
        assertTrue(m.matches(), "time span " + span);
        final long n = Long.parseLong(m.group(1));
        return "min".equals(m.group(2)) ? Duration.ofMinutes(n) : Duration.ofSeconds(n);
    }

    private static String one(final Map<String, List<String>> section, final String key)
    {
        final List<String> values = section.getOrDefault(key, List.of());
        assertEquals(1, values.size(), () -> key + " set once: " + values);
        return values.get(0);
    }

    /** An INI-style unit file: section to key to its values in order (systemd keys may repeat). */
    static Map<String, Map<String, List<String>>> parse(final Path file) throws IOException
    {
        final Map<String, Map<String, List<String>>> sections = new LinkedHashMap<>();
        Map<String, List<String>> current = null;
        for (final String raw : Files.readAllLines(file))
        {
            final String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#") || line.startsWith(";"))
            {
                continue;
            }
            if (line.startsWith("[") && line.endsWith("]"))
            {
                current = sections.computeIfAbsent(line.substring(1, line.length() - 1), k -> new LinkedHashMap<>());
                continue;
            }
            final int eq = line.indexOf('=');
            assertTrue(current != null && eq > 0, () -> file + ": " + raw);
            current.computeIfAbsent(line.substring(0, eq).strip(), k -> new ArrayList<>())
                .add(line.substring(eq + 1).strip());
        }
        return sections;
    }
}
