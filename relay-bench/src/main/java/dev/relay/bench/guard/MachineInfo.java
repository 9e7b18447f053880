package dev.relay.bench.guard;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Where a measurement was taken, for the records the benchmarks leave (the guard's baseline, the reports): the
 * machine ({@code /proc} on Linux, "unknown" elsewhere) and the commit.
 * <p>
 * Stateless; any thread; runs {@code git} once per {@link #gitCommit()} call.
 */
public final class MachineInfo
{
    private MachineInfo()
    {
    }

    /** CPU count and model, memory and OS, as a JSON-ready map. */
    public static Map<String, Object> machine()
    {
        final Map<String, Object> m = new LinkedHashMap<>();
        m.put("nproc", Runtime.getRuntime().availableProcessors());
        m.put("cpu", procField("/proc/cpuinfo", "model name"));
        m.put("memory", procField("/proc/meminfo", "MemTotal"));
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
            + System.getProperty("os.arch"));
        return m;
    }

    private static String procField(final String file, final String key)
    {
        try
        {
            for (final String line : Files.readAllLines(Path.of(file)))
            {
                if (line.startsWith(key))
                {
                    return line.substring(line.indexOf(':') + 1).strip();
                }
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            // not Linux: leave it unknown
        }
        return "unknown";
    }

    /** The commit measured: {@code -Dbench.commit}, else {@code git rev-parse HEAD}, else "unknown". */
    public static String gitCommit()
    {
        final String given = System.getProperty("bench.commit");
        if (given != null && !given.isBlank())
        {
            return given;
        }
        try
        {
            final Process p = new ProcessBuilder("git", "rev-parse", "HEAD").redirectErrorStream(true).start();
            final String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).strip();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0 ? out : "unknown";
        }
        catch (final IOException ex)
        {
            return "unknown";
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            return "unknown";
        }
    }

}
