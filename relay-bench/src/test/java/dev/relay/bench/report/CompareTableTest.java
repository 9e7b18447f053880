package dev.relay.bench.report;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** CompareTable on a results.tsv shaped like the shared harness's: medians, MB/s, CPU per GB with the probe counted. */
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class CompareTableTest
{
    /** The harness's columns (lib/benchlib.py, cmd_measure's row), in its order. */
    private static final String HEADER = String.join("\t", "config", "round", "relay", "n", "size", "conc", "mps", "ok",
        "accept_s", "e2e_s", "accept_mps", "e2e_mps", "relay_cpu_s", "cpu_per_1k", "relay_sys_pct", "peak_pss_mib",
        "peak_rss_mib", "peak_procs", "gen_cpu_s", "sink_cpu_s", "harness_cpu_s", "other_cores", "kthread_cores",
        "irq_cores", "steal_pct", "busy_cores_accept", "iowait_pct_accept", "busy_cores_e2e", "iowait_pct_e2e",
        "lat_p50_ms", "lat_p90_ms", "lat_p99_ms", "probe_n", "probe_err", "delivered", "load1", "cpu_by_name", "note");

    @Test
    void mediansBytesPerSecondAndCpuPerGigabyte(@TempDir final Path tmp) throws Exception
    {
        final List<String> lines = new ArrayList<>();
        lines.add(HEADER);
        // config, round, relay, accept/s, e2e/s, relay CPU s, peak PSS, peak RSS, probe messages, ok, note
        lines.add(row("n2000-s102400-c50-mpsall", 1, "ours", 520, 500, 4.0, 250, 260, 10, 1, ""));
        lines.add(row("n2000-s102400-c50-mpsall", 1, "postfix", 150, 100, 10.0, 200, 400, 40, 1, ""));
        lines.add(row("n2000-s102400-c50-mpsall", 1, "none", 3000, 3000, 0, 0, 0, 5, 1, ""));
        lines.add(row("n2000-s102400-c50-mpsall", 2, "postfix", 160, 120, 12.0, 210, 410, 40, 1, ""));
        lines.add(row("n2000-s102400-c50-mpsall", 2, "none", 3100, 3100, 0, 0, 0, 5, 1, ""));
        lines.add(row("n2000-s102400-c50-mpsall", 2, "ours", 640, 600, 4.4, 270, 280, 10, 1, ""));
        lines.add(row("n2000-s102400-c50-mpsall", 3, "ours", 0, 0, 9.9, 999, 999, 10, 0,
            "load generator failed or timed out (see gen.log)"));
        lines.add(row("n2000-s1048576-c50-mpsall", 1, "ours", 60, 55, 30.0, 300, 310, 20, 1, ""));
        final Path tsv = tmp.resolve("results.tsv");
        Files.write(tsv, lines);

        final String table = CompareTable.markdown(CompareTable.read(tsv), "postfix");

        assertTrue(table.startsWith("| size | relay | ok/runs | accept msg/s | e2e msg/s | e2e MB/s | "
            + "relay CPU s / GB | CPU s / 1k msgs | peak RSS MiB | peak PSS MiB | e2e x postfix | CPU/GB x postfix "
            + "|\n"), table);
        // ours: MB/s 51.2 and 61.44 -> 56.3; CPU/GB 4e9/(2010*102400) = 19.43 and 21.38 -> 20.41; per 1k: 2.0, 2.2;
        // ratios per round: e2e 5 and 5; CPU/GB 0.406 and 0.372 -> 0.39
        assertTrue(table.contains("| 100 KiB | ours | 2/3 | 580 | 550 | 56.3 | "
            + "20.41 | 2.100 | 270 | 260 | 5.00 | 0.39 |"), table);
        // postfix: CPU/GB 10e9/(2040*102400) = 47.87 and 57.44 -> 52.66
        assertTrue(table.contains("| 100 KiB | postfix | 2/2 | 155 | 110 | 11.3 | "
            + "52.66 | 5.500 | 405 | 205 | 1.00 | 1.00 |"), table);
        // none: no relay CPU; e2e ratios 30 and 25.8 -> 27.92
        assertTrue(table.contains("| 100 KiB | none | 2/2 | 3,050 | 3,050 | 312.3 | "
            + "- | - | - | - | 27.92 | - |"), table);
        // 1 MiB ours: 30e9/(2020*1048576) = 14.16; no postfix row in that config: no ratio
        assertTrue(table.contains("| 1 MiB | ours | 1/1 | 60 | 55 | 57.7 | "
            + "14.16 | 15.000 | 310 | 300 | - | - |"), table);
        assertTrue(table.contains("- n2000-s102400-c50-mpsall round 3 ours failed: load generator failed"), table);
    }

    private static String row(final String config, final int round, final String relay, final double accept,
        final double e2e, final double cpu, final double pss, final double rss, final int probe, final int ok,
        final String note)
    {
        final long n = 2000;
        final long size = Long.parseLong(config.replaceAll(".*-s([0-9]+)-.*", "$1"));
        return String.join("\t", config, Integer.toString(round), relay, Long.toString(n), Long.toString(size), "50",
            "all", Integer.toString(ok), "1.0", "1.0", Double.toString(accept), Double.toString(e2e),
            Double.toString(cpu), Double.toString(cpu / n * 1000), "20", Double.toString(pss), Double.toString(rss),
            "3", "1", "1", "1", "0.0", "0.0", "0.1", "0", "1.9", "0", "1.9", "0", "5", "9", "12",
            Integer.toString(probe), "0", Long.toString(n), "0.5", "java=1.00", note);
    }
}
