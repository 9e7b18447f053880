package dev.relay.bench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** TlsCompare on phase.txt files shaped like E2eRun's: figures per server, ratios to the last server. */
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class TlsCompareTest
{
    @Test
    void tablesWithRatiosToTheReference(@TempDir final Path tmp) throws Exception
    {
        phase(tmp.resolve("relay"), "closed", 5000, 4000, 0.2, "", "0", "30");
        phase(tmp.resolve("relay"), "conn-full", 300, 290, 2.0, " tls_full_per_sec=310.0 tls_resumed_per_sec=0.0",
            "0", "0");
        phase(tmp.resolve("relay"), "conn-resumed", 500, 480, 1.0, " tls_full_per_sec=5.0 tls_resumed_per_sec=495.0",
            "0", "0");
        phase(tmp.resolve("postfix"), "closed", 500, 400, 2.0, "", "2", "60");
        phase(tmp.resolve("postfix"), "conn-full", 60, 55, 8.0, " tls_full_per_sec=60.0 tls_resumed_per_sec=0.0",
            "0", "0");

        TlsCompare.main(new String[] {"--out", tmp.toString(), "--server", "relay=" + tmp.resolve("relay"),
            "--server", "Postfix=" + tmp.resolve("postfix"), "--note", "a note"});

        final String md = Files.readString(tmp.resolve("tls-compare.md"));
        assertTrue(md.startsWith("## With TLS in and out\n\na note\n\n"), md);
        assertTrue(md.contains("| relay | 5,000 | 4,000 | 0.200 | 0 / 30 | 10.0× | 1/10.0 |\n"), md);
        assertTrue(md.contains("| Postfix | 500 | 400 | 2.000 | 2 / 60 | 1.0× | 1/1.0 |\n"), md);
        assertTrue(md.contains("| relay | no session offered | 310 | 0 | 290 | 2.000 | 0 |\n"), md);
        assertTrue(md.contains("| relay | --tls-resume | 5 | 495 | 480 | 1.000 | 0 |\n"), md);
        assertTrue(md.contains("| Postfix | no session offered | 60 | 0 | 55 | 8.000 | 0 |\n"), md);
        assertEquals(-1, md.indexOf("| Postfix | --tls-resume"), "no row for a phase that did not run");
    }

    private static void phase(final Path dir, final String name, final double accept, final double e2e,
        final double cpuPer1k, final String tls, final String outFull, final String outResumed) throws Exception
    {
        final Path p = Files.createDirectories(dir.resolve(name));
        Files.writeString(p.resolve("phase.txt"), String.join("\n",
            "RESULT messages=1000 errors=0 msgs_per_sec=" + accept + tls,
            "SINK e2e_count=1000 mismatches=0 out_tls_full=" + outFull + " out_tls_resumed=" + outResumed,
            "PROCESS phase=" + name + " cpu_s_per_1k=" + cpuPer1k + " e2e_msgs_per_sec=" + e2e) + "\n");
    }
}
