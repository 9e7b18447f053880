package dev.relay.bench.e2e;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

import dev.relay.bench.e2e.LoadGenerator.Options;
import dev.relay.bench.e2e.LoadGenerator.Result;

/**
 * {@link LoadGenerator} as a process ({@code ops/bench load}, {@code ops/soak}): parses the options into
 * {@link Options}, runs, prints the summary and the RESULT line. Exits 0 when all N were accepted, 1 on errors or
 * unfinished messages, 2 on bad usage.
 * <p>
 * The main thread only; allocates freely (not a measured path).
 */
final class LoadGeneratorCommand
{
    private LoadGeneratorCommand()
    {
    }

    static void print(final PrintStream out, final Options o, final Result r)
    {
        out.printf(Locale.ROOT, "target %s:%d  c=%d n=%d sizes=%s per-connection=%s pipelining=%s bdat=%s %s%n",
            o.host, o.port, o.connections, o.messages, o.sizes, o.perConnection == 0 ? "all" : o.perConnection,
            o.pipelining ? "on" : "off", o.bdat ? "on" : "off",
            o.rate > 0 ? "open loop " + o.rate + " msg/s" : "closed loop");
        if (r.tlsHandshakes > 0)
        {
            out.printf(Locale.ROOT, "tls        %d handshakes: %d full (%.1f/s), %d resumed (%.1f/s)%n", r.tlsHandshakes,
                r.tlsFullHandshakes, r.perSecond(r.tlsFullHandshakes), r.tlsResumedHandshakes(),
                r.perSecond(r.tlsResumedHandshakes()));
        }
        out.printf(Locale.ROOT, "messages   %d accepted, %d errors (%d message, %d connection), %d unfinished%n",
            r.messages, r.errors(), r.msgErrors, r.connErrors, r.unfinished);
        out.printf(Locale.ROOT, "elapsed    %.3f s, %.1f msg/s, %.2f MB/s of body (mean %.0f bytes)%n", r.seconds,
            r.messagesPerSecond(), r.megabytesPerSecond(), r.messages > 0 ? r.bodyBytes / (double)r.messages : 0.0);
        out.printf(Locale.ROOT, "accept ms  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (end of data -> 250)%n",
            Result.ms(r.accept, 50), Result.ms(r.accept, 90), Result.ms(r.accept, 99), Result.ms(r.accept, 99.9),
            r.accept.getMaxValue() / 1e6);
        out.printf(Locale.ROOT, "txn ms     p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%s -> 250)%n",
            Result.ms(r.txn, 50), Result.ms(r.txn, 90), Result.ms(r.txn, 99), Result.ms(r.txn, 99.9),
            r.txn.getMaxValue() / 1e6, o.rate > 0 ? "intended send time" : "MAIL written");
        r.errorReasons.forEach((k, v) -> out.printf("error      %dx %s%n", v, k));
        out.println(r.resultLine());
    }

    static Options parse(final String[] args)
    {
        final Options o = new Options();
        for (int i = 0; i < args.length; i++)
        {
            final String a = args[i];
            switch (a)
            {
                case "--quiet" -> o.progress = false;
                case "--histogram-log" -> o.histogramLog = true;
                case "--tls" -> o.tls = true;
                case "--tls-resume" ->
                {
                    o.tls = true;
                    o.tlsResume = true;
                }
                case "-h", "--help" -> throw new IllegalArgumentException("help");
                default ->
                {
                    if (i + 1 >= args.length)
                    {
                        throw new IllegalArgumentException("missing value for " + a);
                    }
                    final String v = args[++i];
                    switch (a)
                    {
                        case "--host" -> o.host = v;
                        case "--port", "-p" -> o.port = Integer.parseInt(v);
                        case "-c", "--connections" -> o.connections = Integer.parseInt(v);
                        case "-n", "--messages" -> o.messages = Long.parseLong(v);
                        case "-s", "--size" -> o.sizes = v;
                        case "--per-connection", "--mps" -> o.perConnection = "all".equals(v) ? 0 : Integer.parseInt(v);
                        case "--pipelining" -> o.pipelining = onOff(v);
                        case "--bdat" -> o.bdat = onOff(v);
                        case "--rate", "-r" -> o.rate = Double.parseDouble(v);
                        case "--warmup", "-w" -> o.warmup = Long.parseLong(v);
                        case "--threads", "-t" -> o.threads = Integer.parseInt(v);
                        case "--from" -> o.from = v;
                        case "--to" -> o.to = v.split(",");
                        case "--domains" -> o.domains = Integer.parseInt(v);
                        case "--out", "-o" -> o.out = Path.of(v);
                        case "--max-seconds" -> o.maxSeconds = Long.parseLong(v);
                        case "--timeout" -> o.timeoutMs = TimeUnit.SECONDS.toMillis(Long.parseLong(v));
                        case "--max-conn-errors" -> o.maxConnErrors = Long.parseLong(v);
                        default -> throw new IllegalArgumentException("unknown option " + a);
                    }
                }
            }
        }
        if (o.connections < 1 || o.messages < 0 || o.perConnection < 0 || o.rate < 0 || o.to.length == 0 ||
            o.domains < 0)
        {
            throw new IllegalArgumentException(
                "need -c >= 1, -n >= 0, --per-connection all|K>=1, --rate >= 0, --to, --domains >= 0");
        }
        SizeMix.parse(o.sizes);
        return o;
    }

    private static boolean onOff(final String v)
    {
        if (!"on".equals(v) && !"off".equals(v))
        {
            throw new IllegalArgumentException("expected on|off, got " + v);
        }
        return "on".equals(v);
    }

    static final String USAGE = String.join(System.lineSeparator(),
        "usage: LoadGenerator [--host 127.0.0.1] [--port 2525] [-c 50] [-n 20000] [-s 1024|S:W,S:W...|realistic]",
        "         [--per-connection all|K] [--pipelining on|off] [--bdat on|off] [--rate R (0 = closed loop)]",
        "         [--warmup W] [--threads 1|2] [--from a@bench.test] [--to b@bench.test[,c@...] | --domains N]",
        "         [--out DIR] [--histogram-log] [--max-seconds 300] [--timeout 30] [--max-conn-errors 100] [--quiet]",
        "         [--tls (STARTTLS, any certificate) | --tls-resume (STARTTLS, offering the last session)]",
        "exit status: 0 all N accepted, 1 errors or unfinished messages, 2 bad usage");

    static void main(final String[] args) throws Exception
    {
        final Options options;
        try
        {
            options = parse(args);
        }
        catch (final IllegalArgumentException ex)
        {
            System.err.println("help".equals(ex.getMessage()) ? USAGE : ex.getMessage() + System.lineSeparator() + USAGE);
            System.exit(2);
            return;
        }
        final Result result = LoadGenerator.run(options);
        print(System.out, options, result);
        System.exit(result.errors() == 0 && result.unfinished == 0 ? 0 : 1);
    }
}
