package dev.relay.bench.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Samples the measured process (the relay, or with {@code tree} a process and all its descendants: Postfix's master
 * and its daemons) from {@code /proc} for {@link E2eRun}: CPU ticks (utime + stime, and cutime + cstime for a tree)
 * on demand, VmRSS every 0.5 s on a daemon thread, keeping the peak. Linux only.
 * <p>
 * Built and read by the run's thread; its sampler thread writes the peak (volatile). Allocates per sample.
 */
final class ProcessProbe
{
    private final long pid;
    private final int clkTck;
    private final boolean tree;
    private final Thread thread;
    private volatile boolean stop;
    private volatile long peakKb;
    private volatile long overallPeakKb;

    ProcessProbe(final long pid, final int clkTck, final boolean tree)
    {
        this.pid = pid;
        this.clkTck = clkTck;
        this.tree = tree;
        thread = new Thread(this::sample, "rss-sampler");
        thread.setDaemon(true);
    }

    int clkTck()
    {
        return clkTck;
    }

    void start()
    {
        thread.start();
    }

    void stop() throws InterruptedException
    {
        stop = true;
        thread.join(2_000);
    }

    void resetPeak()
    {
        peakKb = rssKb();
    }

    long peakRssKb()
    {
        return Math.max(peakKb, rssKb());
    }

    private void sample()
    {
        while (!stop)
        {
            final long kb = rssKb();
            if (kb > peakKb)
            {
                peakKb = kb;
            }
            if (kb > overallPeakKb)
            {
                overallPeakKb = kb;
            }
            try
            {
                Thread.sleep(500);
            }
            catch (final InterruptedException ex)
            {
                return;
            }
        }
    }

    /** VmRSS of the process, or with {@code tree} the sum over it and its descendants (shared pages counted in each). */
    long rssKb()
    {
        if (!tree)
        {
            return rssKb(pid);
        }
        long kb = 0;
        for (final long p : treePids())
        {
            kb += rssKb(p);
        }
        return kb;
    }

    private static long rssKb(final long pid)
    {
        try
        {
            for (final String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")))
            {
                if (line.startsWith("VmRSS:"))
                {
                    return Long.parseLong(line.substring(6).replace("kB", "").strip());
                }
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            // process gone or not Linux
        }
        return 0;
    }

    /**
     * utime + stime of the process (all threads), in clock ticks; fields 14 and 15 of /proc/PID/stat. With
     * {@code tree}: utime + stime + cutime + cstime (fields 16, 17: children that exited and were waited for) of
     * the process and every descendant, so a daemon that exits within a phase is counted in its parent.
     */
    long cpuTicks()
    {
        if (!tree)
        {
            final String[] f = stat(pid);
            return f == null ? 0 : Long.parseLong(f[11]) + Long.parseLong(f[12]);     // field 3 is f[0]
        }
        long ticks = 0;
        for (final long p : treePids())
        {
            final String[] f = stat(p);
            if (f != null)
            {
                ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]) + Long.parseLong(f[13]) + Long.parseLong(f[14]);
            }
        }
        return ticks;
    }

    /** /proc/PID/stat from field 3 on (f[0] is the state), or null when the process is gone. */
    private static String[] stat(final long pid)
    {
        try
        {
            final String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        }
        catch (final IOException | RuntimeException ex)
        {
            return null;
        }
    }

    /** The process and its descendants now (parent links, field 4, read once over /proc). */
    private List<Long> treePids()
    {
        final java.util.Map<Long, List<Long>> children = new java.util.HashMap<>();
        try (java.util.stream.Stream<Path> procs = Files.list(Path.of("/proc")))
        {
            procs.forEach(p ->
            {
                final String name = p.getFileName().toString();
                if (!name.isEmpty() && Character.isDigit(name.charAt(0)))
                {
                    final String[] f = stat(Long.parseLong(name));
                    if (f != null)
                    {
                        children.computeIfAbsent(Long.parseLong(f[1]), k -> new ArrayList<>()).add(Long.parseLong(name));
                    }
                }
            });
        }
        catch (final IOException ex)
        {
            return List.of(pid);
        }
        final List<Long> pids = new ArrayList<>();
        pids.add(pid);
        for (int i = 0; i < pids.size(); i++)
        {
            pids.addAll(children.getOrDefault(pids.get(i), List.of()));
        }
        return pids;
    }
}

/** A DNS server on 127.0.0.1:{@code port} with an MX host for each of {@code domains} domains, all at 127.0.0.1. */
