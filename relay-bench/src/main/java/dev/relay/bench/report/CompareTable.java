package dev.relay.bench.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.ToDoubleFunction;

/**
 * The README's side-by-side table from the shared harness's {@code results.tsv} ({@code ../shared/bench/compare.sh},
 * one row per run): per config and relay, the medians over the ok rounds of accept and end-to-end msg/s, end-to-end
 * MB/s, the relay's CPU seconds per GB and per 1000 messages and its peak RSS and PSS, and per-round ratios to a
 * reference relay. The harness's own summary has no byte figures; this adds them from its raw columns:
 *
 * <ul>
 * <li>e2e MB/s = {@code e2e_mps * size / 10^6}: body bytes (smtp-source {@code -l}, headers not counted) per second
 *     until the sink had every message;</li>
 * <li>relay CPU s / GB = {@code relay_cpu_s * 10^9 / ((n + probe_n) * size)}: the harness's CPU window (t0 to the
 *     last delivery + 0.5 s) also holds the latency probe's messages, which are as large as the others, so they are
 *     counted here (its {@code cpu_per_1k} divides by N alone and so reads high when the probe sent many);</li>
 * <li>ratios: median over rounds of (relay / reference in the same round), as the harness computes them.</li>
 * </ul>
 *
 * Control path, one thread.
 *
 * <pre>
 * CompareTable RESULTS.tsv [--ref postfix]
 * </pre>
 */
public final class CompareTable
{
    static final String[] HEADER = {"size", "relay", "ok/runs", "accept msg/s", "e2e msg/s", "e2e MB/s",
        "relay CPU s / GB", "CPU s / 1k msgs", "peak RSS MiB", "peak PSS MiB", "e2e x REF", "CPU/GB x REF"};

    private CompareTable()
    {
    }

    public static void main(final String[] args) throws IOException
    {
        Path tsv = null;
        String ref = "postfix";
        for (int i = 0; i < args.length; i++)
        {
            switch (args[i])
            {
                case "--ref" -> ref = args[++i];
                default ->
                {
                    if (args[i].startsWith("-") || tsv != null)
                    {
                        System.err.println("usage: CompareTable RESULTS.tsv [--ref postfix]");
                        System.exit(2);
                    }
                    tsv = Path.of(args[i]);
                }
            }
        }
        if (tsv == null)
        {
            System.err.println("usage: CompareTable RESULTS.tsv [--ref postfix]");
            System.exit(2);
        }
        System.out.print(markdown(read(tsv), ref));
    }

    /** The rows of a harness TSV as column name to value, in file order. */
    static List<Map<String, String>> read(final Path tsv) throws IOException
    {
        final List<Map<String, String>> rows = new ArrayList<>();
        String[] header = null;
        for (final String line : Files.readAllLines(tsv))
        {
            if (line.isBlank())
            {
                continue;
            }
            final String[] f = line.split("\t", -1);
            if (header == null || f[0].equals("config"))
            {
                header = f;
                continue;
            }
            final Map<String, String> row = new LinkedHashMap<>();
            for (int i = 0; i < header.length && i < f.length; i++)
            {
                row.put(header[i], f[i]);
            }
            rows.add(row);
        }
        return rows;
    }

    static String markdown(final List<Map<String, String>> rows, final String ref)
    {
        final StringBuilder sb = new StringBuilder();
        sb.append("| ").append(String.join(" | ", HEADER).replace("REF", ref)).append(" |\n|");
        for (int i = 0; i < HEADER.length; i++)
        {
            sb.append(i < 3 ? " --- |" : " ---: |");
        }
        sb.append('\n');
        final Set<String> configs = new LinkedHashSet<>();
        rows.forEach(r -> configs.add(r.get("config")));
        final List<String> notes = new ArrayList<>();
        for (final String config : configs)
        {
            final List<Map<String, String>> inConfig = rows.stream().filter(r -> config.equals(r.get("config")))
                .toList();
            final Set<String> relays = new LinkedHashSet<>();
            inConfig.forEach(r -> relays.add(r.get("relay")));
            for (final String relay : relays)
            {
                final List<Map<String, String>> mine = inConfig.stream().filter(r -> relay.equals(r.get("relay")))
                    .toList();
                final List<Map<String, String>> ok = mine.stream().filter(r -> "1".equals(r.get("ok"))).toList();
                final double cpuS = median(ok, r -> num(r, "relay_cpu_s"));
                final boolean hasCpu = cpuS > 0;
                sb.append("| ").append(String.join(" | ", size(num(mine.get(0), "size")), relay,
                    ok.size() + "/" + mine.size(),
                    f0(median(ok, r -> num(r, "accept_mps"))),
                    f0(median(ok, r -> num(r, "e2e_mps"))),
                    f1(median(ok, CompareTable::e2eMegabytesPerSecond)),
                    hasCpu ? f2(median(ok, CompareTable::cpuSecondsPerGigabyte)) : "-",
                    hasCpu ? f3(median(ok, r -> num(r, "cpu_per_1k"))) : "-",
                    hasCpu ? f0(median(ok, r -> num(r, "peak_rss_mib"))) : "-",
                    hasCpu ? f0(median(ok, r -> num(r, "peak_pss_mib"))) : "-",
                    ratio(inConfig, ok, ref, CompareTable::e2eMegabytesPerSecond),
                    hasCpu ? ratio(inConfig, ok, ref, CompareTable::cpuSecondsPerGigabyte) : "-")).append(" |\n");
                for (final Map<String, String> r : mine)
                {
                    if (!"1".equals(r.get("ok")))
                    {
                        notes.add("- " + config + " round " + r.get("round") + " " + relay + " failed: "
                            + r.getOrDefault("note", ""));
                    }
                }
            }
        }
        sb.append("\nMedians of the ok rounds. e2e MB/s = e2e msg/s x body size / 10^6; relay CPU s / GB = relay CPU ")
            .append("seconds / ((N + probe messages) x size) x 10^9; ratios: median over rounds of relay / ")
            .append(ref).append(" in the same round.\n");
        notes.forEach(n -> sb.append(n).append('\n'));
        return sb.toString();
    }

    static double e2eMegabytesPerSecond(final Map<String, String> r)
    {
        return num(r, "e2e_mps") * num(r, "size") / 1e6;
    }

    static double cpuSecondsPerGigabyte(final Map<String, String> r)
    {
        final double bytes = (num(r, "n") + Math.max(0, num(r, "probe_n"))) * num(r, "size");
        return bytes > 0 ? num(r, "relay_cpu_s") * 1e9 / bytes : Double.NaN;
    }

    private static String ratio(final List<Map<String, String>> config, final List<Map<String, String>> ok,
        final String ref, final ToDoubleFunction<Map<String, String>> figure)
    {
        final List<Double> ratios = new ArrayList<>();
        for (final Map<String, String> r : ok)
        {
            for (final Map<String, String> other : config)
            {
                if (ref.equals(other.get("relay")) && "1".equals(other.get("ok"))
                    && r.get("round").equals(other.get("round")))
                {
                    final double denominator = figure.applyAsDouble(other);
                    if (denominator > 0)
                    {
                        ratios.add(figure.applyAsDouble(r) / denominator);
                    }
                }
            }
        }
        return ratios.isEmpty() ? "-" : f2(median(ratios));
    }

    private static double median(final List<Map<String, String>> rows, final ToDoubleFunction<Map<String, String>> f)
    {
        final List<Double> values = new ArrayList<>();
        for (final Map<String, String> r : rows)
        {
            final double v = f.applyAsDouble(r);
            if (!Double.isNaN(v))
            {
                values.add(v);
            }
        }
        return median(values);
    }

    private static double median(final List<Double> values)
    {
        if (values.isEmpty())
        {
            return Double.NaN;
        }
        final List<Double> sorted = new ArrayList<>(values);
        sorted.sort(null);
        final int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    private static double num(final Map<String, String> r, final String key)
    {
        final String v = r.get(key);
        if (v == null || v.isEmpty())
        {
            return Double.NaN;
        }
        try
        {
            return Double.parseDouble(v);
        }
        catch (final NumberFormatException ex)
        {
            return Double.NaN;
        }
    }

    static String size(final double bytes)
    {
        final long b = (long)bytes;
        if (b >= 1 << 20 && b % (1 << 20) == 0)
        {
            return b / (1 << 20) + " MiB";
        }
        if (b >= 1 << 10 && b % (1 << 10) == 0)
        {
            return b / (1 << 10) + " KiB";
        }
        return b + " B";
    }

    private static String f0(final double v)
    {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%,.0f", v);
    }

    private static String f1(final double v)
    {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%,.1f", v);
    }

    private static String f2(final double v)
    {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.2f", v);
    }

    private static String f3(final double v)
    {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.3f", v);
    }
}
