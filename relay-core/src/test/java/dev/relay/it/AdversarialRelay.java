package dev.relay.it;

import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpooledMessage;
import dev.relay.testing.Await;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The relay under attack: a child JVM ({@code RelayMain}) on 127.0.0.1, optionally under a {@code ulimit -n}, whose
 * resources are measured from outside: open fds ({@code /proc/PID/fd}), threads and RSS ({@code /proc/PID/status}),
 * CPU ticks ({@code /proc/PID/stat}) and heap after a full GC ({@code jcmd PID GC.run}, {@code GC.heap_info}).
 * <p>
 * Delivery goes to a closed port with a one-hour retry, so whatever is accepted stays in the spool to be counted.
 */
final class AdversarialRelay implements AutoCloseable
{
    private static final Pattern HEAP_USED = Pattern.compile("(?m)^\\s*(?:def new|tenured) generation\\s+total \\d+K, used (\\d+)K");
    private static final long CLK_TCK = 100;

    /** Messages {@link #warmBaseline} sends (and leaves in the spool: delivery goes to a closed port). */
    static final int WARM_MESSAGES = 4;

    private final ChildRelay child;
    private final Path spoolDir;

    private AdversarialRelay(final ChildRelay child, final Path spoolDir)
    {
        this.child = child;
        this.spoolDir = spoolDir;
    }

    /**
     * Test defaults for an attacked relay ({@link InProcessRelay#config}: mail stays in the spool, delivery to a
     * closed port with a one-hour retry); {@code overrides} as key, value pairs win.
     */
    static Map<String, String> config(final Path spoolDir, final String... overrides)
    {
        return InProcessRelay.config(spoolDir, overrides);
    }

    /** Starts the relay with {@code config}, under {@code ulimit -n fdLimit} when it is positive, and waits for it. */
    static AdversarialRelay start(final Path workDir, final Map<String, String> config, final int fdLimit)
        throws IOException
    {
        // heap after GC must mean live objects: the serial collector's full GC otherwise leaves up to 5% of the old
        // generation (~8 MiB here) as uncompacted dead space, filled with int[] and counted as used
        final ChildRelay child = ChildRelay.start(workDir, config, List.of("-XX:MarkSweepDeadRatio=0"), fdLimit);
        return new AdversarialRelay(child, Path.of(config.get("queue.dir")));
    }

    int port()
    {
        return child.port();
    }

    long pid()
    {
        return child.pid();
    }

    boolean isAlive()
    {
        return child.isAlive();
    }

    Path spoolDir()
    {
        return spoolDir;
    }

    // ---------------------------------------------------------------------------------------------------------
    // measured from outside

    /** Open file descriptors of the relay process. */
    int fds()
    {
        try (Stream<Path> entries = Files.list(Path.of("/proc", Long.toString(pid()), "fd")))
        {
            return (int)entries.count();
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    int threads()
    {
        return (int)statusKb("Threads:");
    }

    /** Resident set size in bytes. */
    long rssBytes()
    {
        return statusKb("VmRSS:") * 1024;
    }

    private long statusKb(final String field)
    {
        try
        {
            for (final String line : Files.readAllLines(Path.of("/proc", Long.toString(pid()), "status")))
            {
                if (line.startsWith(field))
                {
                    return Long.parseLong(line.substring(field.length()).trim().split("\\s+")[0]);
                }
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
        throw new IllegalStateException(field + " not in /proc/" + pid() + "/status");
    }

    /** CPU time used so far (user + system), in nanoseconds. */
    long cpuNanos()
    {
        try
        {
            final String stat = Files.readString(Path.of("/proc", Long.toString(pid()), "stat"));
            // fields after "(comm)": state is field 3; utime 14, stime 15
            final String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            final long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
            return ticks * (1_000_000_000L / CLK_TCK);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    /** Heap in use after a full GC, in bytes (jcmd GC.run, then GC.heap_info of the serial collector). */
    long heapAfterGcBytes()
    {
        jcmd("GC.run");
        final String info = jcmd("GC.heap_info");
        final Matcher m = HEAP_USED.matcher(info);
        long usedKb = 0;
        int found = 0;
        while (m.find())
        {
            usedKb += Long.parseLong(m.group(1));
            found++;
        }
        if (found != 2)
        {
            fail("unexpected GC.heap_info output:\n" + info);
        }
        return usedKb * 1024;
    }

    private String jcmd(final String what)
    {
        final Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        try
        {
            final Process p = new ProcessBuilder(jcmd.toString(), Long.toString(pid()), what)
                .redirectErrorStream(true).start();
            final String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0)
            {
                fail("jcmd " + what + " failed: " + text);
            }
            return text;
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(ex);
        }
    }

    /** One snapshot of the relay's resources. */
    record Resources(int fds, int threads, long rssBytes, long heapBytes)
    {
        @Override
        public String toString()
        {
            return "fds " + fds + ", threads " + threads + ", rss " + (rssBytes >> 10) + " KiB, heap after GC " +
                (heapBytes >> 10) + " KiB";
        }
    }

    /** fds, threads, RSS and heap after GC (the jcmd attach is done first, so its listener thread is counted). */
    Resources resources()
    {
        final long heap = heapAfterGcBytes();
        return new Resources(fds(), threads(), rssBytes(), heap);
    }

    /**
     * A baseline taken once the relay is warm: a transaction on each inbound loop done (each loop's spool lane
     * open, the syncer, delivery attempts to the closed port and their deferral) and the jcmd attach listener
     * started. Connections go to the loops in turn, so four connections reach both of the two loops.
     */
    Resources warmBaseline() throws IOException
    {
        for (int i = 0; i < WARM_MESSAGES; i++)
        {
            sendOneMessage(Duration.ofSeconds(5));
        }
        return resources();
    }

    // ---------------------------------------------------------------------------------------------------------
    // after every scenario

    /** A normal client sends one message; the whole transaction must take less than {@code within}. */
    String sendOneMessage(final Duration within) throws IOException
    {
        final long start = System.nanoTime();
        final String id;
        try (SmtpTestClient client = SmtpTestClient.connectEhlo(port()))
        {
            id = client.sendMessage("normal@client.test", List.of("r@ours.test"),
                "Subject: normal\r\n\r\nnormal client\r\n".getBytes(StandardCharsets.US_ASCII));
            client.command("QUIT").expect(221);
        }
        final Duration took = Duration.ofNanos(System.nanoTime() - start);
        assertTrue(took.compareTo(within) < 0, () -> "normal transaction took " + took + "\n" + tail());
        return id;
    }

    /**
     * The relay is back to normal: a normal client completes a transaction within 5 s, fds and threads return to
     * the baseline (polled with a deadline), heap after GC near it. Returns what was measured.
     */
    Resources assertRecovered(final Resources baseline, final String scenario) throws IOException
    {
        return assertRecovered(baseline, scenario, 8L * 1024 * 1024);
    }

    /** As {@link #assertRecovered(Resources, String)}, heap after GC allowed {@code heapAllowance} over the baseline. */
    Resources assertRecovered(final Resources baseline, final String scenario, final long heapAllowance)
        throws IOException
    {
        return assertRecovered(baseline, scenario, heapAllowance, new String[0]);
    }

    /**
     * As {@link #assertRecovered(Resources, String, long)}, log lines naming an exception allowed when they contain
     * one of {@code expectedExceptions} (what the scenario itself causes, e.g. EMFILE's "Too many open files").
     */
    Resources assertRecovered(final Resources baseline, final String scenario, final long heapAllowance,
        final String... expectedExceptions) throws IOException
    {
        assertTrue(isAlive(), () -> scenario + ": the relay died\n" + output());
        sendOneMessage(Duration.ofSeconds(5));
        final long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (fds() > baseline.fds() + 4 || threads() > baseline.threads() + 2)
        {
            if (System.nanoTime() - deadline > 0)
            {
                fail(scenario + ": resources not back to the baseline " + baseline + ": fds " + fds() +
                    ", threads " + threads() + "\n" + fdListing());
            }
            Await.pause();
        }
        final List<String> exceptions = unexpectedExceptions(expectedExceptions);
        assertTrue(exceptions.isEmpty(), () -> scenario + ": exceptions in the relay's log:\n" +
            String.join("\n", exceptions.subList(0, Math.min(40, exceptions.size()))));
        final Resources after = resources();
        System.out.println("[adversarial] " + scenario + ": before " + baseline + "; after " + after);
        assertTrue(after.heapBytes() < baseline.heapBytes() + heapAllowance,
            () -> scenario + ": heap after GC " + after.heapBytes() + " vs baseline " + baseline.heapBytes() + "\n" +
                jcmd("GC.class_histogram").lines().limit(25).collect(Collectors.joining("\n")));
        return after;
    }

    /** The first {@code lines} lines of the live-object class histogram (after a full GC), for a report. */
    String histogram(final int lines)
    {
        return jcmd("GC.class_histogram").lines().limit(lines).collect(Collectors.joining("\n"));
    }

    /** Live instances of {@code className} (after a full GC: GC.class_histogram collects first). */
    long liveInstances(final String className)
    {
        for (final String line : jcmd("GC.class_histogram").split("\n"))
        {
            final String[] f = line.trim().split("\\s+");
            if (f.length >= 4 && f[3].equals(className))
            {
                return Long.parseLong(f[1]);
            }
        }
        return 0;
    }

    String fdListing()
    {
        try (Stream<Path> entries = Files.list(Path.of("/proc", Long.toString(pid()), "fd")))
        {
            return entries.map(p ->
            {
                try
                {
                    return Files.readSymbolicLink(p).toString();
                }
                catch (final IOException ex)
                {
                    return "?";
                }
            }).collect(Collectors.groupingBy(s -> s.replaceAll("\\d+", "N"), Collectors.counting())).toString();
        }
        catch (final IOException ex)
        {
            return ex.toString();
        }
    }

    /** Lines of the relay's output that mention an exception or a stack frame, minus the expected ones. */
    List<String> unexpectedExceptions(final String... expected)
    {
        final List<String> found = new ArrayList<>();
        for (final String line : (stdout() + "\n" + stderr()).split("\n"))
        {
            if (line.contains("Exception") || line.contains("Error:") && line.contains("java.") ||
                line.startsWith("\tat ") || line.contains("\tat "))
            {
                boolean ok = false;
                for (final String e : expected)
                {
                    ok |= line.contains(e);
                }
                if (!ok)
                {
                    found.add(line);
                }
            }
        }
        return found;
    }

    // ---------------------------------------------------------------------------------------------------------

    /** SIGTERM and wait for the exit (SIGKILL after 20 s). */
    void stop() throws InterruptedException
    {
        child.stop();
    }

    /** One complete message in the spool. */
    record Stored(String queueId, String from, String body)
    {
    }

    /** The complete messages in the spool (bodies as ISO-8859-1 text); call after {@link #stop()}. */
    List<Stored> spooled() throws IOException
    {
        final List<Stored> out = new ArrayList<>();
        try (SpoolReader reader = SpoolReader.open(spoolDir))
        {
            final List<SpooledMessage> messages = new ArrayList<>();
            while (reader.poll(messages::add, 1024) > 0)
            {
                // to the end
            }
            for (final SpooledMessage m : messages)
            {
                final StringBuilder body = new StringBuilder();
                final byte[] chunk = new byte[64 * 1024];
                reader.readBody(m, (bytes, offset, length) ->
                {
                    for (int done = 0; done < length; )
                    {
                        final int n = Math.min(chunk.length, length - done);
                        bytes.read(offset + done, chunk, 0, n);
                        if (body.length() < 1 << 20)
                        {
                            body.append(new String(chunk, 0, n, StandardCharsets.ISO_8859_1));
                        }
                        done += n;
                    }
                });
                out.add(new Stored(m.queueIdText(), new String(m.reversePath(), StandardCharsets.UTF_8), body.toString()));
            }
        }
        return out;
    }

    String stdout()
    {
        return child.stdout();
    }

    String stderr()
    {
        return child.stderr();
    }

    String output()
    {
        return child.output();
    }

    private String tail()
    {
        final String all = output();
        return all.length() <= 4000 ? all : all.substring(all.length() - 4000);
    }

    @Override
    public void close()
    {
        child.close();
    }
}
