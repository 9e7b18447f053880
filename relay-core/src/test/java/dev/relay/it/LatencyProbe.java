package dev.relay.it;

import org.HdrHistogram.Histogram;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.LockSupport;

/**
 * Fresh mail at a modest steady rate, to measure its end-to-end latency while something else happens (the backlog
 * benchmark's drain, README "Backlogs"). One phase at a time: {@link #start} starts a sender thread that sends one
 * small message every 1/rate s over one kept SMTP connection (EHLO once, then MAIL, RCPT, DATA, each answered
 * before the next) to {@code recipient}, and notes when it wrote each MAIL FROM and when the 250 to the dot came
 * back; {@link #stop} ends the phase. The probe's own sink calls {@link #onArrival} from its connection threads;
 * a message's latency is its arrival at the sink minus the time its MAIL FROM was written, both
 * {@link System#nanoTime()} of this one JVM.
 * <p>
 * The sender keeps to its schedule (slot i at start + i / rate) unless a reply keeps it waiting; then it sends the
 * next at once and counts the message as late (more than one interval behind its slot), so a stall of the relay's
 * accepting shows in that count rather than disappearing from the histogram (coordinated omission).
 */
final class LatencyProbe
{
    private static final long HIGHEST_US = 3_600_000_000L;

    private final int port;
    private final String recipient;
    private final long intervalNs;
    private final Map<String, long[]> arrivals = new ConcurrentHashMap<>();   // id -> {first arrival ns, copies}
    private Phase phase;

    LatencyProbe(final int port, final String recipient, final int ratePerSecond)
    {
        this.port = port;
        this.recipient = recipient;
        this.intervalNs = 1_000_000_000L / ratePerSecond;
    }

    /** Called by the sink's connection threads for every message it takes, the probe's and others alike. */
    void onArrival(final String messageId, final long nowNs)
    {
        if (messageId != null && messageId.startsWith("probe-"))
        {
            arrivals.compute(messageId, (id, seen) -> seen == null ? new long[] {nowNs, 1} :
                new long[] {seen[0], seen[1] + 1});
        }
    }

    /** Starts sending the messages of phase {@code name} (Message-IDs {@code probe-name-i}). */
    void start(final String name)
    {
        phase = new Phase(name);
        phase.sender.start();
    }

    /** Stops sending (the message under way finishes), waits for the sender; returns how many it sent. */
    int stop() throws InterruptedException
    {
        phase.stopping = true;
        phase.sender.join();
        if (phase.failure != null)
        {
            throw new IllegalStateException("the probe's sender failed after " + phase.sent + " messages",
                phase.failure);
        }
        return phase.sent;
    }

    /** True once every message the last phase sent has arrived at the sink. */
    boolean allArrived()
    {
        for (int i = 0; i < phase.sent; i++)
        {
            if (!arrivals.containsKey(phase.id(i)))
            {
                return false;
            }
        }
        return true;
    }

    /** One line for the last phase: end-to-end and 250 latency (p50, p99, max), late starts, lost, duplicated. */
    String report(final String what)
    {
        final Histogram endToEnd = endToEnd();
        final Histogram accepted = new Histogram(HIGHEST_US, 3);
        long lost = 0;
        long duplicated = 0;
        for (int i = 0; i < phase.sent; i++)
        {
            accepted.recordValue(Math.min(HIGHEST_US, (phase.acceptedNs[i] - phase.startedNs[i]) / 1_000));
            final long[] seen = arrivals.get(phase.id(i));
            lost += seen == null ? 1 : 0;
            duplicated += seen == null ? 0 : seen[1] - 1;
        }
        return String.format("probe %s: %d messages at %d/s over one kept connection; end to end (MAIL FROM written"
                + " -> at the sink) p50 %.1f ms, p99 %.1f ms, max %.1f ms; 250 to the dot after p50 %.1f ms, p99 %.1f"
                + " ms, max %.1f ms; started late %d; lost %d, duplicated %d", what, phase.sent,
            1_000_000_000L / intervalNs, ms(endToEnd, 50), ms(endToEnd, 99), endToEnd.getMaxValue() / 1000.0,
            ms(accepted, 50), ms(accepted, 99), accepted.getMaxValue() / 1000.0, phase.late, lost, duplicated);
    }

    /** The end-to-end p99 of the last phase, in ms. */
    double p99Ms()
    {
        return ms(endToEnd(), 99);
    }

    /** The last phase's end-to-end latencies (µs) of the messages that arrived. */
    private Histogram endToEnd()
    {
        final Histogram histogram = new Histogram(HIGHEST_US, 3);
        for (int i = 0; i < phase.sent; i++)
        {
            final long[] seen = arrivals.get(phase.id(i));
            if (seen != null)
            {
                histogram.recordValue(Math.min(HIGHEST_US, Math.max(0, seen[0] - phase.startedNs[i]) / 1_000));
            }
        }
        return histogram;
    }

    private static double ms(final Histogram histogram, final double percentile)
    {
        return histogram.getValueAtPercentile(percentile) / 1000.0;
    }

    /** One phase's sender thread and what it noted; read by the caller only after {@link #stop} joined it. */
    private final class Phase
    {
        private final String name;
        private final Thread sender;
        private volatile boolean stopping;
        private long[] startedNs = new long[1024];
        private long[] acceptedNs = new long[1024];
        private int sent;
        private int late;
        private Throwable failure;

        Phase(final String name)
        {
            this.name = name;
            this.sender = new Thread(this::send, "latency-probe-" + name);
        }

        String id(final int i)
        {
            return "probe-" + name + "-" + i;
        }

        private void send()
        {
            try (SmtpTestClient client = SmtpTestClient.connectEhlo(port))
            {
                final long firstNs = System.nanoTime();
                while (!stopping)
                {
                    final long slotNs = firstNs + sent * intervalNs;
                    long nowNs = System.nanoTime();
                    while (nowNs < slotNs && !stopping)
                    {
                        LockSupport.parkNanos(slotNs - nowNs);
                        nowNs = System.nanoTime();
                    }
                    if (stopping)
                    {
                        break;
                    }
                    if (nowNs - slotNs > intervalNs)
                    {
                        late++;
                    }
                    if (sent == startedNs.length)
                    {
                        startedNs = Arrays.copyOf(startedNs, sent * 2);
                        acceptedNs = Arrays.copyOf(acceptedNs, sent * 2);
                    }
                    startedNs[sent] = System.nanoTime();
                    client.sendMessage("probe@client.test", List.of(recipient), ("Message-ID: <" + id(sent) +
                        "@client.test>\r\nSubject: probe\r\n\r\nfresh mail, timed\r\n")
                        .getBytes(StandardCharsets.US_ASCII));
                    acceptedNs[sent] = System.nanoTime();
                    sent++;
                }
                client.command("QUIT");
            }
            catch (final Exception | AssertionError ex)
            {
                failure = ex;
            }
        }
    }
}
