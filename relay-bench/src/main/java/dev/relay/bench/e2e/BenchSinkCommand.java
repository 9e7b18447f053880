package dev.relay.bench.e2e;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

import org.HdrHistogram.Histogram;

/**
 * {@link BenchSink} as a process ({@code ops/bench sink}, {@code ops/soak}): parses the options, runs the sink until
 * {@code --expect} messages arrived or {@code --max-seconds} passed, prints progress each second unless
 * {@code --quiet}, then writes {@code e2e.hgrm} and {@code result.txt} to {@code --out} and prints the RESULT line.
 * Exits 1 when fewer than expected arrived or a body did not match, 2 on bad options.
 * <p>
 * The main thread only; allocates freely (not a measured path).
 */
final class BenchSinkCommand
{
    private BenchSinkCommand()
    {
    }

    static final String USAGE = String.join(System.lineSeparator(),
        "usage: BenchSink [--host 127.0.0.1] [--port 2526] [--expect N] [--skip W] [--verify]",
        "         [--max-seconds 300] [--out DIR] [--quiet] [--tls-cert CHAIN.pem --tls-key KEY.pem (offer STARTTLS)]");

    static void main(final String[] args) throws Exception
    {
        String host = "127.0.0.1";
        int port = 2526;
        long expect = 0;
        long skip = 0;
        boolean verify = false;
        boolean quiet = false;
        long maxSeconds = 300;
        Path out = Path.of("bench-report", "sink");
        Path tlsCert = null;
        Path tlsKey = null;
        try
        {
            for (int i = 0; i < args.length; i++)
            {
                switch (args[i])
                {
                    case "--verify" -> verify = true;
                    case "--quiet" -> quiet = true;
                    case "--host" -> host = args[++i];
                    case "--port", "-p" -> port = Integer.parseInt(args[++i]);
                    case "--expect", "-n" -> expect = Long.parseLong(args[++i]);
                    case "--skip" -> skip = Long.parseLong(args[++i]);
                    case "--max-seconds" -> maxSeconds = Long.parseLong(args[++i]);
                    case "--out", "-o" -> out = Path.of(args[++i]);
                    case "--tls-cert" -> tlsCert = Path.of(args[++i]);
                    case "--tls-key" -> tlsKey = Path.of(args[++i]);
                    default -> throw new IllegalArgumentException("unknown option " + args[i]);
                }
            }
        }
        catch (final RuntimeException ex)
        {
            System.err.println(ex.getMessage() + System.lineSeparator() + USAGE);
            System.exit(2);
        }
        if ((tlsCert == null) != (tlsKey == null))
        {
            System.err.println("--tls-cert and --tls-key go together" + System.lineSeparator() + USAGE);
            System.exit(2);
        }
        final PrintStream log = System.err;
        final BenchSink sink = BenchSink.start(host, port, verify, expect, skip,
            tlsCert == null ? null : BenchTls.server(tlsCert, tlsKey));
        log.printf("bench-sink listening on %s:%d%s%s%n", host, sink.port(), verify ? " (verifying)" : "",
            tlsCert == null ? "" : " (STARTTLS)");
        final long startNs = System.nanoTime();
        final long deadlineNs = startNs + TimeUnit.SECONDS.toNanos(maxSeconds);
        long firstNs = 0;
        long lastCount = 0;
        long lastNs = startNs;
        while (!sink.expectationMet() && System.nanoTime() - deadlineNs < 0)
        {
            Thread.sleep(Math.min(1000, Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadlineNs - System.nanoTime()))));
            final long now = System.nanoTime();
            final long count = sink.messages();
            if (firstNs == 0 && count > 0)
            {
                firstNs = now;
            }
            if (!quiet && count > 0)
            {
                log.printf(Locale.ROOT, "sink %5.1fs messages=%d rate=%.0f/s mismatches=%d connections=%d%n",
                    (now - startNs) / 1e9, count, (count - lastCount) * 1e9 / (now - lastNs), sink.mismatches(),
                    sink.connections());
            }
            lastCount = count;
            lastNs = now;
        }
        sink.close();
        final Histogram e2e = sink.e2e();
        Files.createDirectories(out);
        LoadGenerator.writeDistribution(out.resolve("e2e.hgrm"), e2e);
        final String result = String.format(Locale.ROOT,
            "RESULT messages=%d bytes=%d mismatches=%d connections=%d e2e_count=%d e2e_p50_ms=%.3f e2e_p90_ms=%.3f "
                + "e2e_p99_ms=%.3f e2e_p999_ms=%.3f e2e_max_ms=%.3f tls_handshakes=%d tls_full=%d",
            sink.messages(), sink.bytes(), sink.mismatches(), sink.connections(), e2e.getTotalCount(),
            e2e.getValueAtPercentile(50) / 1e6, e2e.getValueAtPercentile(90) / 1e6, e2e.getValueAtPercentile(99) / 1e6,
            e2e.getValueAtPercentile(99.9) / 1e6, e2e.getMaxValue() / 1e6, sink.tlsHandshakes(), sink.tlsFullHandshakes());
        Files.writeString(out.resolve("result.txt"), result + System.lineSeparator());
        System.out.println(result);
        System.exit(expect > 0 && sink.messages() < expect || sink.mismatches() > 0 ? 1 : 0);
    }
}
