package dev.relay.bench.report;

import java.io.IOException;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

import org.HdrHistogram.Histogram;

import dev.relay.bench.e2e.BenchSink;
import dev.relay.bench.e2e.BenchTls;
import dev.relay.bench.e2e.LoadGenerator;
import dev.relay.bench.e2e.SizeMix;
import dev.relay.testing.TestDnsServer;

/**
 * The load half of {@code ops/bench}: against a relay already running as its own process (ops/relay, routes to
 * {@code --sink-port}), starts a {@link BenchSink} in this JVM on that port, then runs {@link LoadGenerator} in
 * phases: a closed-loop warm-up (not reported), closed loop at C connections for N messages, then open loop at
 * fractions of the closed-loop rate for {@code --open-seconds} each (latency from the intended send time). Per phase
 * it writes {@code OUT/PHASE/} {@code accept.hgrm}, {@code txn.hgrm}, {@code e2e.hgrm} (sink: X-Bench-Sent to
 * arrival, this phase's messages only) and {@code phase.txt}: the generator's {@code RESULT} line, the sink's
 * {@code SINK} line and a {@code PROCESS} line with the relay's CPU seconds (utime+stime from /proc/PID/stat) per
 * 1000 messages and per GB (10^9 body bytes accepted: the mix's sizes, generated headers not counted), its peak VmRSS
 * (sampled every 0.5 s) and the size mix ({@code mix}, as given, and {@code mean_size} in bytes), and
 * {@code e2e_msgs_per_sec}: messages over the time from the phase's start until the sink had the last of them. Linux
 * only for the process figures.
 *
 * <p>TLS ({@code ops/bench --tls}): {@code --tls} makes the generator say STARTTLS, {@code --sink-tls-cert}/{@code -key}
 * make the sink offer it; {@code --handshake-phases H} adds, after the closed loop, {@code conn-full} and
 * {@code conn-resumed}: H messages at one per connection (a handshake each), without and with session resumption.
 * The SINK line then counts the server's outbound handshakes of the phase ({@code out_tls_full},
 * {@code out_tls_resumed}). {@code --tree} measures the process and all its descendants (utime + stime + cutime +
 * cstime, so children that exited during a phase count too; RSS summed): for Postfix's master and its daemons.
 *
 * <p>Many destinations ({@code --domains N --dns-port P}): each message goes to one of N domains in turn
 * ({@link LoadGenerator#domainName}), and a {@link TestDnsServer} on 127.0.0.1:P answers their MX lookups (every
 * domain its own MX host, each at 127.0.0.1; the relay is configured with {@code delivery.dns.servers} and
 * {@code delivery.smtp_port} pointing at it and the sink). phase.txt then has a {@code DNS} line: the domains, the
 * DNS queries the relay sent during the phase and since the DNS server started (the warm-up's included: answers
 * are cached for their TTL of 300 s, so the lookups happen in the first phase), and the most outstanding at once.
 *
 * <pre>
 * E2eRun --relay-port P --sink-port S --relay-pid PID --out DIR [-c 50] [-n 20000] [--warmup 5000]
 *        [-s 1024|S:W,...|realistic] [--open-seconds 10] [--fractions 0.25,0.5,0.75|none] [--clk-tck 100]
 *        [--tls] [--sink-tls-cert CHAIN.pem --sink-tls-key KEY.pem] [--handshake-phases H] [--tree]
 *        [--domains N --dns-port P]
 * E2eRun --free-ports K        (prints K free loopback ports, for the script)
 * E2eRun --mix-mean SPEC       (prints the mean body size of a size mix in bytes, for the script)
 * </pre>
 */
public final class E2eRun
{
    private E2eRun()
    {
    }

    public static void main(final String[] args) throws Exception
    {
        int relayPort = 0;
        int sinkPort = 0;
        long pid = 0;
        Path out = Path.of("bench-report");
        int connections = 50;
        long messages = 20_000;
        long warmup = 5_000;
        String size = "1024";
        double openSeconds = 10;
        String fractions = "0.25,0.5,0.75";
        int clkTck = 100;
        boolean tls = false;
        Path sinkCert = null;
        Path sinkKey = null;
        long handshakePhases = 0;
        boolean tree = false;
        int domains = 0;
        int dnsPort = 0;
        for (int i = 0; i < args.length; i++)
        {
            switch (args[i])
            {
                case "--free-ports" ->
                {
                    freePorts(Integer.parseInt(args[++i]));
                    return;
                }
                case "--mix-mean" ->
                {
                    final String spec = args[++i];
                    try
                    {
                        System.out.println(Math.round(SizeMix.parse(spec).meanSize()));
                        return;
                    }
                    catch (final IllegalArgumentException ex)
                    {
                        System.err.println("E2eRun: not a size, size mix or preset: " + spec + " (" + ex.getMessage()
                            + ")");
                        System.exit(2);
                    }
                }
                case "--relay-port" -> relayPort = Integer.parseInt(args[++i]);
                case "--sink-port" -> sinkPort = Integer.parseInt(args[++i]);
                case "--relay-pid" -> pid = Long.parseLong(args[++i]);
                case "--out" -> out = Path.of(args[++i]);
                case "-c" -> connections = Integer.parseInt(args[++i]);
                case "-n" -> messages = Long.parseLong(args[++i]);
                case "--warmup" -> warmup = Long.parseLong(args[++i]);
                case "-s" -> size = args[++i];
                case "--open-seconds" -> openSeconds = Double.parseDouble(args[++i]);
                case "--fractions" -> fractions = args[++i];
                case "--clk-tck" -> clkTck = Integer.parseInt(args[++i]);
                case "--tls" -> tls = true;
                case "--sink-tls-cert" -> sinkCert = Path.of(args[++i]);
                case "--sink-tls-key" -> sinkKey = Path.of(args[++i]);
                case "--handshake-phases" -> handshakePhases = Long.parseLong(args[++i]);
                case "--tree" -> tree = true;
                case "--domains" -> domains = Integer.parseInt(args[++i]);
                case "--dns-port" -> dnsPort = Integer.parseInt(args[++i]);
                default ->
                {
                    System.err.println("E2eRun: unknown option " + args[i]);
                    System.exit(2);
                }
            }
        }
        if (relayPort == 0 || sinkPort == 0 || pid == 0 || (domains > 0 && dnsPort == 0))
        {
            System.err.println("E2eRun: need --relay-port, --sink-port and --relay-pid (and --dns-port with --domains)");
            System.exit(2);
        }
        final PrintStream log = System.err;
        if ((sinkCert == null) != (sinkKey == null))
        {
            System.err.println("E2eRun: --sink-tls-cert and --sink-tls-key go together");
            System.exit(2);
        }
        final ProcessProbe probe = new ProcessProbe(pid, clkTck, tree);
        probe.start();
        boolean ok = true;
        try (BenchSink sink = BenchSink.start("127.0.0.1", sinkPort, true, 0, 0,
            sinkCert == null ? null : BenchTls.server(sinkCert, sinkKey));
            TestDnsServer dns = domains > 0 ? destinations(dnsPort, domains, log) : null)
        {
            final Phase phases = new Phase(relayPort, sink, dns, domains, probe, out, connections, size, log, tls);
            if (warmup > 0)
            {
                ok &= phases.run("warmup", warmup, 0, false) != null;
            }
            final LoadGenerator.Result closed = phases.run("closed", messages, 0, true);
            ok &= closed != null && closed.errors() == 0;
            if (handshakePhases > 0)
            {
                final LoadGenerator.Result full = phases.run("conn-full", handshakePhases, 0, true, 1, false);
                ok &= full != null && full.errors() == 0;
                final LoadGenerator.Result resumed = phases.run("conn-resumed", handshakePhases, 0, true, 1, true);
                ok &= resumed != null && resumed.errors() == 0;
            }
            final double rate = closed == null ? 0 : closed.messagesPerSecond();
            for (final String f : "none".equals(fractions) ? new String[0] : fractions.split(","))
            {
                final double fraction = Double.parseDouble(f.strip());
                final double r = Math.max(1, Math.round(rate * fraction));
                final long n = Math.max(1, Math.round(r * openSeconds));
                final LoadGenerator.Result open = phases.run(String.format(Locale.ROOT, "open-%02.0f", 100 * fraction),
                    n, r, true);
                ok &= open != null && open.errors() == 0;
            }
            if (sink.mismatches() > 0)
            {
                log.println("e2e: the sink saw " + sink.mismatches() + " corrupted messages");
                ok = false;
            }
        }
        finally
        {
            probe.stop();
        }
        System.exit(ok ? 0 : 1);
    }

    /** One load phase after another, all through the same relay and sink. */
    private static final class Phase
    {
        private final int relayPort;
        private final BenchSink sink;
        private final TestDnsServer dns;
        private final int domains;
        private final ProcessProbe probe;
        private final Path out;
        private final int connections;
        private final String size;
        private final SizeMix mix;
        private final PrintStream log;
        private final boolean tls;
        private long sent;

        Phase(final int relayPort, final BenchSink sink, final TestDnsServer dns, final int domains,
            final ProcessProbe probe, final Path out, final int connections, final String size, final PrintStream log,
            final boolean tls)
        {
            this.tls = tls;
            this.relayPort = relayPort;
            this.sink = sink;
            this.dns = dns;
            this.domains = domains;
            this.probe = probe;
            this.out = out;
            this.connections = connections;
            this.size = size;
            this.mix = SizeMix.parse(size);
            this.log = log;
        }

        LoadGenerator.Result run(final String name, final long messages, final double rate, final boolean record)
            throws IOException, InterruptedException
        {
            return run(name, messages, rate, record, 0, false);
        }

        /** {@code perConnection}: messages per connection, 0 = all on kept connections. */
        LoadGenerator.Result run(final String name, final long messages, final double rate, final boolean record,
            final int perConnection, final boolean resume) throws IOException, InterruptedException
        {
            log.printf(Locale.ROOT, "e2e: %s: %d messages, %s%s%s%n", name, messages,
                rate > 0 ? String.format(Locale.ROOT, "open loop %.0f msg/s", rate) : "closed loop, c=" + connections,
                perConnection > 0 ? ", " + perConnection + " per connection" : "",
                tls ? resume ? ", STARTTLS resuming sessions" : ", STARTTLS" : "");
            final Histogram e2eBefore = sink.e2e();
            final long outHandshakesBefore = sink.tlsHandshakes();
            final long outFullBefore = sink.tlsFullHandshakes();
            final long startNs = System.nanoTime();
            final long cpuBefore = probe.cpuTicks();
            final int dnsBefore = dns == null ? 0 : dns.totalQueries();
            probe.resetPeak();
            final Path dir = out.resolve(name);
            final LoadGenerator.Options o = new LoadGenerator.Options();
            o.port = relayPort;
            o.connections = connections;
            o.messages = messages;
            o.sizes = size;
            o.rate = rate;
            o.domains = domains;
            o.progress = false;
            o.maxSeconds = 600;
            o.out = record ? dir : null;
            o.perConnection = perConnection;
            o.tls = tls;
            o.tlsResume = tls && resume;
            final LoadGenerator.Result r = LoadGenerator.run(o);
            sent += r.messages;
            // Delivery trails acceptance: wait for the sink to have every accepted message, or give up after 60 s
            // plus 1 s per 10 MB accepted (a queue of big messages takes longer to drain).
            final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60 + r.bodyBytes / 10_000_000);
            while (sink.messages() < sent && System.nanoTime() - deadline < 0)
            {
                Thread.sleep(20);
            }
            final long cpuTicks = probe.cpuTicks() - cpuBefore;
            final double e2eSeconds = (System.nanoTime() - startNs) / 1e9;
            final long outHandshakes = sink.tlsHandshakes() - outHandshakesBefore;
            final long outFull = sink.tlsFullHandshakes() - outFullBefore;
            final long peakRssKb = probe.peakRssKb();
            final Histogram e2e = sink.e2e();
            e2e.subtract(e2eBefore);
            final String rLine = r.resultLine();
            log.println("e2e: " + name + ": " + rLine);
            if (!record)
            {
                return r;
            }
            final double cpuSeconds = cpuTicks / (double)probe.clkTck();
            final String process = String.format(Locale.ROOT,
                "PROCESS phase=%s rate=%.1f cpu_s=%.3f cpu_s_per_1k=%.4f cpu_s_per_gb=%.4f peak_rss_kb=%d delivered=%d "
                    + "undelivered=%d mix=%s mean_size=%.0f e2e_seconds=%.3f e2e_msgs_per_sec=%.1f per_connection=%d",
                name, rate, cpuSeconds, r.messages > 0 ? cpuSeconds * 1000 / r.messages : 0,
                r.bodyBytes > 0 ? cpuSeconds * 1e9 / r.bodyBytes : 0, peakRssKb, e2e.getTotalCount(),
                Math.max(0, sent - sink.messages()), size.replace(" ", ""), mix.meanSize(), e2eSeconds,
                e2eSeconds > 0 ? e2e.getTotalCount() / e2eSeconds : 0, perConnection);
            final String sinkLine = String.format(Locale.ROOT,
                "SINK e2e_count=%d e2e_p50_ms=%.3f e2e_p90_ms=%.3f e2e_p99_ms=%.3f e2e_p999_ms=%.3f e2e_max_ms=%.3f "
                    + "mismatches=%d out_tls_full=%d out_tls_resumed=%d",
                e2e.getTotalCount(), e2e.getValueAtPercentile(50) / 1e6, e2e.getValueAtPercentile(90) / 1e6,
                e2e.getValueAtPercentile(99) / 1e6, e2e.getValueAtPercentile(99.9) / 1e6, e2e.getMaxValue() / 1e6,
                sink.mismatches(), outFull, outHandshakes - outFull);
            Files.createDirectories(dir);
            try (PrintStream ps = new PrintStream(dir.resolve("e2e.hgrm").toFile()))
            {
                e2e.outputPercentileDistribution(ps, 1e6);
            }
            final List<String> lines = new ArrayList<>(List.of(rLine, sinkLine, process));
            if (dns != null)
            {
                final String dnsLine = String.format(Locale.ROOT,
                    "DNS domains=%d dns_queries=%d dns_queries_total=%d dns_peak_in_flight=%d", domains,
                    dns.totalQueries() - dnsBefore, dns.totalQueries(), dns.peakOutstanding());
                lines.add(dnsLine);
                log.println("e2e: " + name + ": " + dnsLine);
            }
            Files.writeString(dir.resolve("phase.txt"), String.join(System.lineSeparator(), lines)
                + System.lineSeparator());
            log.println("e2e: " + name + ": " + sinkLine);
            log.println("e2e: " + name + ": " + process);
            return r;
        }
    }

    private static TestDnsServer destinations(final int port, final int domains, final PrintStream log)
        throws IOException
    {
        final TestDnsServer dns = new TestDnsServer(port);
        for (int i = 0; i < domains; i++)
        {
            final String domain = LoadGenerator.domainName(i);
            dns.addMx(domain, 10, "mx." + domain).addA("mx." + domain, "127.0.0.1");
        }
        log.printf(Locale.ROOT, "e2e: DNS on 127.0.0.1:%d answers MX for %d domains%n", port, domains);
        return dns;
    }

    private static void freePorts(final int count) throws IOException
    {
        final List<ServerSocket> sockets = new ArrayList<>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                final ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
                sockets.add(s);
                System.out.print((i == 0 ? "" : " ") + s.getLocalPort());
            }
            System.out.println();
        }
        finally
        {
            for (final ServerSocket s : sockets)
            {
                s.close();
            }
        }
    }
}
