package dev.relay.bench.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

import dev.relay.bench.e2e.SizeMix;
import dev.relay.bench.guard.Json;
import dev.relay.bench.guard.MachineInfo;

/**
 * Writes {@code summary.md} and a self-contained {@code report.html} (inline CSS and SVG, nothing fetched) for an
 * {@code ops/bench} output directory: the phases {@link E2eRun} left there ({@code PHASE/phase.txt} with the
 * {@code RESULT}, {@code SINK} and {@code PROCESS} lines, and {@code accept.hgrm}, {@code txn.hgrm},
 * {@code e2e.hgrm}) and, when present, JMH's {@code jmh.json}. Latency plots are HdrHistogram-style: percentile on a
 * log axis (0%, 90%, 99%, 99.9% ... equally spaced), latency on a linear axis, one line per run.
 *
 * <pre>
 * ReportWriter --dir bench-report [--command "ops/bench"] [--commit SHA] [--settings TEXT]
 * </pre>
 */
public final class ReportWriter
{

    /** One phase's figures, parsed from its phase.txt, and its three distributions. */
    record Run(String name, Map<String, String> values, Map<String, List<double[]>> curves)
    {
        double num(final String key)
        {
            final String v = values.get(key);
            return v == null ? Double.NaN : Double.parseDouble(v);
        }
    }

    private ReportWriter()
    {
    }

    public static void main(final String[] args) throws IOException
    {
        Path dir = Path.of("bench-report");
        String command = "ops/bench";
        String commit = null;
        String settings = "";
        for (int i = 0; i < args.length; i++)
        {
            switch (args[i])
            {
                case "--dir" -> dir = Path.of(args[++i]);
                case "--command" -> command = args[++i];
                case "--commit" -> commit = args[++i];
                case "--settings" -> settings = args[++i];
                default ->
                {
                    System.err.println("ReportWriter: unknown option " + args[i]);
                    System.exit(2);
                }
            }
        }
        final List<Run> runs = readRuns(dir);
        final List<Map<String, Object>> jmh = readJmh(dir.resolve("jmh.json"));
        final Map<String, String> about = about(command, commit == null ? MachineInfo.gitCommit() : commit, settings);
        Files.writeString(dir.resolve("summary.md"), markdown(about, runs, jmh));
        Files.writeString(dir.resolve("report.html"), html(about, runs, jmh));
        System.err.println("report: " + dir.resolve("summary.md") + ", " + dir.resolve("report.html"));
    }

    // ---- input ----

    static List<Run> readRuns(final Path dir) throws IOException
    {
        final List<Path> phases = new ArrayList<>();
        if (Files.isDirectory(dir))
        {
            try (Stream<Path> list = Files.list(dir))
            {
                list.filter(p -> Files.isRegularFile(p.resolve("phase.txt"))).sorted(
                    (a, b) -> order(a.getFileName().toString()).compareTo(order(b.getFileName().toString())))
                    .forEach(phases::add);
            }
        }
        final List<Run> runs = new ArrayList<>();
        for (final Path p : phases)
        {
            final Map<String, String> values = new LinkedHashMap<>();
            for (final String line : Files.readAllLines(p.resolve("phase.txt")))
            {
                final String[] words = line.strip().split("\\s+");
                for (int i = 1; i < words.length; i++)
                {
                    final int eq = words[i].indexOf('=');
                    if (eq > 0)
                    {
                        values.put(words[i].substring(0, eq), words[i].substring(eq + 1));
                    }
                }
            }
            final Map<String, List<double[]>> curves = new LinkedHashMap<>();
            for (final String h : new String[] {"accept", "txn", "e2e"})
            {
                final Path file = p.resolve(h + ".hgrm");
                if (Files.isRegularFile(file))
                {
                    curves.put(h, readHgrm(file));
                }
            }
            runs.add(new Run(p.getFileName().toString(), values, curves));
        }
        return runs;
    }

    private static String order(final String name)
    {
        return name.equals("closed") ? "0" : "1" + name;
    }

    /** The percentile distribution HdrHistogram writes: rows of value, percentile, count, 1/(1-percentile). */
    static List<double[]> readHgrm(final Path file) throws IOException
    {
        final List<double[]> points = new ArrayList<>();
        for (final String line : Files.readAllLines(file))
        {
            final String[] f = line.strip().split("\\s+");
            if (f.length != 4 || line.startsWith("#"))
            {
                continue;
            }
            try
            {
                points.add(new double[] {Double.parseDouble(f[1]), Double.parseDouble(f[0])});   // percentile, ms
            }
            catch (final NumberFormatException header)
            {
                // the column header
            }
        }
        return points;
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> readJmh(final Path file) throws IOException
    {
        if (!Files.isRegularFile(file) || Files.size(file) == 0)
        {
            return List.of();
        }
        final List<Map<String, Object>> list = new ArrayList<>();
        for (final Object o : (List<Object>)Json.parse(Files.readString(file)))
        {
            list.add((Map<String, Object>)o);
        }
        return list;
    }

    private static Map<String, String> about(final String command, final String commit, final String settings)
    {
        final Map<String, String> about = new LinkedHashMap<>();
        about.put("date", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        about.put("git commit", commit);
        about.put("command", command);
        if (!settings.isEmpty())
        {
            about.put("settings", settings);
        }
        final Map<String, Object> machine = MachineInfo.machine();
        about.put("machine", String.format("%s cores (nproc), %s, memory %s, %s", machine.get("nproc"),
            machine.get("cpu"), machine.get("memory"), machine.get("os")));
        about.put("JDK", System.getProperty("java.vm.vendor") + " " + System.getProperty("java.vm.name") + " "
            + System.getProperty("java.runtime.version"));
        return about;
    }

    // ---- tables ----

    private static final String[] E2E_HEADER = {"run", "offered msg/s", "throughput msg/s", "MB/s", "accept p50 ms",
        "p90", "p99", "p99.9", "max", "txn p99 ms (from intended)", "e2e p50 ms", "p90", "p99", "p99.9", "max",
        "CPU s / 1k msgs", "CPU s / GB", "peak RSS MiB", "errors"};

    private static List<String[]> e2eRows(final List<Run> runs)
    {
        final List<String[]> rows = new ArrayList<>();
        for (final Run r : runs)
        {
            rows.add(new String[] {r.name(), r.num("rate") > 0 ? f0(r.num("rate"))
                : r.num("per_connection") > 0 ? "closed, c=50, " + f0(r.num("per_connection")) + " per connection"
                : "closed, c=50",
                f0(r.num("msgs_per_sec")), sig3(r.num("mb_per_sec")), f3(r.num("p50_ms")), f3(r.num("p90_ms")),
                f3(r.num("p99_ms")), f3(r.num("p999_ms")), f3(r.num("max_ms")), f3(r.num("txn_p99_ms")),
                f3(r.num("e2e_p50_ms")), f3(r.num("e2e_p90_ms")), f3(r.num("e2e_p99_ms")), f3(r.num("e2e_p999_ms")),
                f3(r.num("e2e_max_ms")), String.format(Locale.ROOT, "%.3f", r.num("cpu_s_per_1k")),
                sig3(r.num("cpu_s_per_gb")), f0(r.num("peak_rss_kb") / 1024),
                r.values().getOrDefault("errors", "?") + (r.num("mismatches") > 0 ? " (" + r.values().get("mismatches")
                    + " corrupted)" : "")});
        }
        return rows;
    }

    private static final String[] DESTINATIONS_HEADER = {"run", "domains", "throughput msg/s", "DNS queries",
        "DNS queries since start", "DNS queries in flight at most"};

    /** The runs of a many-destinations bench ({@code --domains N}: phase.txt has a DNS line), or none. */
    private static List<String[]> destinationRows(final List<Run> runs)
    {
        final List<String[]> rows = new ArrayList<>();
        for (final Run r : runs)
        {
            if (r.values().containsKey("dns_queries"))
            {
                rows.add(new String[] {r.name(), f0(r.num("domains")), f0(r.num("msgs_per_sec")),
                    f0(r.num("dns_queries")), f0(r.num("dns_queries_total")), f0(r.num("dns_peak_in_flight"))});
            }
        }
        return rows;
    }

    private static final String[] JMH_HEADER = {"benchmark", "params", "mode", "score", "± error", "unit",
        "p50", "p99", "p99.9"};

    @SuppressWarnings("unchecked")
    private static List<String[]> jmhRows(final List<Map<String, Object>> jmh)
    {
        final List<String[]> rows = new ArrayList<>();
        for (final Map<String, Object> b : jmh)
        {
            final String name = ((String)b.get("benchmark")).replace("dev.relay.bench.", "");
            final Map<String, Object> params = (Map<String, Object>)b.getOrDefault("params", Map.of());
            final StringBuilder p = new StringBuilder();
            params.forEach((k, v) -> p.append(p.length() == 0 ? "" : " ").append(k).append('=').append(v));
            final Map<String, Object> primary = (Map<String, Object>)b.get("primaryMetric");
            final Map<String, Object> pct = (Map<String, Object>)primary.getOrDefault("scorePercentiles", Map.of());
            final boolean sample = "sample".equals(b.get("mode"));
            rows.add(new String[] {name, p.toString(), String.valueOf(b.get("mode")), g((Double)primary.get("score")),
                primary.get("scoreError") instanceof Double e ? g(e) : "-", String.valueOf(primary.get("scoreUnit")),
                sample ? g((Double)pct.get("50.0")) : "", sample ? g((Double)pct.get("99.0")) : "",
                sample ? g((Double)pct.get("99.9")) : ""});
        }
        return rows;
    }

    private static String f0(final double v)
    {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.0f", v);
    }

    private static String f3(final double v)
    {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.3f", v);
    }

    /** Three significant digits, no exponent: 0.0123, 1.23, 123, 12300. */
    private static String sig3(final double v)
    {
        if (Double.isNaN(v))
        {
            return "-";
        }
        final int digits = v == 0 ? 0 : Math.max(0, 2 - (int)Math.floor(Math.log10(Math.abs(v))));
        return String.format(Locale.ROOT, "%." + digits + "f", v);
    }

    /** What the runs sent: the size mix E2eRun recorded in each phase's PROCESS line (the same for all phases). */
    static String sizes(final List<Run> runs)
    {
        for (final Run r : runs)
        {
            final String mix = r.values().get("mix");
            if (mix == null)
            {
                continue;
            }
            final String mean = String.format(Locale.ROOT, "%,.0f", r.num("mean_size"));
            if (!SizeMix.expand(mix).equals(mix))
            {
                return "size mix `" + mix + "` = `" + SizeMix.expand(mix) + "` (size:weight; SPECmail2001's message "
                    + "size distribution, mean " + mean + " bytes)";
            }
            return mix.matches("[0-9]+[kKmM]?") ? "bodies of " + mean + " bytes" : "size mix `" + mix + "` (mean "
                + mean + " bytes)";
        }
        return "message size not recorded";
    }

    private static String g(final Double v)
    {
        return v == null || v.isNaN() ? "-" : String.format(Locale.ROOT, "%.4g", v);
    }

    // ---- summary.md ----

    static String markdown(final Map<String, String> about, final List<Run> runs, final List<Map<String, Object>> jmh)
    {
        final StringBuilder sb = new StringBuilder("# relay benchmark report\n\n");
        about.forEach((k, v) -> sb.append("- ").append(k).append(": ").append(k.equals("command") ? "`" + v + "`" : v)
            .append('\n'));
        sb.append("\n## End to end\n\n")
            .append("ops/relay (queue.sync=batch, spool in a temp dir) on loopback; LoadGenerator (50 connections, ")
            .append(sizes(runs)).append(", pipelining, kept connections) and BenchSink in one JVM on the same ")
            .append("machine. accept = end of data written to 250 at the client; txn = intended send time to 250 ")
            .append("(open loop: no coordinated omission); e2e = X-Bench-Sent to arrival at the sink. MB/s = body ")
            .append("bytes accepted per second (10^6 bytes; the ~350 bytes of generated headers not counted). CPU and ")
            .append("RSS are the relay process's (/proc); CPU s / GB = relay CPU seconds per 10^9 body bytes.\n\n");
        table(sb, E2E_HEADER, e2eRows(runs));
        final List<String[]> destinations = destinationRows(runs);
        if (!destinations.isEmpty())
        {
            sb.append("\n## Destinations\n\n")
                .append("Each message to one of N domains in turn, every domain found by MX lookup (its own MX host) ")
                .append("against a DNS server on loopback. DNS queries: the queries (MX, A, AAAA) the relay sent during ")
                .append("the run, and since the start, the unreported warm-up included (answers are cached for their ")
                .append("TTL of 300 s, so the lookups happen in the first run).\n\n");
            table(sb, DESTINATIONS_HEADER, destinations);
        }
        if (!jmh.isEmpty())
        {
            sb.append("\n## JMH (jmh.json)\n\n");
            table(sb, JMH_HEADER, jmhRows(jmh));
        }
        sb.append("\n## Files\n\n- `jmh.json`, `jmh.txt`: JMH result and log\n")
            .append("- `PHASE/accept.hgrm`, `PHASE/txn.hgrm`, `PHASE/e2e.hgrm`, `PHASE/phase.txt`: per run\n")
            .append("- `report.html`: the same tables and the latency plots\n");
        return sb.toString();
    }

    private static void table(final StringBuilder sb, final String[] header, final List<String[]> rows)
    {
        sb.append("| ").append(String.join(" | ", header)).append(" |\n|");
        for (int i = 0; i < header.length; i++)
        {
            sb.append(i == 0 ? " --- |" : " ---: |");
        }
        sb.append('\n');
        for (final String[] row : rows)
        {
            sb.append("| ").append(String.join(" | ", row)).append(" |\n");
        }
    }

    // ---- report.html ----

    static String html(final Map<String, String> about, final List<Run> runs, final List<Map<String, Object>> jmh)
    {
        final StringBuilder sb = new StringBuilder();
        sb.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>relay benchmark report</title>\n")
            .append("<style>body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;")
            .append("font-size:13px;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}")
            .append("td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}svg{margin:0 1em 1em 0}")
            .append("code{background:#f3f3f3;padding:1px 3px}</style></head><body>\n<h1>relay benchmark report</h1>\n<ul>\n");
        about.forEach((k, v) -> sb.append("<li>").append(esc(k)).append(": ")
            .append(k.equals("command") ? "<code>" + esc(v) + "</code>" : esc(v)).append("</li>\n"));
        sb.append("</ul>\n<h2>End to end</h2>\n<p>ops/relay (queue.sync=batch) on loopback; LoadGenerator (50 ")
            .append("connections, ").append(esc(sizes(runs).replace("`", ""))).append(") and BenchSink on the same ")
            .append("machine. Closed loop, then open loop at fractions of the closed-loop rate. MB/s counts body ")
            .append("bytes (10^6). CPU and RSS are the relay process's; CPU s / GB is per 10^9 body bytes.</p>\n");
        htmlTable(sb, E2E_HEADER, e2eRows(runs));
        final List<String[]> destinations = destinationRows(runs);
        if (!destinations.isEmpty())
        {
            sb.append("<h2>Destinations</h2>\n<p>Each message to one of N domains in turn, every domain found by MX ")
                .append("lookup against a DNS server on loopback; DNS queries the relay sent during the run.</p>\n");
            htmlTable(sb, DESTINATIONS_HEADER, destinations);
        }
        final String[][] plots = {
            {"accept", "Accept latency (end of data to 250)"},
            {"txn", "Transaction latency (intended send time to 250)"},
            {"e2e", "End-to-end latency (sent to arrival at the sink)"}};
        for (final String[] plot : plots)
        {
            sb.append(LatencyPlot.svg(plot[1], plot[0], runs));
        }
        if (!jmh.isEmpty())
        {
            sb.append("<h2>JMH</h2>\n");
            htmlTable(sb, JMH_HEADER, jmhRows(jmh));
        }
        return sb.append("</body></html>\n").toString();
    }

    private static void htmlTable(final StringBuilder sb, final String[] header, final List<String[]> rows)
    {
        sb.append("<table><tr>");
        for (final String h : header)
        {
            sb.append("<th>").append(esc(h)).append("</th>");
        }
        sb.append("</tr>\n");
        for (final String[] row : rows)
        {
            sb.append("<tr>");
            for (final String c : row)
            {
                sb.append("<td>").append(esc(c)).append("</td>");
            }
            sb.append("</tr>\n");
        }
        sb.append("</table>\n");
    }

    /** {@code s} as HTML (and SVG) text. */
    static String esc(final String s)
    {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
