package dev.relay.metrics;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;

/**
 * The relay's counters and latency recorders, written by loop threads and read by the metrics endpoint.
 * Counters are {@link LongAdder}s (contention-free for many writers); latencies go to HdrHistogram
 * {@link Recorder}s (wait-free writers), values clamped to one hour, three significant digits, with the exact sum
 * of the clamped values kept beside each (a histogram only approximates its sum).
 */
public final class RelayMetrics
{
    private static final long HIGHEST_TRACKABLE_NS = 3_600_000_000_000L;

    private final LongAdder messagesReceived = new LongAdder();
    private final LongAdder messagesRejected = new LongAdder();
    private final LongAdder connectionsClosed = new LongAdder();
    private final LongAdder connectionsClosedTls = new LongAdder();
    private final LongAdder messagesDelivered = new LongAdder();
    private final LongAdder messagesDeferred = new LongAdder();
    private final LongAdder messagesBounced = new LongAdder();
    private final LongAdder connectionsOut = new LongAdder();
    private final LongAdder connectionsOutTls = new LongAdder();
    private final LongAdder tlsOutFailures = new LongAdder();
    private final LongAdder tlsHandshakes = new LongAdder();
    private final LongAdder tlsFailures = new LongAdder();
    private final LongAdder authSuccesses = new LongAdder();
    private final LongAdder authFailures = new LongAdder();
    // counters another component keeps (read racily when the endpoint is scraped; each has one writer thread)
    private volatile LongSupplier spoolDamagedRecords = () -> 0;
    private volatile LongSupplier spoolDamagedMessages = () -> 0;
    private volatile LongSupplier spoolAllocationFailures = () -> 0;
    private volatile LongSupplier journalSkippedRecords = () -> 0;
    private volatile LongSupplier proxyRefused = () -> 0;
    // gauges of the queue, read from delivery at scrape time
    private volatile LongSupplier activeMessages = () -> 0;
    private volatile LongSupplier deferredMessages = () -> 0;
    private volatile LongSupplier heldMessages = () -> 0;
    private volatile LongSupplier oldestMessageAgeSeconds = () -> 0;
    // gauges of the spool's room, read from the spool and delivery at scrape time
    private volatile LongSupplier queuedBytes = () -> 0;
    private volatile LongSupplier maxQueuedBytes = () -> 0;
    private volatile LongSupplier spoolFreeBytes = () -> 0;
    private volatile LongSupplier spoolMinFreeBytes = () -> 0;
    // delivery's destinations and MX lookups, read from the delivery loops and the resolver at scrape time
    private volatile LongSupplier deliveryHops = () -> 0;
    private volatile LongSupplier deliveryHopsReclaimed = () -> 0;
    private volatile LongSupplier dnsLookups = () -> 0;
    private volatile LongSupplier dnsCacheHits = () -> 0;
    private volatile LongSupplier dnsQueries = () -> 0;
    private volatile LongSupplier dnsQueriesInFlight = () -> 0;
    private volatile LongSupplier dnsPeakQueriesInFlight = () -> 0;
    private final LongAdder acceptLatencySumNs = new LongAdder();
    private final LongAdder deliveryLatencySumNs = new LongAdder();
    private final Recorder acceptLatency = new Recorder(HIGHEST_TRACKABLE_NS, 3);
    private final Recorder deliveryLatency = new Recorder(HIGHEST_TRACKABLE_NS, 3);
    private final Histogram acceptTotal = new Histogram(HIGHEST_TRACKABLE_NS, 3);
    private final Histogram deliveryTotal = new Histogram(HIGHEST_TRACKABLE_NS, 3);

    public void onMessageAccepted(final long acceptLatencyNs)
    {
        final long valueNs = clamp(acceptLatencyNs);
        messagesReceived.increment();
        acceptLatency.recordValue(valueNs);
        acceptLatencySumNs.add(valueNs);
    }

    public void onMessageRejected()
    {
        messagesRejected.increment();
    }

    /** An inbound connection closed; {@code tls}: TLS was established on it (STARTTLS or implicit TLS). */
    public void onConnectionClosed(final boolean tls)
    {
        connectionsClosed.increment();
        if (tls)
        {
            connectionsClosedTls.increment();
        }
    }

    public void onDelivered(final long deliveryLatencyNs)
    {
        final long valueNs = clamp(deliveryLatencyNs);
        messagesDelivered.increment();
        deliveryLatency.recordValue(valueNs);
        deliveryLatencySumNs.add(valueNs);
    }

    public void onDeferred()
    {
        messagesDeferred.increment();
    }

    public void onBounced()
    {
        messagesBounced.increment();
    }

    public void onConnectionOut()
    {
        connectionsOut.increment();
    }

    /**
     * An outbound STARTTLS handshake finished ({@code true}: the connection is encrypted) or failed (refused, broken,
     * timed out, the certificate not verified).
     */
    public void onTlsOut(final boolean established)
    {
        (established ? connectionsOutTls : tlsOutFailures).increment();
    }

    /** An inbound TLS handshake finished ({@code true}) or TLS failed. */
    public void onTlsHandshake(final boolean established)
    {
        (established ? tlsHandshakes : tlsFailures).increment();
    }

    /** An AUTH succeeded or failed. */
    public void onAuth(final boolean success)
    {
        (success ? authSuccesses : authFailures).increment();
    }

    public long tlsHandshakes()
    {
        return tlsHandshakes.sum();
    }

    public long tlsFailures()
    {
        return tlsFailures.sum();
    }

    public long authSuccesses()
    {
        return authSuccesses.sum();
    }

    public long authFailures()
    {
        return authFailures.sum();
    }

    /**
     * Where the damage counters come from: the delivery reader's records that failed their checksum, and its
     * messages dropped for a damaged record.
     */
    public void spoolDamageCounters(final LongSupplier records, final LongSupplier messages)
    {
        this.spoolDamagedRecords = records;
        this.spoolDamagedMessages = messages;
    }

    /** Where the count of proxied connections refused comes from: the inbound loops' (one writer each). */
    public void proxyRefusedCounter(final LongSupplier refused)
    {
        this.proxyRefused = refused;
    }

    /** Connections on a PROXY protocol listener closed for their peer or their header (untrusted, missing, bad, late). */
    public long proxyRefused()
    {
        return proxyRefused.getAsLong();
    }

    /**
     * Where the disk-full counters come from: the spool's failed block allocations (each a 452) and the journal's
     * records skipped for want of space (each a possible redelivery after a restart).
     */
    public void diskFullCounters(final LongSupplier spoolAllocationFailures, final LongSupplier journalSkippedRecords)
    {
        this.spoolAllocationFailures = spoolAllocationFailures;
        this.journalSkippedRecords = journalSkippedRecords;
    }

    /**
     * Where the room gauges come from, so that an operator sees the 452 coming: the body bytes of undelivered mail
     * and the {@code queue.max_bytes} that bounds them, the usable space on the spool's file system and the
     * {@code queue.min_free_bytes} it must keep. Each supplier must be safe to call from the metrics thread.
     */
    public void spoolRoom(
        final LongSupplier queuedBytes,
        final LongSupplier maxQueuedBytes,
        final LongSupplier spoolFreeBytes,
        final LongSupplier spoolMinFreeBytes)
    {
        this.queuedBytes = queuedBytes;
        this.maxQueuedBytes = maxQueuedBytes;
        this.spoolFreeBytes = spoolFreeBytes;
        this.spoolMinFreeBytes = spoolMinFreeBytes;
    }

    /**
     * Where the destination figures come from: next hops with a pool now and pools dropped when idle (the delivery
     * loops), MX lookups that went to DNS, lookups answered from the cache, DNS queries sent, outstanding now and at
     * most at once (the resolver). Each supplier must be safe to call from any thread.
     */
    public void destinations(
        final LongSupplier hops,
        final LongSupplier hopsReclaimed,
        final LongSupplier lookups,
        final LongSupplier cacheHits,
        final LongSupplier queries,
        final LongSupplier queriesInFlight,
        final LongSupplier peakQueriesInFlight)
    {
        this.deliveryHops = hops;
        this.deliveryHopsReclaimed = hopsReclaimed;
        this.dnsLookups = lookups;
        this.dnsCacheHits = cacheHits;
        this.dnsQueries = queries;
        this.dnsQueriesInFlight = queriesInFlight;
        this.dnsPeakQueriesInFlight = peakQueriesInFlight;
    }

    /** Next hops with a connection pool on a delivery loop now. */
    public long deliveryHops()
    {
        return deliveryHops.getAsLong();
    }

    /** Pools dropped after their hop was unused for {@code delivery.idle_timeout}. */
    public long deliveryHopsReclaimed()
    {
        return deliveryHopsReclaimed.getAsLong();
    }

    /** MX lookups that went to DNS. */
    public long dnsLookups()
    {
        return dnsLookups.getAsLong();
    }

    /** MX lookups answered from the cache. */
    public long dnsCacheHits()
    {
        return dnsCacheHits.getAsLong();
    }

    /** DNS queries sent (MX, A, AAAA). */
    public long dnsQueries()
    {
        return dnsQueries.getAsLong();
    }

    /** DNS queries outstanding now. */
    public long dnsQueriesInFlight()
    {
        return dnsQueriesInFlight.getAsLong();
    }

    /** The most DNS queries ever outstanding at once (at most {@code delivery.dns.max_in_flight}). */
    public long dnsPeakQueriesInFlight()
    {
        return dnsPeakQueriesInFlight.getAsLong();
    }

    /**
     * Where the queue gauges come from: messages in the active set (in memory), messages deferred on disk, and the
     * age of the oldest queued message in seconds. Each supplier must be safe to call from the metrics thread.
     */
    public void queueState(
        final LongSupplier activeMessages, final LongSupplier deferredMessages,
        final LongSupplier oldestMessageAgeSeconds)
    {
        this.activeMessages = activeMessages;
        this.deferredMessages = deferredMessages;
        this.oldestMessageAgeSeconds = oldestMessageAgeSeconds;
    }

    /** Messages an operator put on hold ({@code spool hold}). */
    public void heldState(final LongSupplier heldMessages)
    {
        this.heldMessages = heldMessages;
    }

    public long heldMessages()
    {
        return heldMessages.getAsLong();
    }

    public long activeMessages()
    {
        return activeMessages.getAsLong();
    }

    public long deferredMessages()
    {
        return deferredMessages.getAsLong();
    }

    public long oldestMessageAgeSeconds()
    {
        return oldestMessageAgeSeconds.getAsLong();
    }

    public long queuedBytes()
    {
        return queuedBytes.getAsLong();
    }

    public long maxQueuedBytes()
    {
        return maxQueuedBytes.getAsLong();
    }

    public long spoolFreeBytes()
    {
        return spoolFreeBytes.getAsLong();
    }

    public long spoolMinFreeBytes()
    {
        return spoolMinFreeBytes.getAsLong();
    }

    public long spoolAllocationFailures()
    {
        return spoolAllocationFailures.getAsLong();
    }

    public long journalSkippedRecords()
    {
        return journalSkippedRecords.getAsLong();
    }

    public long spoolDamagedRecords()
    {
        return spoolDamagedRecords.getAsLong();
    }

    public long spoolDamagedMessages()
    {
        return spoolDamagedMessages.getAsLong();
    }

    public long messagesReceived()
    {
        return messagesReceived.sum();
    }

    public long messagesRejected()
    {
        return messagesRejected.sum();
    }

    /** Inbound (SMTP server side) connections closed since start. */
    public long connectionsClosed()
    {
        return connectionsClosed.sum();
    }

    public long messagesDelivered()
    {
        return messagesDelivered.sum();
    }

    public long messagesDeferred()
    {
        return messagesDeferred.sum();
    }

    public long messagesBounced()
    {
        return messagesBounced.sum();
    }

    public long connectionsOut()
    {
        return connectionsOut.sum();
    }

    /** Inbound connections closed that had TLS. */
    public long connectionsInTls()
    {
        return connectionsClosedTls.sum();
    }

    /** Outbound connections on which TLS was established. */
    public long connectionsOutTls()
    {
        return connectionsOutTls.sum();
    }

    /** Outbound TLS handshakes that failed. */
    public long tlsOutFailures()
    {
        return tlsOutFailures.sum();
    }

    /** Sum of the recorded (clamped) accept latencies since start, in nanoseconds. */
    public long acceptLatencySumNs()
    {
        return acceptLatencySumNs.sum();
    }

    /** Sum of the recorded (clamped) delivery latencies since start, in nanoseconds. */
    public long deliveryLatencySumNs()
    {
        return deliveryLatencySumNs.sum();
    }

    /** Accept latency since start (end of data → 250 queued). Call from one reader thread only. */
    public synchronized Histogram acceptLatency()
    {
        acceptTotal.add(acceptLatency.getIntervalHistogram());
        return acceptTotal.copy();
    }

    /** Delivery latency since start (received → remote 250). Call from one reader thread only. */
    public synchronized Histogram deliveryLatency()
    {
        deliveryTotal.add(deliveryLatency.getIntervalHistogram());
        return deliveryTotal.copy();
    }

    private static long clamp(final long valueNs)
    {
        return Math.max(1, Math.min(valueNs, HIGHEST_TRACKABLE_NS));
    }
}
