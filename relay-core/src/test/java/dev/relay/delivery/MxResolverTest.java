package dev.relay.delivery;

import dev.relay.testing.TestDnsServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.xbill.DNS.Type;

import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class MxResolverTest
{
    private static final Duration TIMEOUT = Duration.ofSeconds(2);

    private final AtomicLong nowNs = new AtomicLong(1_000_000_000L);
    private TestDnsServer dns;
    private MxResolver resolver;

    @BeforeEach
    void start() throws Exception
    {
        dns = new TestDnsServer();
        resolver = new MxResolver(List.of(dns.address()), TIMEOUT, 100, nowNs::get);
    }

    @AfterEach
    void stop() throws Exception
    {
        resolver.close();
        dns.close();
    }

    private MxResult resolve(final String domain) throws Exception
    {
        return resolve(resolver, domain);
    }

    private static MxResult resolve(final MxResolver resolver, final String domain) throws Exception
    {
        final CompletableFuture<MxResult> result = new CompletableFuture<>();
        resolver.resolve(domain, result::complete);
        return result.get(10, TimeUnit.SECONDS);
    }

    private static List<String> names(final MxResult result)
    {
        final List<String> names = new ArrayList<>();
        for (final MxHost host : result.hosts())
        {
            names.add(host.name());
        }
        return names;
    }

    private void advanceSeconds(final long seconds)
    {
        nowNs.addAndGet(seconds * 1_000_000_000L);
    }

    @Test
    void mxHostsInPreferenceOrderWithTheirAddresses() throws Exception
    {
        dns.addMx("example.test", 20, "mx2.example.test")
            .addMx("example.test", 10, "mx1.example.test")
            .addMx("example.test", 30, "mx3.example.test")
            .addA("mx1.example.test", "192.0.2.1")
            .addAaaa("mx1.example.test", "2001:db8::1")
            .addA("mx2.example.test", "192.0.2.2")
            .addAaaa("mx3.example.test", "2001:db8::3");

        final MxResult result = resolve("example.test");

        assertEquals(MxResult.Status.OK, result.status(), result.message());
        assertEquals(List.of("mx1.example.test", "mx2.example.test", "mx3.example.test"), names(result));
        assertEquals(List.of(10, 20, 30), List.of(result.hosts().get(0).preference(),
            result.hosts().get(1).preference(), result.hosts().get(2).preference()));
        assertEquals(List.of(InetAddress.getByName("192.0.2.1"), InetAddress.getByName("2001:db8::1")),
            result.hosts().get(0).addresses());
        assertEquals(List.of(InetAddress.getByName("2001:db8::3")), result.hosts().get(2).addresses());
        assertEquals(1, dns.queries("example.test", Type.MX));
        assertEquals(1, dns.queries("mx1.example.test", Type.A));
        assertEquals(1, dns.queries("mx1.example.test", Type.AAAA));
    }

    @Test
    void equalPreferencesAreShuffledForEachCaller() throws Exception
    {
        dns.addMx("spread.test", 5, "first.spread.test");
        for (final String host : new String[]{ "a.spread.test", "b.spread.test", "c.spread.test" })
        {
            dns.addMx("spread.test", 10, host).addA(host, "192.0.2.10");
        }
        dns.addA("first.spread.test", "192.0.2.5");

        final Set<List<String>> orders = new HashSet<>();
        for (int i = 0; i < 60; i++)
        {
            final MxResult result = resolve("spread.test");
            final List<String> names = names(result);
            assertEquals("first.spread.test", names.get(0));
            assertEquals(
                Set.of("a.spread.test", "b.spread.test", "c.spread.test"), new HashSet<>(names.subList(1, 4)));
            orders.add(names);
        }
        assertTrue(orders.size() > 1, "equal preferences never reordered: " + orders);
        assertEquals(1, dns.queries("spread.test", Type.MX));
    }

    @Test
    void noMxFallsBackToTheDomainsOwnAddresses() throws Exception
    {
        dns.addA("plain.test", "192.0.2.7").addAaaa("plain.test", "2001:db8::7");

        final MxResult result = resolve("plain.test");

        assertEquals(MxResult.Status.OK, result.status(), result.message());
        assertEquals(1, result.hosts().size());
        final MxHost host = result.hosts().get(0);
        assertEquals("plain.test", host.name());
        assertEquals(0, host.preference());
        assertEquals(List.of(InetAddress.getByName("192.0.2.7"), InetAddress.getByName("2001:db8::7")),
            host.addresses());
    }

    @Test
    void nullMxMeansNoMail() throws Exception
    {
        dns.nullMx("nomail.test").addA("nomail.test", "192.0.2.8");

        final MxResult result = resolve("nomail.test");

        assertEquals(MxResult.Status.NULL_MX, result.status());
        assertTrue(result.isPermanentFailure());
        assertTrue(result.hosts().isEmpty());
        assertEquals(0, dns.queries("nomail.test", Type.A), "no implicit MX for a null MX domain");
    }

    @Test
    void dotAmongRealMxRecordsIsIgnored() throws Exception
    {
        dns.nullMx("mixed.test").addMx("mixed.test", 10, "mx.mixed.test").addA("mx.mixed.test", "192.0.2.9");

        final MxResult result = resolve("mixed.test");

        assertEquals(MxResult.Status.OK, result.status());
        assertEquals(List.of("mx.mixed.test"), names(result));
    }

    @Test
    void nxdomainIsPermanent() throws Exception
    {
        final MxResult result = resolve("nowhere.test");

        assertEquals(MxResult.Status.NXDOMAIN, result.status());
        assertTrue(result.isPermanentFailure());
        assertEquals(
            "Host or domain name not found. Name service error for name=nowhere.test type=MX: Host not found",
            result.message());
    }

    @Test
    void servfailIsTemporaryAndCachedBriefly() throws Exception
    {
        dns.servfail("broken.test");

        final MxResult first = resolve("broken.test");
        final MxResult second = resolve("broken.test");

        assertEquals(MxResult.Status.TEMP_FAILURE, first.status());
        assertFalse(first.isPermanentFailure());
        assertTrue(first.message().contains("SERVFAIL"), first.message());
        assertEquals(MxResult.Status.TEMP_FAILURE, second.status());
        assertEquals(1, dns.queries("broken.test", Type.MX), "the failure is cached for a few seconds");

        advanceSeconds(MxResolver.TEMP_FAILURE_TTL_SECONDS);
        dns.heal("broken.test").addMx("broken.test", 10, "mx.broken.test").addA("mx.broken.test", "192.0.2.9");
        assertEquals(MxResult.Status.OK, resolve("broken.test").status());
        assertEquals(2, dns.queries("broken.test", Type.MX));
    }

    @Test
    void aFlushForgetsCachedTemporaryFailuresOnly() throws Exception
    {
        dns.servfail("flushed.test").addMx("kept.test", 10, "mx.kept.test").addA("mx.kept.test", "192.0.2.8");
        resolve("flushed.test");
        resolve("kept.test");

        resolver.forgetTemporaryFailures();
        resolve("flushed.test");
        resolve("kept.test");

        assertEquals(2, dns.queries("flushed.test", Type.MX), "asked again after the flush");
        assertEquals(1, dns.queries("kept.test", Type.MX), "a good answer stays cached");
    }

    @Test
    void aCachedAnswerSaysHowLongItStaysValid() throws Exception
    {
        dns.addMx("ttl.test", 10, "mx.ttl.test", 60).addA("mx.ttl.test", "192.0.2.7", 120);

        assertEquals(60_000, resolve("ttl.test").validForMs());
        advanceSeconds(20);
        assertEquals(40_000, resolve("ttl.test").validForMs());
        assertEquals(40_000, resolver.cached("ttl.test").validForMs());
        assertEquals(1, dns.queries("ttl.test", Type.MX));
    }

    @Test
    void expiredEntriesLeaveTheCacheAsNewOnesComeIn() throws Exception
    {
        dns.addMx("old.test", 10, "mx.old.test", 2).addA("mx.old.test", "192.0.2.6", 2)
            .addMx("new.test", 10, "mx.new.test").addA("mx.new.test", "192.0.2.5");
        resolve("old.test");
        assertEquals(1, resolver.cacheEntries());

        advanceSeconds(3);
        resolve("new.test");

        assertEquals(1, resolver.cacheEntries(), "the expired entry went when the new one came");
    }

    @Test
    void queriesInFlightNeverExceedTheLimitAndEveryLookupFinishes() throws Exception
    {
        final int domains = 60;
        final int limit = 4;
        dns.answerDelay(20);
        for (int i = 0; i < domains; i++)
        {
            dns.addMx("d" + i + ".many.test", 10, "mx.d" + i + ".many.test")
                .addA("mx.d" + i + ".many.test", "192.0.2." + (i + 1));
        }
        try (MxResolver bounded = new MxResolver(List.of(dns.address()), Duration.ofSeconds(5), 1000, limit))
        {
            final CountDownLatch done = new CountDownLatch(domains);
            final List<MxResult> results = new CopyOnWriteArrayList<>();
            for (int i = 0; i < domains; i++)
            {
                bounded.resolve("d" + i + ".many.test", (result) ->
                {
                    results.add(result);
                    done.countDown();
                });
            }
            assertTrue(bounded.queriesWaiting() > 0, "the burst waits for slots");

            assertTrue(done.await(20, TimeUnit.SECONDS), "finished " + results.size());
            for (final MxResult result : results)
            {
                assertEquals(MxResult.Status.OK, result.status(), result.message());
            }
            assertEquals(3L * domains, bounded.queriesSent(), "MX, A and AAAA per domain");
            assertEquals(limit, bounded.peakQueriesInFlight(), "the limit is used, never passed");
            assertTrue(dns.peakOutstanding() <= limit, "the server saw " + dns.peakOutstanding() + " at once");
            assertTrue(dns.peakOutstanding() > 1, "lookups overlap: " + dns.peakOutstanding());
            assertEquals(0, bounded.queriesInFlight());
            assertEquals(domains, bounded.lookupsStarted());
        }
    }

    @Test
    void aLookupsBudgetStartsWhenItsFirstQueryIsSent() throws Exception
    {
        // one query at a time, 100 ms each: the sixth lookup starts 1.5 s after it was asked for, past the budget
        dns.answerDelay(100);
        final int domains = 6;
        for (int i = 0; i < domains; i++)
        {
            dns.addMx("q" + i + ".line.test", 10, "mx.q" + i + ".line.test")
                .addA("mx.q" + i + ".line.test", "192.0.2." + (i + 1));
        }
        try (MxResolver single = new MxResolver(List.of(dns.address()), Duration.ofMillis(1_000), 100, 1))
        {
            final CountDownLatch done = new CountDownLatch(domains);
            final List<MxResult> results = new CopyOnWriteArrayList<>();
            for (int i = 0; i < domains; i++)
            {
                single.resolve("q" + i + ".line.test", (result) ->
                {
                    results.add(result);
                    done.countDown();
                });
            }
            assertTrue(done.await(20, TimeUnit.SECONDS), "finished " + results.size());
            for (final MxResult result : results)
            {
                assertEquals(MxResult.Status.OK, result.status(), result.message());
            }
            assertEquals(1, single.peakQueriesInFlight());
        }
    }

    @Test
    void timeoutIsTemporaryWithinTheConfiguredTimeout() throws Exception
    {
        dns.delay("slow.test", 10_000).addMx("slow.test", 10, "mx.slow.test");
        final Duration timeout = Duration.ofMillis(600);
        try (MxResolver quick = new MxResolver(List.of(dns.address()), timeout, 10))
        {
            final long startNs = System.nanoTime();
            final MxResult result = resolve(quick, "slow.test");
            final long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNs);

            assertEquals(MxResult.Status.TEMP_FAILURE, result.status(), result.message());
            assertTrue(
                result.message().contains("name=slow.test type=MX: Host not found, try again"), result.message());
            assertTrue(elapsedMs < timeout.toMillis() + 750, "took " + elapsedMs + " ms");
            assertTrue(elapsedMs >= timeout.toMillis() / 2, "gave up after " + elapsedMs + " ms");
        }
    }

    @Test
    void garbageAnswerIsTemporary() throws Exception
    {
        dns.garbage("noise.test");

        final long startNs = System.nanoTime();
        final MxResult result = resolve("noise.test");

        assertEquals(MxResult.Status.TEMP_FAILURE, result.status(), result.message());
        assertTrue(System.nanoTime() - startNs < TIMEOUT.toNanos(), "garbage should fail before the timeout");
    }

    @Test
    void secondLookupIsServedFromTheCache() throws Exception
    {
        dns.addMx("cached.test", 10, "mx.cached.test").addA("mx.cached.test", "192.0.2.11");

        final MxResult first = resolve("cached.test");
        final int queries = dns.totalQueries();
        final MxResult second = resolve("Cached.Test.");

        assertEquals(MxResult.Status.OK, second.status());
        assertEquals(first.hosts(), second.hosts());
        assertEquals(queries, dns.totalQueries(), "no query for a cached domain");
        assertNotNull(resolver.cached("cached.test"));
        assertNull(resolver.cached("other.test"));
    }

    @Test
    void cacheEntryExpiresAfterTheSmallestTtl() throws Exception
    {
        dns.addMx("short.test", 10, "mx.short.test", 60).addA("mx.short.test", "192.0.2.12", 2);

        resolve("short.test");
        advanceSeconds(1);
        resolve("short.test");
        assertEquals(1, dns.queries("short.test", Type.MX));

        advanceSeconds(2);
        assertNull(resolver.cached("short.test"));
        final MxResult again = resolve("short.test");
        assertEquals(MxResult.Status.OK, again.status());
        assertEquals(2, dns.queries("short.test", Type.MX));
    }

    @Test
    void nxdomainIsCachedForTheSoaNegativeTtl() throws Exception
    {
        dns.negativeTtl(30);

        resolve("gone.test");
        advanceSeconds(29);
        assertEquals(MxResult.Status.NXDOMAIN, resolve("gone.test").status());
        assertEquals(1, dns.queries("gone.test", Type.MX));

        advanceSeconds(2);
        resolve("gone.test");
        assertEquals(2, dns.queries("gone.test", Type.MX));
    }

    @Test
    void negativeTtlIsCappedAtFiveMinutes() throws Exception
    {
        dns.negativeTtl(86_400);

        resolve("long-gone.test");
        advanceSeconds(MxResolver.MAX_NEGATIVE_TTL_SECONDS + 1);
        resolve("long-gone.test");

        assertEquals(2, dns.queries("long-gone.test", Type.MX));
    }

    @Test
    void concurrentLookupsOfOneDomainShareTheQueries() throws Exception
    {
        dns.delay("busy.test", 300).addMx("busy.test", 10, "mx.busy.test").addA("mx.busy.test", "192.0.2.13");
        final int callers = 20;
        final CountDownLatch done = new CountDownLatch(callers);
        final List<MxResult> results = new CopyOnWriteArrayList<>();

        for (int i = 0; i < callers; i++)
        {
            resolver.resolve("busy.test", (result) ->
            {
                results.add(result);
                done.countDown();
            });
        }

        assertTrue(done.await(10, TimeUnit.SECONDS));
        assertEquals(1, dns.queries("busy.test", Type.MX));
        assertEquals(1, dns.queries("mx.busy.test", Type.A));
        for (final MxResult result : results)
        {
            assertEquals(MxResult.Status.OK, result.status());
            assertEquals(List.of("mx.busy.test"), names(result));
        }
    }

    @Test
    void mxHostWithoutAddressIsSkipped() throws Exception
    {
        dns.addMx("partial.test", 10, "dead.partial.test")
            .addMx("partial.test", 20, "live.partial.test")
            .addMx("partial.test", 30, "missing.partial.test")
            .exists("dead.partial.test")
            .addA("live.partial.test", "192.0.2.14");

        final MxResult result = resolve("partial.test");

        assertEquals(MxResult.Status.OK, result.status());
        assertEquals(List.of("live.partial.test"), names(result));
    }

    @Test
    void noMxHostWithAnAddressIsNoAddress() throws Exception
    {
        dns.addMx("hollow.test", 10, "a.hollow.test").addMx("hollow.test", 20, "b.hollow.test")
            .exists("a.hollow.test");

        final MxResult result = resolve("hollow.test");

        assertEquals(MxResult.Status.NO_ADDRESS, result.status());
        assertFalse(result.isPermanentFailure());
        assertTrue(result.message().contains("a.hollow.test"), result.message());
    }

    @Test
    void domainWithoutMxOrAddressIsNoAddress() throws Exception
    {
        dns.exists("bare.test");

        final MxResult result = resolve("bare.test");

        assertEquals(MxResult.Status.NO_ADDRESS, result.status(), result.message());
    }

    @Test
    void temporaryFailureOfOneHostKeepsTheOthers() throws Exception
    {
        dns.addMx("flaky.test", 10, "down.flaky.test").addMx("flaky.test", 20, "up.flaky.test")
            .servfail("down.flaky.test")
            .addA("up.flaky.test", "192.0.2.15");

        final MxResult result = resolve("flaky.test");

        assertEquals(MxResult.Status.OK, result.status());
        assertEquals(List.of("up.flaky.test"), names(result));
        assertTrue(result.message().contains("down.flaky.test"), result.message());
    }

    @Test
    void temporaryFailureOfEveryHostIsTemporary() throws Exception
    {
        dns.addMx("allflaky.test", 10, "down.allflaky.test").servfail("down.allflaky.test");

        assertEquals(MxResult.Status.TEMP_FAILURE, resolve("allflaky.test").status());
    }

    @Test
    void truncatedUdpAnswerIsRetriedOverTcp() throws Exception
    {
        dns.truncate("big.test").addMx("big.test", 10, "mx.big.test").addA("mx.big.test", "192.0.2.16");

        final MxResult result = resolve("big.test");

        assertEquals(MxResult.Status.OK, result.status(), result.message());
        assertEquals(2, dns.queries("big.test", Type.MX), "once over UDP, once over TCP");
    }

    @Test
    void cnameChainsAreFollowedForMxAndAddresses() throws Exception
    {
        dns.cname("alias.test", "real.test")
            .addMx("real.test", 10, "mxalias.real.test")
            .cname("mxalias.real.test", "mx.real.test")
            .addA("mx.real.test", "192.0.2.20")
            .cname("www.alias.test", "host.alias.test")
            .addA("host.alias.test", "192.0.2.21");

        final MxResult viaAlias = resolve("alias.test");
        final MxResult implicit = resolve("www.alias.test");

        assertEquals(MxResult.Status.OK, viaAlias.status(), viaAlias.message());
        assertEquals(List.of("mxalias.real.test"), names(viaAlias));
        assertEquals(List.of(InetAddress.getByName("192.0.2.20")), viaAlias.hosts().get(0).addresses());
        assertEquals(MxResult.Status.OK, implicit.status(), implicit.message());
        assertEquals(List.of(InetAddress.getByName("192.0.2.21")), implicit.hosts().get(0).addresses());
    }

    @Test
    void ipLiteralsNeedNoDns() throws Exception
    {
        final MxResult v4 = resolve("[192.0.2.17]");
        final MxResult v6 = resolve("[IPv6:2001:db8::17]");
        final MxResult bad = resolve("[not-an-address]");

        assertEquals(MxResult.Status.OK, v4.status());
        assertEquals(List.of(InetAddress.getByName("192.0.2.17")), v4.hosts().get(0).addresses());
        assertEquals(List.of(InetAddress.getByName("2001:db8::17")), v6.hosts().get(0).addresses());
        assertEquals(MxResult.Status.NXDOMAIN, bad.status());
        assertEquals(0, dns.totalQueries());
        assertTrue(MxResolver.isIpLiteral("[10.0.0.1]"));
        assertFalse(MxResolver.isIpLiteral("example.com"));
        assertNull(MxResolver.parseIpLiteral("[2001:db8::1]"), "IPv6 needs its tag");
        assertNull(MxResolver.parseIpLiteral("[999.1.1.1]"));
    }

    @Test
    void invalidDomainNameIsNxdomainWithoutAQuery() throws Exception
    {
        final MxResult result = resolve("a..b");

        assertEquals(MxResult.Status.NXDOMAIN, result.status(), result.message());
        assertEquals(0, dns.totalQueries());
    }

    @Test
    void callbackRunsOnTheResolverThreadEvenOnACacheHit() throws Exception
    {
        dns.addMx("thread.test", 10, "mx.thread.test").addA("mx.thread.test", "192.0.2.18");
        resolve("thread.test");

        final AtomicReference<String> threadName = new AtomicReference<>();
        final CountDownLatch done = new CountDownLatch(1);
        resolver.resolve("thread.test", (result) ->
        {
            threadName.set(Thread.currentThread().getName());
            done.countDown();
        });

        assertTrue(done.await(5, TimeUnit.SECONDS));
        assertEquals("relay-dns", threadName.get());
    }

    @Test
    void throwingCallbackIsCountedAndTheResolverGoesOn() throws Exception
    {
        dns.addMx("boom.test", 10, "mx.boom.test").addA("mx.boom.test", "192.0.2.19");
        resolver.resolve("boom.test", (result) ->
        {
            throw new IllegalStateException("boom");
        });

        assertEquals(MxResult.Status.OK, resolve("boom.test").status());
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (resolver.callbackErrors() == 0 && System.nanoTime() < deadline)
        {
            Thread.onSpinWait();
        }
        assertEquals(1, resolver.callbackErrors());
    }

    @Test
    void closedResolverAnswersTemporaryFailure() throws Exception
    {
        resolver.close();

        final AtomicReference<MxResult> result = new AtomicReference<>();
        resolver.resolve("late.test", result::set);

        assertSame(MxResult.Status.TEMP_FAILURE, result.get().status());
    }
}
