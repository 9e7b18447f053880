package dev.relay.bench.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The side-by-side tables of {@code ops/bench --tls --compare-postfix}: reads the phases {@link E2eRun} left for each
 * server ({@code --server NAME=DIR}, the first one is the relay, the last the reference) and writes
 * {@code tls-compare.md} into {@code --out}: with kept connections (phase {@code closed}) accept and end-to-end msg/s,
 * the server's CPU seconds per 1000 messages, its outbound handshakes to the sink in the phase, and the ratios to the reference;
 * with one message per connection (phases {@code conn-full}, {@code conn-resumed}) the inbound handshakes per second,
 * full and resumed, and CPU per 1000 connections. Main thread only.
 *
 * <pre>
 * TlsCompare --out DIR --server relay=DIR1 --server postfix=DIR2 [--note TEXT]
 * </pre>
 */
public final class TlsCompare
{
    private TlsCompare()
    {
    }

    public static void main(final String[] args) throws IOException
    {
        final Map<String, Path> servers = new LinkedHashMap<>();
        Path out = Path.of("bench-report");
        final List<String> notes = new ArrayList<>();
        for (int i = 0; i < args.length; i++)
        {
            switch (args[i])
            {
                case "--out" -> out = Path.of(args[++i]);
                case "--note" -> notes.add(args[++i]);
                case "--server" ->
                {
                    final String v = args[++i];
                    final int eq = v.indexOf('=');
                    servers.put(v.substring(0, eq), Path.of(v.substring(eq + 1)));
                }
                default ->
                {
                    System.err.println("TlsCompare: unknown option " + args[i]);
                    System.exit(2);
                }
            }
        }
        final Map<String, Map<String, ReportWriter.Run>> phases = new LinkedHashMap<>();
        for (final Map.Entry<String, Path> e : servers.entrySet())
        {
            final Map<String, ReportWriter.Run> byName = new LinkedHashMap<>();
            for (final ReportWriter.Run r : ReportWriter.readRuns(e.getValue()))
            {
                byName.put(r.name(), r);
            }
            phases.put(e.getKey(), byName);
        }
        final String md = markdown(phases, notes);
        Files.createDirectories(out);
        Files.writeString(out.resolve("tls-compare.md"), md);
        System.out.print(md);
    }

    static String markdown(final Map<String, Map<String, ReportWriter.Run>> phases, final List<String> notes)
    {
        final String reference = new ArrayList<>(phases.keySet()).get(phases.size() - 1);
        final ReportWriter.Run ref = phases.get(reference).get("closed");
        final StringBuilder md = new StringBuilder();
        md.append("## With TLS in and out\n\n");
        for (final String n : notes)
        {
            md.append(n).append("\n\n");
        }
        md.append("Kept connections (closed loop, every client connection STARTTLS once):\n\n")
            .append("| server | accept msg/s | end-to-end msg/s | CPU s / 1000 msgs | outbound handshakes full / resumed "
                + "| end-to-end vs ").append(reference).append(" | CPU vs ").append(reference).append(" |\n")
            .append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for (final Map.Entry<String, Map<String, ReportWriter.Run>> e : phases.entrySet())
        {
            final ReportWriter.Run r = e.getValue().get("closed");
            if (r == null)
            {
                md.append("| ").append(e.getKey()).append(" | no closed-loop phase | | | | | |\n");
                continue;
            }
            md.append("| ").append(e.getKey())
                .append(" | ").append(f0(r.num("msgs_per_sec")))
                .append(" | ").append(f0(r.num("e2e_msgs_per_sec")))
                .append(" | ").append(f3(r.num("cpu_s_per_1k")))
                .append(" | ").append(f0(r.num("out_tls_full"))).append(" / ").append(f0(r.num("out_tls_resumed")))
                .append(" | ").append(ref == null ? "-" : ratio(r.num("e2e_msgs_per_sec") / ref.num("e2e_msgs_per_sec")) + "×")
                .append(" | ").append(ref == null ? "-" : "1/" + ratio(ref.num("cpu_s_per_1k") / r.num("cpu_s_per_1k")))
                .append(" |\n");
        }
        md.append("\nOne message per connection (a STARTTLS handshake each; resumed: the client offers its last "
                + "session):\n\n")
            .append("| server | client | handshakes/s full | handshakes/s resumed | end-to-end msg/s | "
                + "CPU s / 1000 connections | errors |\n")
            .append("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
        for (final Map.Entry<String, Map<String, ReportWriter.Run>> e : phases.entrySet())
        {
            for (final String phase : new String[] {"conn-full", "conn-resumed"})
            {
                final ReportWriter.Run r = e.getValue().get(phase);
                if (r == null)
                {
                    continue;
                }
                md.append("| ").append(e.getKey())
                    .append(" | ").append(phase.equals("conn-full") ? "no session offered" : "--tls-resume")
                    .append(" | ").append(f0(orZero(r.num("tls_full_per_sec"))))
                    .append(" | ").append(f0(orZero(r.num("tls_resumed_per_sec"))))
                    .append(" | ").append(f0(r.num("e2e_msgs_per_sec")))
                    .append(" | ").append(f3(r.num("cpu_s_per_1k")))
                    .append(" | ").append(r.values().getOrDefault("errors", "?"))
                    .append(" |\n");
            }
        }
        return md.toString();
    }

    private static double orZero(final double v)
    {
        return Double.isNaN(v) ? 0 : v;
    }

    private static String ratio(final double v)
    {
        return Double.isNaN(v) || Double.isInfinite(v) ? "-" : String.format(Locale.ROOT, "%.1f", v);
    }

    private static String f0(final double v)
    {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%,.0f", v);
    }

    private static String f3(final double v)
    {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.3f", v);
    }
}
