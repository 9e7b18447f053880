/**
 * End-to-end SMTP load tools after Postfix {@code smtp-source} / {@code smtp-sink}, self-contained (JDK +
 * HdrHistogram, no relay-core classes).
 *
 * <pre>
 * CP=relay-bench/target/relay-bench.jar      # or classes + HdrHistogram jar
 * java -cp $CP dev.relay.bench.e2e.BenchSink --port 2526 --verify --expect 55000 --skip 5000 --out bench-report/sink
 * java -cp $CP dev.relay.bench.e2e.LoadGenerator --port 2525 -c 50 -n 50000 -s 1024 --warmup 5000 \
 *      --per-connection all --pipelining on --rate 0 --out bench-report/load --histogram-log
 * </pre>
 *
 * {@link dev.relay.bench.e2e.LoadGenerator} prints a summary and one {@code RESULT key=value ...} line and writes
 * {@code accept.hgrm}, {@code txn.hgrm}, {@code result.txt} (and {@code accept.hlog} with {@code --histogram-log})
 * to {@code --out}; {@link dev.relay.bench.e2e.BenchSink} prints {@code RESULT messages=... e2e_p99_ms=...} and writes
 * {@code e2e.hgrm}. Messages carry {@code X-Bench-Seq}, {@code X-Bench-Sent} (epoch µs) and {@code X-Bench-Sum}
 * (CRC32C/length of the un-stuffed body), built by {@link dev.relay.bench.e2e.BenchMessages}. With
 * {@code --tls} / {@code --tls-resume} the generator speaks STARTTLS, and with {@code --tls-cert}/{@code --tls-key}
 * (PEM) the sink offers it; both count handshakes, full and resumed ({@link dev.relay.bench.e2e.BenchTls}).
 */
package dev.relay.bench.e2e;
