package dev.relay.it;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ops/monitoring: the Grafana dashboard is strict JSON whose every query names only metrics a running relay's
 * /metrics exports (the list is scraped from a relay started here, not kept by hand); the Prometheus alert rules
 * likewise, pass {@code promtool check rules}, and fire as their unit tests say ({@code promtool test rules};
 * promtool comes from Debian's prometheus package: .ci/run installs it, elsewhere those checks skip with a message).
 */
@Timeout(60)
class MonitoringTest
{
    /** The one series the rules may name that the relay does not export: Prometheus's own scrape result. */
    private static final Set<String> PROMETHEUS_SERIES = Set.of("up");
    /** Keywords, and the aggregation operators (which may stand before "by (...)" rather than their "("). */
    private static final Set<String> PROMQL_KEYWORDS = Set.of("and", "or", "unless", "by", "without", "on",
        "ignoring", "group_left", "group_right", "bool", "offset", "sum", "min", "max", "avg", "group", "stddev",
        "stdvar", "count", "count_values", "bottomk", "topk", "quantile");
    private static final Pattern STRING = Pattern.compile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'");
    private static final Pattern LABEL_LIST =
        Pattern.compile("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)");
    private static final Pattern IDENTIFIER = Pattern.compile("(?<![0-9.$A-Za-z_:])([A-Za-z_:][A-Za-z0-9_:]*)(\\s*\\()?");
    private static final Pattern LABEL_VALUES = Pattern.compile("label_values\\(\\s*([A-Za-z_:][A-Za-z0-9_:]*)\\s*,");

    @TempDir
    static Path spool;
    private static Set<String> exported;
    private static Path monitoring;

    @BeforeAll
    static void scrapeARunningRelay() throws Exception
    {
        monitoring = Deployment.repositoryRoot().resolve("ops/monitoring");
        try (InProcessRelay relay = InProcessRelay.start(spool, "metrics.listen", "127.0.0.1:0"))
        {
            final InetSocketAddress address = relay.relay().metricsAddress();
            final HttpResponse<String> response = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + address.getPort() + "/metrics"))
                    .timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode());
            exported = metricNames(response.body());
        }
        assertTrue(exported.contains("relay_queue_messages") && exported.contains("relay_delivery_latency_seconds_sum"),
            exported::toString);
    }

    /** Every series name in a Prometheus text exposition (sample lines, and the names # TYPE declares). */
    static Set<String> metricNames(final String exposition)
    {
        final Set<String> names = new TreeSet<>();
        for (final String line : exposition.split("\n"))
        {
            if (line.startsWith("# TYPE "))
            {
                names.add(line.split(" ")[2]);
            }
            else if (!line.isEmpty() && !line.startsWith("#"))
            {
                final Matcher m = IDENTIFIER.matcher(line);
                assertTrue(m.lookingAt(), line);
                names.add(m.group(1));
            }
        }
        return names;
    }

    @Test
    void dashboardIsJsonAndQueriesOnlyExportedMetrics() throws Exception
    {
        final ObjectMapper strict = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
        final JsonNode dashboard = strict.readTree(monitoring.resolve("relay-dashboard.json").toFile());
        assertFalse(dashboard.path("title").asText().isEmpty());
        assertFalse(dashboard.path("uid").asText().isEmpty());

        final Set<String> titles = new HashSet<>();
        final Set<Integer> ids = new HashSet<>();
        final List<String> expressions = new ArrayList<>();
        for (final JsonNode panel : dashboard.path("panels"))
        {
            assertTrue(ids.add(panel.path("id").asInt(-1)), "panel ids unique: " + panel.path("title"));
            assertTrue(panel.path("gridPos").has("w") && panel.path("gridPos").has("h"), panel.path("title").asText());
            titles.add(panel.path("title").asText());
            assertTrue(panel.path("targets").size() > 0, "a query in " + panel.path("title"));
            for (final JsonNode target : panel.path("targets"))
            {
                assertEquals("${datasource}", target.path("datasource").path("uid").asText(), panel.path("title").asText());
                expressions.add(target.path("expr").asText());
            }
        }
        assertTrue(titles.containsAll(List.of("Throughput", "Queue size", "Deferred", "Latency", "Disk headroom",
            "Connections")), titles::toString);
        final Set<String> used = new TreeSet<>();
        for (final String expression : expressions)
        {
            used.addAll(metricsIn(expression, Set.of()));
        }
        for (final JsonNode variable : dashboard.path("templating").path("list"))
        {
            if ("query".equals(variable.path("type").asText()))
            {
                final Matcher m = LABEL_VALUES.matcher(variable.path("definition").asText());
                assertTrue(m.find(), variable.toString());
                assertTrue(exported.contains(m.group(1)), "variable " + variable.path("name") + " uses " + m.group(1));
            }
        }
        for (final String metric : List.of("relay_messages_received_total", "relay_messages_delivered_total",
            "relay_queue_messages", "relay_messages_deferred_total", "relay_delivery_latency_seconds_sum",
            "relay_queue_bytes", "relay_queue_max_bytes", "relay_spool_free_bytes", "relay_connections_in_open"))
        {
            assertTrue(used.contains(metric), "the dashboard shows " + metric + ": " + used);
        }
    }

    @Test
    void alertRulesQueryOnlyExportedMetrics() throws Exception
    {
        final JsonNode rules = new YAMLMapper().readTree(monitoring.resolve("relay-alerts.yml").toFile());
        final Set<String> alerts = new TreeSet<>();
        for (final JsonNode group : rules.path("groups"))
        {
            for (final JsonNode rule : group.path("rules"))
            {
                final String name = rule.path("alert").asText();
                alerts.add(name);
                assertFalse(rule.path("labels").path("severity").asText().isEmpty(), name + " has a severity");
                assertFalse(rule.path("annotations").path("summary").asText().isEmpty(), name + " has a summary");
                assertFalse(metricsIn(rule.path("expr").asText(), PROMETHEUS_SERIES).isEmpty(), name);
            }
        }
        assertTrue(alerts.containsAll(List.of("RelayDown", "RelayQueueGrowing", "RelayDeferredRateHigh",
            "RelayQueueNearMaxBytes", "RelaySpoolDiskLow")), alerts::toString);
    }

    @Test
    void promtoolChecksAndUnitTestsTheRules() throws Exception
    {
        final Path promtool = ExternalTool.require("promtool");
        final ExternalTool.Result check = ExternalTool.run(
            List.of(promtool.toString(), "check", "rules", monitoring.resolve("relay-alerts.yml").toString()),
            spool, Duration.ofSeconds(30));
        assertEquals(0, check.exitCode(), check::toString);
        assertTrue(check.stdout().contains("SUCCESS"), check::toString);
        final ExternalTool.Result test = ExternalTool.run(
            List.of(promtool.toString(), "test", "rules", monitoring.resolve("relay-alerts.test.yml").toString()),
            spool, Duration.ofSeconds(30));
        assertEquals(0, test.exitCode(), test::toString);
        assertTrue(test.stdout().contains("SUCCESS"), test::toString);
    }

    /**
     * The series names in a PromQL expression, each checked against what the relay exports (or {@code allowed}):
     * strings, label matchers, ranges and grouping label lists are set aside; a name followed by "(" is a
     * function; Grafana variables ($instance), PromQL keywords and aggregation operators are not series.
     */
    private static Set<String> metricsIn(final String expression, final Set<String> allowed)
    {
        String text = STRING.matcher(expression).replaceAll("\"\"");
        text = text.replaceAll("\\{[^}]*}", " ").replaceAll("\\[[^\\]]*]", " ");
        text = LABEL_LIST.matcher(text).replaceAll("$1 ");
        final Set<String> metrics = new TreeSet<>();
        final Matcher m = IDENTIFIER.matcher(text);
        while (m.find())
        {
            final String name = m.group(1);
            if (m.group(2) != null || PROMQL_KEYWORDS.contains(name))
            {
                continue;
            }
            assertTrue(exported.contains(name) || allowed.contains(name),
                () -> name + " in `" + expression + "` is not a metric the relay exports: " + exported);
            metrics.add(name);
        }
        assertFalse(metrics.isEmpty(), "no metric in `" + expression + "`");
        return metrics;
    }
}
