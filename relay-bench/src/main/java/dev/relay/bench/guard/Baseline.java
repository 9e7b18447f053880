package dev.relay.bench.guard;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import dev.relay.bench.guard.LatencyGuard.Measured;
import dev.relay.bench.guard.LatencyGuard.Settings;

/**
 * {@code relay-bench/baseline.json}, the {@link LatencyGuard}'s committed reference: read as ratios by benchmark
 * name, written (with {@code --update}) with the raw scores, the calibration, the JMH settings, the commit and the
 * machine they came from, so a later reader can judge whether a comparison is fair.
 * <p>
 * Stateless; any thread; allocates freely (a command, not a measured path).
 */
public final class Baseline
{
    private Baseline()
    {
    }

    @SuppressWarnings("unchecked")
    /** The committed ratios by benchmark name. */
    public static Map<String, Double> read(final Path file) throws IOException
    {
        final Map<String, Object> root = (Map<String, Object>)Json.parse(Files.readString(file));
        final Map<String, Double> ratios = new LinkedHashMap<>();
        for (final Object o : (List<Object>)root.get("benchmarks"))
        {
            final Map<String, Object> b = (Map<String, Object>)o;
            ratios.put((String)b.get("name"), (Double)b.get("ratio"));
        }
        return ratios;
    }

    /** A new baseline of {@code measured}: ratios, raw scores, the calibration, and where they were taken. */
    public static String json(final List<Measured[]> measured, final Settings s, final String note)
    {
        final Map<String, Object> root = new LinkedHashMap<>();
        root.put("note", note);
        root.put("date", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        root.put("commit", MachineInfo.gitCommit());
        root.put("machine", MachineInfo.machine());
        root.put("jdk", System.getProperty("java.vm.vendor") + " " + System.getProperty("java.vm.name") + " "
            + System.getProperty("java.runtime.version"));
        root.put("jmh", s.describe());
        root.put("ratio", "best iteration's cost per op (ns; 1/score for throughput modes) / the best "
            + "calibration cost per op of the run; score and error are JMH's mean and 99.9% error");
        final Measured c = measured.get(0)[0];
        final Map<String, Object> calibration = new LinkedHashMap<>();
        calibration.put("benchmark", c.benchmark());
        calibration.put("note", "run right before each benchmark (its cost is in each entry); ratios divide by the "
            + "best of them");
        calibration.put("best_ns_per_op", LatencyGuard.calibrationNs(measured));
        root.put("calibration", calibration);
        final Map<String, Double> ratios = LatencyGuard.ratios(measured);
        final List<Object> list = new ArrayList<>();
        for (final Measured[] pair : measured)
        {
            final Measured m = pair[1];
            final Map<String, Object> b = new LinkedHashMap<>();
            b.put("name", m.name());
            b.put("benchmark", m.benchmark());
            b.put("score", m.score());
            b.put("error", m.error());
            b.put("unit", m.unit());
            b.put("best_ns_per_op", m.nsPerOp());
            b.put("calibration_score", pair[0].score());
            b.put("calibration_best_ns_per_op", pair[0].nsPerOp());
            b.put("ratio", ratios.get(m.name()));
            list.add(b);
        }
        root.put("benchmarks", list);
        return Json.write(root);
    }

}
