package dev.relay.bench.e2e;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogWriter;

/**
 * SMTP load source after Postfix {@code smtp-source}: C concurrent NIO client connections on one or two
 * {@link ClientLoop} threads send N messages of a size (or size mix), K per connection or all on a kept connection
 * ({@code smtp-source -d}), with or without PIPELINING (RFC 2920: MAIL, RCPTs and DATA in one write; the body after
 * 354) and optionally BDAT (RFC 3030). Closed loop (each connection sends its next message on its 250) or open loop at
 * a fixed total rate R: message i is due at {@code start + i/R}; its transaction latency counts from that intended
 * time, waiting for a free connection included, so a stalled server cannot hide its stall (no coordinated omission).
 *
 * <p>Per message: headers {@code X-Bench-Seq}, {@code X-Bench-Sent} (intended send time, epoch µs) and
 * {@code X-Bench-Sum} for {@link BenchSink}. With {@code --domains N} each message has one recipient instead of
 * {@code --to}'s, at the next of N domains in turn ({@link #domainName}), for a relay that finds each by MX lookup. Latencies in HdrHistogram (ns, 3 digits): accept = end of data written →
 * final 250 ({@code accept.hgrm}); transaction = intended start → final 250 ({@code txn.hgrm}). Bounded by N, by
 * {@code --max-seconds} and by {@code --max-conn-errors}; connect and reply timeouts. {@link #run(Options)} is the
 * in-process entry (tests); {@link #main} the CLI. The control thread (caller) prints progress and collects results.
 *
 * <p>With {@code --tls} every connection says STARTTLS after EHLO, completes the handshake ({@link TlsTransport},
 * any certificate accepted) and says EHLO again (RFC 3207 §4.2) before its first message; {@code --tls-resume} also
 * offers the session the connection slot's previous connection got (see {@link BenchTls}). The result counts handshakes, full and resumed ({@link BenchTls}).
 * The plaintext path is unchanged: one branch per write and read.
 *
 * <p>Open-loop start times are as precise as {@code Selector.select(ms)}: a due message may start up to ~1 ms late,
 * and that delay is in the transaction latency (it is the generator's, not the server's); accept latency is not
 * affected. Connections are opened ahead of need, so connect and EHLO are not in either latency, also with K=1.
 */
public final class LoadGenerator
{
    private static final long HIGHEST_NS = TimeUnit.HOURS.toNanos(1);

    private LoadGenerator()
    {
    }

    /**
     * The {@code index}th of {@code --domains N} recipient domains: message {@code seq} goes to
     * {@code b@domainName(seq % N)}, one domain after another, so N domains each get every Nth message.
     */
    public static String domainName(final int index)
    {
        return "d" + index + ".bench.test";
    }

    /** Settings; public fields with CLI names in comments. Control path only. */
    public static final class Options
    {
        public String host = "127.0.0.1";            // --host
        public int port = 2525;                      // --port
        public int connections = 50;                 // -c
        public long messages = 20_000;               // -n
        public String sizes = "1024";                // -s  (S, S:W,S:W,... or a SizeMix preset name)
        public int perConnection = 0;                // --per-connection all|K  (0 = all)
        public boolean pipelining = true;            // --pipelining on|off
        public boolean bdat = false;                 // --bdat on|off (needs CHUNKING from the server)
        public double rate = 0;                      // --rate R msg/s (0 = closed loop)
        public long warmup = 0;                      // --warmup W messages, not measured
        public int threads = 1;                      // --threads 1|2
        public String from = "a@bench.test";         // --from
        public String[] to = {"b@bench.test"};       // --to x[,y...]
        public int domains = 0;                      // --domains N: one recipient per message, b@d{seq % N}.bench.test
        public Path out;                             // --out DIR (accept.hgrm, txn.hgrm, result.txt)
        public boolean histogramLog = false;         // --histogram-log (OUT/accept.hlog, 1 s intervals)
        public long maxSeconds = 300;                // --max-seconds
        public long timeoutMs = 30_000;              // --timeout SECONDS (connect and each reply)
        public long maxConnErrors = 100;             // --max-conn-errors
        public boolean tls = false;                  // --tls: STARTTLS (RFC 3207) on every connection, any certificate
        public boolean tlsResume = false;            // --tls-resume: offer the slot's last session (implies --tls)
        public boolean progress = true;              // --quiet turns it off
        public PrintStream log = System.err;

        public Options set(final java.util.function.Consumer<Options> change)
        {
            change.accept(this);
            return this;
        }
    }

    /** What one run measured. Immutable once returned. */
    public static final class Result
    {
        public final long messages;
        /** Body bytes of the accepted messages: each one's size from the mix, the generated headers not counted. */
        public final long bodyBytes;
        public final long msgErrors;
        public final long connErrors;
        public final long unfinished;
        public final double seconds;
        public final Histogram accept;
        public final Histogram txn;
        public final Map<String, Long> errorReasons;
        /** TLS handshakes completed in this phase, and how many of them were full (the server sent its certificate). */
        public final long tlsHandshakes;
        public final long tlsFullHandshakes;

        Result(final long messages, final long bodyBytes, final long msgErrors, final long connErrors,
            final long unfinished, final double seconds, final Histogram accept, final Histogram txn,
            final Map<String, Long> errorReasons, final long tlsHandshakes, final long tlsFullHandshakes)
        {
            this.tlsHandshakes = tlsHandshakes;
            this.tlsFullHandshakes = tlsFullHandshakes;
            this.messages = messages;
            this.bodyBytes = bodyBytes;
            this.msgErrors = msgErrors;
            this.connErrors = connErrors;
            this.unfinished = unfinished;
            this.seconds = seconds;
            this.accept = accept;
            this.txn = txn;
            this.errorReasons = errorReasons;
        }

        public long errors()
        {
            return msgErrors + connErrors;
        }

        public double messagesPerSecond()
        {
            return seconds > 0 ? messages / seconds : 0;
        }

        /** Body megabytes (10^6 bytes) accepted per second. */
        public double megabytesPerSecond()
        {
            return seconds > 0 ? bodyBytes / seconds / 1e6 : 0;
        }

        /** Handshakes not full: the server accepted the session the client offered. */
        public long tlsResumedHandshakes()
        {
            return tlsHandshakes - tlsFullHandshakes;
        }

        public String resultLine()
        {
            final String tls = tlsHandshakes == 0 ? "" : String.format(Locale.ROOT,
                " tls_handshakes=%d tls_full=%d tls_resumed=%d tls_full_per_sec=%.1f tls_resumed_per_sec=%.1f",
                tlsHandshakes, tlsFullHandshakes, tlsResumedHandshakes(), perSecond(tlsFullHandshakes),
                perSecond(tlsResumedHandshakes()));
            return plainResultLine() + tls;
        }

        double perSecond(final long count)
        {
            return seconds > 0 ? count / seconds : 0;
        }

        private String plainResultLine()
        {
            return String.format(Locale.ROOT,
                "RESULT messages=%d errors=%d msg_errors=%d conn_errors=%d unfinished=%d seconds=%.3f msgs_per_sec=%.1f "
                    + "body_bytes=%d mb_per_sec=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
                    + "txn_p50_ms=%.3f txn_p99_ms=%.3f txn_p999_ms=%.3f txn_max_ms=%.3f",
                messages, errors(), msgErrors, connErrors, unfinished, seconds, messagesPerSecond(), bodyBytes,
                megabytesPerSecond(), ms(accept, 50), ms(accept, 90), ms(accept, 99), ms(accept, 99.9),
                accept.getMaxValue() / 1e6, ms(txn, 50), ms(txn, 99), ms(txn, 99.9), txn.getMaxValue() / 1e6);
        }

        static double ms(final Histogram h, final double percentile)
        {
            return h.getValueAtPercentile(percentile) / 1e6;
        }
    }

    /** Runs the warm-up (if any) and then the measured phase; writes OUT files when {@code options.out} is set. */
    public static Result run(final Options options) throws IOException, InterruptedException
    {
        final SizeMix mix = SizeMix.parse(options.sizes);
        final BenchMessages messages = new BenchMessages(mix, options.from, options.to,
            ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE);
        final BenchTls tls = options.tls || options.tlsResume ? BenchTls.client(options.tlsResume) : null;
        if (options.warmup > 0)
        {
            final Result w = phase(options, messages, options.warmup, options.messages, "warmup", tls);
            if (options.progress)
            {
                options.log.printf(Locale.ROOT, "warmup: %d messages, %d errors, %.1f msg/s%n",
                    w.messages, w.errors(), w.messagesPerSecond());
            }
        }
        final Result result = phase(options, messages, options.messages, 0, "measure", tls);
        if (options.out != null)
        {
            writeOutputs(options.out, result);
        }
        return result;
    }

    private static Result phase(final Options options, final BenchMessages messages, final long n,
        final long seqOffset, final String name, final BenchTls tls) throws IOException, InterruptedException
    {
        final long fullBefore = tls == null ? 0 : tls.fullHandshakes();
        final int threads = Math.max(1, Math.min(options.threads, options.connections));
        final long startNs = System.nanoTime();
        final RunControl control = new RunControl(n, seqOffset, options.rate, startNs);
        final ClientLoop[] loops = new ClientLoop[threads];
        final Thread[] workers = new Thread[threads];
        int slots = 0;
        for (int t = 0; t < threads; t++)
        {
            final int share = options.connections / threads + (t < options.connections % threads ? 1 : 0);
            loops[t] = new ClientLoop(options, control, messages, share, HIGHEST_NS, tls, slots);
            slots += share;
            workers[t] = new Thread(loops[t], "load-" + name + "-" + t);
            workers[t].setDaemon(true);
        }
        final Histogram accept = new Histogram(HIGHEST_NS, 3);
        final Histogram txn = new Histogram(HIGHEST_NS, 3);
        final boolean logIntervals = options.histogramLog && options.out != null && "measure".equals(name);
        HistogramLogWriter logWriter = null;
        if (logIntervals)
        {
            Files.createDirectories(options.out);
            logWriter = new HistogramLogWriter(options.out.resolve("accept.hlog").toFile());
            logWriter.outputLogFormatVersion();
            logWriter.outputStartTime(epochMs(startNs));
            logWriter.setBaseTime(epochMs(startNs));
            logWriter.outputLegend();
        }
        for (final Thread w : workers)
        {
            w.start();
        }
        final long deadlineNs = startNs + TimeUnit.SECONDS.toNanos(options.maxSeconds);
        long lastDone = 0;
        long lastTickNs = startNs;
        final Histogram[] acceptIntervals = new Histogram[threads];
        final Histogram[] txnIntervals = new Histogram[threads];
        final Histogram acceptInterval = new Histogram(HIGHEST_NS, 3);
        boolean finished = false;
        while (!finished)
        {
            final long waitMs = Math.max(1, TimeUnit.NANOSECONDS.toMillis(Math.min(
                lastTickNs + TimeUnit.SECONDS.toNanos(1), deadlineNs) - System.nanoTime()));
            finished = join(workers, waitMs);
            final long now = System.nanoTime();
            long done = 0;
            long errors = 0;
            long connErrors = 0;
            for (final ClientLoop l : loops)
            {
                done += l.accepted();
                errors += l.msgErrors();
                connErrors += l.connErrors();
            }
            if (!finished && (now - deadlineNs >= 0 || connErrors >= options.maxConnErrors))
            {
                options.log.printf("%s: stopping: %s%n", name,
                    now - deadlineNs >= 0 ? "--max-seconds reached" : connErrors + " connection errors");
                stopAll(control, loops, workers);
                finished = true;
            }
            if (now - lastTickNs >= TimeUnit.SECONDS.toNanos(1) || finished)
            {
                acceptInterval.reset();
                for (int t = 0; t < threads; t++)
                {
                    acceptIntervals[t] = loops[t].acceptRecorder.getIntervalHistogram(acceptIntervals[t]);
                    txnIntervals[t] = loops[t].txnRecorder.getIntervalHistogram(txnIntervals[t]);
                    acceptInterval.add(acceptIntervals[t]);
                    txn.add(txnIntervals[t]);
                }
                accept.add(acceptInterval);
                if (logWriter != null)
                {
                    acceptInterval.setStartTimeStamp(epochMs(lastTickNs));
                    acceptInterval.setEndTimeStamp(epochMs(now));
                    logWriter.outputIntervalHistogram(acceptInterval);
                }
                if (options.progress && !finished)
                {
                    options.log.printf(Locale.ROOT, "%s %5.1fs done=%d/%d rate=%.0f/s errors=%d conn_errors=%d%n", name,
                        (now - startNs) / 1e9, done, n, (done - lastDone) * 1e9 / (now - lastTickNs), errors, connErrors);
                }
                lastDone = done;
                lastTickNs = now;
            }
        }
        if (logWriter != null)
        {
            logWriter.close();
        }
        long done = 0;
        long bodyBytes = 0;
        long msgErrors = 0;
        long connErrors = 0;
        long lastNs = startNs;
        long handshakes = 0;
        for (final ClientLoop l : loops)
        {
            handshakes += l.tlsHandshakes();
            done += l.accepted();
            bodyBytes += l.acceptedBodyBytes();
            msgErrors += l.msgErrors();
            connErrors += l.connErrors();
            lastNs = Math.max(lastNs, l.lastCompletionNs());
        }
        final Map<String, Long> reasons = new java.util.TreeMap<>();
        control.errors.forEach((k, v) -> reasons.put(k, v.sum()));
        return new Result(done, bodyBytes, msgErrors, connErrors, n - done - msgErrors, (lastNs - startNs) / 1e9,
            accept, txn, reasons, handshakes, tls == null ? 0 : Math.min(handshakes, tls.fullHandshakes() - fullBefore));
    }

    private static long epochMs(final long nanoTime)
    {
        return BenchMessages.epochMicros(nanoTime) / 1_000;
    }

    private static boolean join(final Thread[] workers, final long waitMs) throws InterruptedException
    {
        final long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMs);
        for (final Thread w : workers)
        {
            final long left = until - System.nanoTime();
            if (left > 0)
            {
                TimeUnit.NANOSECONDS.timedJoin(w, left);
            }
            if (w.isAlive())
            {
                return false;
            }
        }
        return true;
    }

    private static void stopAll(final RunControl control, final ClientLoop[] loops, final Thread[] workers)
        throws InterruptedException
    {
        control.stop();
        for (final ClientLoop l : loops)
        {
            l.wakeup();
        }
        for (final Thread w : workers)
        {
            w.join(5_000);
        }
    }

    private static void writeOutputs(final Path dir, final Result result) throws IOException
    {
        Files.createDirectories(dir);
        writeDistribution(dir.resolve("accept.hgrm"), result.accept);
        writeDistribution(dir.resolve("txn.hgrm"), result.txn);
        Files.writeString(dir.resolve("result.txt"), result.resultLine() + System.lineSeparator());
    }

    static void writeDistribution(final Path file, final Histogram h) throws FileNotFoundException
    {
        try (PrintStream ps = new PrintStream(file.toFile()))
        {
            h.outputPercentileDistribution(ps, 1e6);
        }
    }

    /** The command line ({@link LoadGeneratorCommand}); ops/bench and ops/soak start the generator by this name. */
    public static void main(final String[] args) throws Exception
    {
        LoadGeneratorCommand.main(args);
    }
}
