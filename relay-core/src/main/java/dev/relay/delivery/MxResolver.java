package dev.relay.delivery;

import org.xbill.DNS.Address;
import org.xbill.DNS.ResolverConfig;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * Asynchronous next-hop lookup for a mail domain (RFC 5321 §5.1) with dnsjava's asynchronous resolver: MX
 * records, then the A and AAAA records of every exchange in parallel; without MX records the domain itself is an
 * implicit MX of preference 0; a lone MX with exchange "." is a null MX (RFC 7505). See {@link MxResult.Status}
 * for the outcomes and what the caller does with them. An IP literal ({@code [192.0.2.1]},
 * {@code [IPv6:2001:db8::1]}, RFC 5321 §4.1.3) needs no DNS.
 * <p>
 * Cache: results are kept in a bounded LRU ({@code cacheSize} domains) for the smallest TTL of the records used;
 * negative answers (NXDOMAIN, NODATA) for the SOA's negative TTL (RFC 2308 §5: min of SOA TTL and MINIMUM), at most
 * {@value #MAX_NEGATIVE_TTL_SECONDS} s, not at all without an SOA; positive ones at most
 * {@value #MAX_TTL_SECONDS} s; a result that skipped a host after a temporary failure at most
 * {@value #PARTIAL_TTL_SECONDS} s; a temporary failure (SERVFAIL, REFUSED, a timeout) for
 * {@value #TEMP_FAILURE_TTL_SECONDS} s (RFC 2308 §7: never longer than five minutes), so mail for a domain whose
 * name servers fail does not ask them again with every message ({@link #forgetTemporaryFailures} for an
 * operator's flush). Concurrent lookups of one domain share one set of queries. Each caller gets the hosts with
 * equal preferences freshly shuffled, and how long the answer stays valid ({@link MxResult#validForMs()}).
 * <p>
 * Queries in flight: at most {@code maxQueriesInFlight} DNS queries are outstanding at once (Postfix's smtp
 * processes each wait for one answer at a time, so its default of 100 processes puts at most 100 queries in
 * flight); the rest wait in order, the address queries of lookups already under way before the MX queries of new
 * ones, so a burst of new domains finishes lookups instead of starting them all. A lookup's time budget starts
 * when its first query is sent, not while it waits ({@link DnsQuerySlots}, {@link DnsQuerySender}).
 * <p>
 * Timeout: {@code timeout} bounds a whole lookup (MX and address queries together); it is split into at least
 * two attempts over the servers (UDP, TCP when truncated).
 * <p>
 * Thread: {@link #resolve} and {@link #cached} may be called from any thread and never block (the cache lock
 * guards a map access only); {@link #resolve} allocates its lookup state, callbacks and the shuffled copy. The
 * callback always runs on this resolver's single {@code relay-dns} thread, also on a cache hit, and must only
 * hand the result over (e.g. enqueue to its loop). Closing stops that thread; later lookups get
 * {@link MxResult.Status#TEMP_FAILURE} on the calling thread.
 * <p>
 * Owns the cache, the lookups in flight by domain, the {@code relay-dns} thread and the hand-out to callers; the
 * sending of queries within the slots and a lookup's budget is {@link DnsQuerySender}'s; what the answers of one
 * lookup make of its domain is {@link MxLookup}'s.
 */
public final class MxResolver implements AutoCloseable
{
    /** Longest a positive answer is cached, in seconds. */
    public static final long MAX_TTL_SECONDS = 86_400;
    /** Longest a negative answer (NXDOMAIN, NODATA) is cached, in seconds. */
    public static final long MAX_NEGATIVE_TTL_SECONDS = 300;
    /** Longest a result that skipped a host after a temporary failure is cached, in seconds. */
    public static final long PARTIAL_TTL_SECONDS = 60;
    /** How long a temporary failure (SERVFAIL, REFUSED, a timeout) is cached, in seconds. */
    public static final long TEMP_FAILURE_TTL_SECONDS = 5;
    /** Default of {@code delivery.dns.max_in_flight}: DNS queries outstanding at once. */
    public static final int DEFAULT_MAX_QUERIES_IN_FLIGHT = 100;
    /** MX hosts beyond this many (by preference) are not resolved. */
    public static final int MAX_MX_HOSTS = 16;
    static final int MAX_CNAME_HOPS = 8;

    private final MxCache cache;
    private final LongSupplier nanoClock;
    private final ThreadPoolExecutor executor;
    private final ConcurrentHashMap<String, MxLookup> inflight = new ConcurrentHashMap<>();
    private final AtomicLong lookupsStarted = new AtomicLong();
    private final AtomicLong cacheHits = new AtomicLong();
    private final AtomicLong callbackErrors = new AtomicLong();
    private final DnsQuerySender queries;

    /**
     * @param servers   DNS servers (recursive resolvers) as host:port, tried in turn; empty: the system's
     *                  ({@code /etc/resolv.conf} via dnsjava's {@link ResolverConfig}).
     * @param timeout   budget of one whole lookup.
     * @param cacheSize most domains cached; 0 disables the cache.
     */
    public MxResolver(final List<InetSocketAddress> servers, final Duration timeout, final int cacheSize)
    {
        this(servers, timeout, cacheSize, DEFAULT_MAX_QUERIES_IN_FLIGHT, System::nanoTime);
    }

    /**
     * @param servers            as above.
     * @param timeout            as above.
     * @param cacheSize          as above.
     * @param maxQueriesInFlight most DNS queries outstanding at once; more wait their turn.
     */
    public MxResolver(
        final List<InetSocketAddress> servers, final Duration timeout, final int cacheSize,
        final int maxQueriesInFlight)
    {
        this(servers, timeout, cacheSize, maxQueriesInFlight, System::nanoTime);
    }

    MxResolver(
        final List<InetSocketAddress> servers,
        final Duration timeout,
        final int cacheSize,
        final LongSupplier nanoClock)
    {
        this(servers, timeout, cacheSize, DEFAULT_MAX_QUERIES_IN_FLIGHT, nanoClock);
    }

    MxResolver(
        final List<InetSocketAddress> servers,
        final Duration timeout,
        final int cacheSize,
        final int maxQueriesInFlight,
        final LongSupplier nanoClock)
    {
        if (timeout.isNegative() || timeout.isZero())
        {
            throw new IllegalArgumentException("timeout must be positive: " + timeout);
        }
        if (maxQueriesInFlight < 1)
        {
            throw new IllegalArgumentException("maxQueriesInFlight must be positive: " + maxQueriesInFlight);
        }
        this.cache = new MxCache(cacheSize);
        this.nanoClock = nanoClock;
        this.executor = new ThreadPoolExecutor(
            1, 1, 0, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(),
            (runnable) ->
            {
                final Thread thread = new Thread(runnable, "relay-dns");
                thread.setDaemon(true);
                return thread;
            });
        this.queries = new DnsQuerySender(servers, timeout, maxQueriesInFlight, executor);
    }

    /**
     * Looks up the next hops for {@code domain} and calls {@code callback} once with the result, on the
     * {@code relay-dns} thread. Never blocks and never throws for a bad name (that is an
     * {@link MxResult.Status#NXDOMAIN} result).
     *
     * @param domain   domain of a recipient address, any case, with or without the trailing dot; or an IP
     *                 literal in brackets.
     * @param callback receives the result; must not block.
     */
    public void resolve(final String domain, final Consumer<MxResult> callback)
    {
        if (executor.isShutdown())
        {
            invoke(callback, MxResult.failure(MxResult.Status.TEMP_FAILURE, "DNS resolver closed"));
            return;
        }
        final String key = normalize(domain);
        if (isIpLiteral(key))
        {
            final InetAddress literal = parseIpLiteral(key);
            deliver(callback, literal == null ?
                MxResult.failure(MxResult.Status.NXDOMAIN, "bad address literal " + domain) :
                new MxResult(MxResult.Status.OK, List.of(new MxHost(key, 0, List.of(literal))), "address literal"));
            return;
        }

        final MxResult hit = cache.get(key, nanoClock.getAsLong());
        if (hit != null)
        {
            cacheHits.incrementAndGet();
            deliver(callback, hit);
            return;
        }

        final MxLookup fresh = new MxLookup(this, key);
        final MxLookup running = inflight.putIfAbsent(key, fresh);
        if (running != null)
        {
            running.addWaiter(callback);
            return;
        }
        lookupsStarted.incrementAndGet();
        fresh.addWaiter(callback);
        fresh.start();
    }

    /**
     * The cached result for {@code domain}, without a query: lets a loop skip the hand-off on a hit.
     *
     * @param domain domain as for {@link #resolve}.
     * @return the live cached result with equal preferences shuffled, or null.
     */
    public MxResult cached(final String domain)
    {
        final MxResult hit = cache.get(normalize(domain), nanoClock.getAsLong());
        return hit == null ? null : handOut(hit);
    }

    /**
     * Drops every cached result.
     */
    public void clearCache()
    {
        cache.clear();
    }

    /**
     * Drops the cached temporary failures, so the next lookup of those domains asks again: an operator's flush
     * means "try now". Walks the cache (an operator's action, not a hot path).
     */
    public void forgetTemporaryFailures()
    {
        cache.removeIf((result) -> result.status() == MxResult.Status.TEMP_FAILURE);
    }

    /**
     * @return DNS queries sent so far (retries inside dnsjava not counted).
     */
    public long queriesSent()
    {
        return queries.queriesSent();
    }

    /**
     * @return lookups that went to DNS (not answered from the cache nor joined to one under way).
     */
    public long lookupsStarted()
    {
        return lookupsStarted.get();
    }

    /**
     * @return lookups answered from the cache.
     */
    public long cacheHits()
    {
        return cacheHits.get();
    }

    /**
     * @return domains in the cache now (expired ones included until they are asked for or evicted).
     */
    public int cacheEntries()
    {
        return cache.size();
    }

    /**
     * @return DNS queries outstanding now; any thread.
     */
    public int queriesInFlight()
    {
        return queries.inFlight();
    }

    /**
     * @return the most DNS queries that were ever outstanding at once (never above the limit).
     */
    public int peakQueriesInFlight()
    {
        return queries.peakInFlight();
    }

    /**
     * @return queries waiting for a slot now; any thread.
     */
    public int queriesWaiting()
    {
        return queries.waiting();
    }

    /**
     * @return callbacks that threw a {@link RuntimeException} (counted, not rethrown).
     */
    public long callbackErrors()
    {
        return callbackErrors.get();
    }

    /**
     * Stops the {@code relay-dns} thread; pending callbacks are dropped.
     */
    public void close()
    {
        executor.shutdownNow();
    }

    /**
     * @param domain a domain or an address literal.
     * @return true when {@code domain} is written as an address literal, {@code [...]} (RFC 5321 §4.1.3).
     */
    public static boolean isIpLiteral(final String domain)
    {
        return domain.length() > 2 && domain.charAt(0) == '[' && domain.charAt(domain.length() - 1) == ']';
    }

    /**
     * Parses an address literal without any DNS: {@code [192.0.2.1]} or {@code [IPv6:2001:db8::1]} (the tag in
     * any case, RFC 5321 §4.1.3).
     *
     * @param literal the literal, with brackets.
     * @return the address, or null when it is not a valid IPv4 or tagged IPv6 literal.
     */
    public static InetAddress parseIpLiteral(final String literal)
    {
        if (!isIpLiteral(literal))
        {
            return null;
        }
        final String inner = literal.substring(1, literal.length() - 1);
        final boolean v6 = inner.regionMatches(true, 0, "IPv6:", 0, 5);
        final String text = v6 ? inner.substring(5) : inner;
        final byte[] bytes = Address.toByteArray(text, v6 ? Address.IPv6 : Address.IPv4);
        if (bytes == null)
        {
            return null;
        }
        try
        {
            return InetAddress.getByAddress(bytes);
        }
        catch (final UnknownHostException ex)
        {
            return null;
        }
    }

    static String normalize(final String domain)
    {
        final String lower = domain.trim().toLowerCase(Locale.ROOT);
        return lower.endsWith(".") && lower.length() > 1 ? lower.substring(0, lower.length() - 1) : lower;
    }

    /** Calls {@code callback} with {@code result} on the {@code relay-dns} thread. Any thread. */
    void deliver(final Consumer<MxResult> callback, final MxResult result)
    {
        try
        {
            executor.execute(() -> invoke(callback, result));
        }
        catch (final RejectedExecutionException ex)
        {
            invoke(callback, MxResult.failure(MxResult.Status.TEMP_FAILURE, "DNS resolver closed"));
        }
    }

    private void invoke(final Consumer<MxResult> callback, final MxResult result)
    {
        try
        {
            callback.accept(handOut(result));
        }
        catch (final RuntimeException ex)
        {
            callbackErrors.incrementAndGet();
        }
    }

    /** A caller's copy: equal preferences shuffled, with the time its cache entry has left. */
    private MxResult handOut(final MxResult result)
    {
        final long validForMs = result.expiresAtNs() == 0 ? 0 :
            Math.max(0, TimeUnit.NANOSECONDS.toMillis(result.expiresAtNs() - nanoClock.getAsLong()));
        return result.shuffled(ThreadLocalRandom.current()).validFor(validForMs);
    }

    /** Sends {@code query} when a slot is free ({@link DnsQuerySender#submit}). Any thread. */
    void submit(final MxLookup.Query query)
    {
        queries.submit(query);
    }

    /**
     * A lookup's answer goes into the cache (a temporary failure for {@link #TEMP_FAILURE_TTL_SECONDS}, anything
     * else for {@code ttlSeconds}, not at all for 0); returns it as cached, with its expiry. Any thread.
     */
    MxResult cache(final String domain, final MxResult answer, final long ttlSeconds)
    {
        final long cacheSeconds = answer.status() == MxResult.Status.TEMP_FAILURE ?
            TEMP_FAILURE_TTL_SECONDS : ttlSeconds;
        final long nowNs = nanoClock.getAsLong();
        final MxResult finished = cacheSeconds > 0 ? answer.expiringAt(nowNs + cacheSeconds * 1_000_000_000L) :
            answer;
        cache.put(domain, finished, cacheSeconds, nowNs);
        return finished;
    }

    /** {@code lookup} has its result: a later caller for its domain reads the cache or starts a new one. */
    void lookupDone(final String domain, final MxLookup lookup)
    {
        inflight.remove(domain, lookup);
    }
}
