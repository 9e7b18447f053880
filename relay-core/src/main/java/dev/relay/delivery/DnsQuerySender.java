package dev.relay.delivery;

import org.xbill.DNS.DClass;
import org.xbill.DNS.ExtendedResolver;
import org.xbill.DNS.Message;
import org.xbill.DNS.Record;
import org.xbill.DNS.Resolver;
import org.xbill.DNS.ResolverConfig;
import org.xbill.DNS.SimpleResolver;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The sending of {@link MxResolver}'s DNS queries: dnsjava's resolver over the configured servers (a lookup's
 * budget split into at least two attempts, UDP, TCP when truncated), the bound on queries outstanding
 * ({@link DnsQuerySlots}), each lookup's budget from its first query sent, not while it waited for a slot, and the
 * hand-back of every answer (or failure) to its lookup on the {@code relay-dns} thread.
 * <p>
 * {@link #submit} may be called from any thread and never blocks; answers are handled on the {@code relay-dns}
 * executor this sender is given (the resolver's, which it does not own or close). Allocates a request and its
 * future per query (a lookup, not a message).
 */
final class DnsQuerySender
{
    private static final int EDNS_PAYLOAD_BYTES = 1232;

    private final Resolver resolver;
    private final long timeoutNs;
    private final Executor dnsThread;
    private final DnsQuerySlots slots;
    private final AtomicLong queriesSent = new AtomicLong();

    /**
     * @param servers            DNS servers as host:port, tried in turn; empty: the system's
     *                           ({@code /etc/resolv.conf} via dnsjava's {@link ResolverConfig}).
     * @param timeout            budget of one whole lookup (MX and address queries together); positive.
     * @param maxQueriesInFlight most queries outstanding at once; positive.
     * @param dnsThread          the {@code relay-dns} thread's executor: answers are handled there.
     */
    DnsQuerySender(
        final List<InetSocketAddress> servers,
        final Duration timeout,
        final int maxQueriesInFlight,
        final Executor dnsThread)
    {
        this.slots = new DnsQuerySlots(maxQueriesInFlight);
        this.timeoutNs = timeout.toNanos();
        this.dnsThread = dnsThread;
        this.resolver = newResolver(servers.isEmpty() ? ResolverConfig.getCurrentConfig().servers() : servers, timeout);
    }

    private static Resolver newResolver(final List<InetSocketAddress> servers, final Duration timeout)
    {
        final int attempts = Math.max(2, servers.size());
        final Duration attemptTimeout = timeout.dividedBy(attempts);
        final List<Resolver> resolvers = new ArrayList<>(servers.size());
        for (final InetSocketAddress server : servers)
        {
            final SimpleResolver simple = new SimpleResolver(server);
            simple.setTimeout(attemptTimeout);
            simple.setEDNS(0, EDNS_PAYLOAD_BYTES, 0, List.of());
            resolvers.add(simple);
        }
        final ExtendedResolver extended = new ExtendedResolver(resolvers);
        extended.setTimeout(timeout);
        extended.setRetries((attempts + servers.size() - 1) / Math.max(1, servers.size()));
        extended.setLoadBalance(false);
        return extended;
    }

    /**
     * Sends {@code query} now if a slot is free, else queues it (address queries ahead of new lookups' MX
     * queries). Any thread.
     */
    void submit(final MxLookup.Query query)
    {
        if (slots.take(query))
        {
            send(query);
        }
    }

    /** @return queries sent so far (retries inside dnsjava not counted). */
    long queriesSent()
    {
        return queriesSent.get();
    }

    /** @return queries outstanding now; any thread. */
    int inFlight()
    {
        return slots.inFlight();
    }

    /** @return the most queries that were ever outstanding at once (never above the limit). */
    int peakInFlight()
    {
        return slots.peakInFlight();
    }

    /** @return queries waiting for a slot now; any thread. */
    int waiting()
    {
        return slots.waiting();
    }

    /** {@code query} holds a slot: it goes out (a failure to send is answered off this stack). */
    private void send(final MxLookup.Query query)
    {
        final MxLookup lookup = query.lookup;
        final long nowNs = System.nanoTime();
        if (query.hostIndex < 0)
        {
            // the budget starts with the first query, not while the lookup waited for a slot
            lookup.deadlineNs = nowNs + timeoutNs;
        }
        final long remainingNs = lookup.deadlineNs - nowNs;
        final long timeoutMs = TimeUnit.NANOSECONDS.toMillis(timeoutNs);
        if (remainingNs <= 0)
        {
            answerLater(query, DnsAnswer.temp("Host not found, try again (lookup deadline passed)"));
            return;
        }
        queriesSent.incrementAndGet();
        try
        {
            final Message request = Message.newQuery(Record.newRecord(query.name, query.type, DClass.IN));
            resolver.sendAsync(request, dnsThread).toCompletableFuture()
                .orTimeout(remainingNs, TimeUnit.NANOSECONDS)
                .handleAsync(
                    (response, failure) ->
                    {
                        DnsAnswer answer;
                        try
                        {
                            answer = failure != null ? DnsAnswer.ofFailure(failure, timeoutMs) :
                                DnsAnswer.of(response, query.name, query.type);
                        }
                        catch (final RuntimeException ex)
                        {
                            answer = DnsAnswer.ofFailure(ex, timeoutMs);
                        }
                        answered(query, answer);
                        return null;
                    },
                    dnsThread);
        }
        catch (final RuntimeException ex)
        {
            answerLater(query, DnsAnswer.ofFailure(ex, timeoutMs));
        }
    }

    /** Answers on the {@code relay-dns} thread, so a line of queries that fail at once does not recurse. */
    private void answerLater(final MxLookup.Query query, final DnsAnswer answer)
    {
        try
        {
            dnsThread.execute(() -> answered(query, answer));
        }
        catch (final RejectedExecutionException ex)
        {
            // closed: pending lookups are dropped
        }
    }

    /** {@code query} has its answer: its slot goes to the next waiting query, then its lookup goes on. */
    private void answered(final MxLookup.Query query, final DnsAnswer answer)
    {
        final MxLookup.Query next = slots.handOver();
        try
        {
            query.lookup.onAnswer(query.hostIndex, query.type, answer);
        }
        finally
        {
            if (next != null)
            {
                send(next);
            }
        }
    }
}
