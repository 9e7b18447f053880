package dev.relay.bench.guard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The guard's verdicts on synthetic ratios, its baseline file, and one real quick JMH run against a slowed probe. */
class LatencyGuardTest
{
    private static final Map<String, Double> BASELINE = Map.of("parser.batch", 0.0118, "session.1KiB", 0.121);

    @Test
    void twiceAsSlowFailsAtTwentyFivePercent()
    {
        final LatencyGuard.Verdict v =
            LatencyGuard.compare(BASELINE, Map.of("parser.batch", 0.0236, "session.1KiB", 0.121), 0.25);
        assertFalse(v.pass());
        assertEquals(List.of("parser.batch"), v.regressed());
    }

    @Test
    void tenPercentSlowerPassesAtTwentyFivePercent()
    {
        final LatencyGuard.Verdict v =
            LatencyGuard.compare(BASELINE, Map.of("parser.batch", 0.0118 * 1.10, "session.1KiB", 0.121 * 1.10), 0.25);
        assertTrue(v.pass(), LatencyGuard.table(v, null));
    }

    @Test
    void fasterPasses()
    {
        assertTrue(LatencyGuard.compare(BASELINE, Map.of("parser.batch", 0.005, "session.1KiB", 0.06), 0.25).pass());
    }

    @Test
    void twiceAsSlowFailsAtToleranceOne()
    {
        assertFalse(LatencyGuard.compare(BASELINE, Map.of("parser.batch", 0.0118 * 2, "session.1KiB", 0.121), 1.0)
            .pass());
        assertTrue(LatencyGuard.compare(BASELINE, Map.of("parser.batch", 0.0118 * 1.9, "session.1KiB", 0.121), 1.0)
            .pass());
    }

    @Test
    void aBenchmarkThatDidNotRunFailsAndANewOneDoesNot()
    {
        final LatencyGuard.Verdict v =
            LatencyGuard.compare(BASELINE, Map.of("parser.batch", 0.0118, "new.one", 1.0), 0.25);
        assertEquals(List.of("session.1KiB"), v.regressed());
        assertTrue(LatencyGuard.table(v, null).contains("new (not in baseline)"));
    }

    @Test
    void baselineFileRoundTrips(@TempDir final Path dir) throws Exception
    {
        final LatencyGuard.Measured calibration =
            new LatencyGuard.Measured("calibration", "x.Calibration.checksum", 15000, 10, "ns/op", 15000);
        final List<LatencyGuard.Measured[]> measured = List.of(
            new LatencyGuard.Measured[] {calibration,
                new LatencyGuard.Measured("parser.batch", "x.Parser.parseBatch", 180, 2, "ns/op", 180)},
            new LatencyGuard.Measured[] {calibration,
                new LatencyGuard.Measured("scanner.64KiB", "x.Scanner.scan", 2.5, 0.1, "ops/ns", 0.4)});
        final Path file = dir.resolve("baseline.json");
        Files.writeString(file, Baseline.json(measured, LatencyGuard.Settings.QUICK, "a \"note\"\n"));
        final Map<String, Double> read = Baseline.read(file);
        assertEquals(0.012, read.get("parser.batch"), 1e-7);
        assertEquals(0.4 / 15000, read.get("scanner.64KiB"), 1e-5 * 0.4 / 15000);
        assertTrue(Files.readString(file).contains("\"nproc\""));
    }

    /**
     * Real JMH (quick settings, forked): a baseline of the probe doing 1x the reference work, then the probe doing 3x;
     * the guard must exit 1 even at tolerance 1.0, and exit 0 against its own baseline workload.
     */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void failsOnADeliberatelySlowedBenchmark(@TempDir final Path dir) throws Exception
    {
        final String bench = GuardProbeBenchmark.class.getName();
        final LatencyGuard.Guarded reference = new LatencyGuard.Guarded("calibration", bench + ".reference", Map.of());
        final Path baseline = dir.resolve("baseline.json");
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);

        final int update = LatencyGuard.run(new String[] {"--quick", "--forks", "1", "--update", "--baseline", baseline.toString()},
            reference, List.of(new LatencyGuard.Guarded("probe", bench + ".probe", Map.of("work", "1"))), out);
        assertEquals(0, update, bytes.toString(StandardCharsets.UTF_8));

        final int slowed = LatencyGuard.run(new String[] {"--quick", "--forks", "1", "--tolerance", "1.0", "--baseline",
            baseline.toString()}, reference,
            List.of(new LatencyGuard.Guarded("probe", bench + ".probe", Map.of("work", "6"))), out);
        final String printed = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(1, slowed, printed);
        assertTrue(printed.contains("guard: FAIL, regressed beyond 100%: probe"), printed);
    }
}
