package dev.relay.e2e;

import dev.relay.Relay;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import dev.relay.testing.ManyHostsSink;
import dev.relay.testing.TestDnsServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.xbill.DNS.Type;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Thousands of destinations (issue 14 item 7), against the in-process relay: every recipient domain has its own MX
 * host, answered by a {@link TestDnsServer} on loopback, and every MX host its own 127.x.y.z address, all served
 * by one {@link ManyHostsSink} on {@code delivery.smtp_port} that records which address each transaction came
 * over. Bounces go to the sender's domain, routed to the same sink at 127.0.0.1.
 * <ul>
 * <li>10,000 domains: every recipient delivered exactly once, one transaction per message and domain, over the
 * connection to that domain's own MX host; DNS queries in flight bounded by {@code delivery.dns.max_in_flight};
 * NXDOMAIN and no-MX answers cached; the hop state of idle destinations dropped after
 * {@code delivery.idle_timeout}, and mail for them afterwards served from the DNS cache.</li>
 * <li>One slow destination (every reply 20 s late) and one silent one hold at most their
 * {@code delivery.max_connections_per_hop} each, while mail to 2,000 other domains is all delivered before the slow
 * one has answered once.</li>
 * </ul>
 */
@Timeout(180)
class DeliveryManyDomainsTest
{
    private static final String SENDER = "alice@client.test";
    private static final int MAX_DNS_IN_FLIGHT = 32;
    private static final int SENDERS = 4;

    @TempDir
    Path spool;

    private TestDnsServer dns;
    private ManyHostsSink sink;
    private Relay relay;
    private ExecutorService senders;

    @AfterEach
    void closeAll() throws Exception
    {
        try
        {
            if (senders != null)
            {
                senders.shutdownNow();
                assertTrue(senders.awaitTermination(30, TimeUnit.SECONDS), "senders stopped");
            }
        }
        finally
        {
            try
            {
                Await.closeQuietly(relay);
            }
            finally
            {
                Await.closeQuietly(sink);
                Await.closeQuietly(dns);
            }
        }
    }

    @Test
    void tenThousandDomainsEachWithItsOwnMxHostGetEveryRecipientOnceInOneTransactionPerDomain() throws Exception
    {
        final int domains = 10_000;
        final int domainsPerMessage = 10;
        final int messages = domains / domainsPerMessage;
        final int nxDomains = 5;
        dns = new TestDnsServer().answerDelay(2);
        for (int i = 0; i < domains; i++)
        {
            if (isWithoutMx(i))
            {
                // no MX: the domain itself is the implicit MX (RFC 5321 §5.1), after a NODATA answer
                dns.addA(domain(i), hostAddress(i));
            }
            else
            {
                dns.addMx(domain(i), 10, mxHost(i)).addA(mxHost(i), hostAddress(i));
            }
        }
        startRelay("delivery.idle_timeout", "1s");

        // each message: 2 recipients in each of 10 domains; every 20th also one at a domain that does not exist
        final Map<String, Set<String>> expected = new HashMap<>();
        final List<List<String>> envelopes = new ArrayList<>();
        int withNx = 0;
        for (int m = 0; m < messages; m++)
        {
            final List<String> to = new ArrayList<>();
            for (int k = 0; k < domainsPerMessage; k++)
            {
                final int i = m * domainsPerMessage + k;
                to.add("a" + m + "@" + domain(i));
                to.add("b" + m + "@" + domain(i));
            }
            expected.put(messageId(m), new HashSet<>(to));
            if (m % 20 == 0)
            {
                to.add("x" + m + "@nx" + (m / 20) % nxDomains + ".test");
                withNx++;
            }
            envelopes.add(to);
        }
        final int recipients = messages * domainsPerMessage * 2;
        final long startNs = System.nanoTime();
        send(envelopes, 0);
        final long acceptedNs = System.nanoTime();
        final int bounces = withNx;
        Await.until("every recipient delivered and every bounce sent", Duration.ofSeconds(120),
            () -> sink.recipientCount() >= recipients + bounces && relay.queuedMessages() == 0, this::state);
        final long deliveredNs = System.nanoTime();

        // exactly once, grouped per next hop: one transaction per message and domain, over that domain's MX host
        final Map<String, Integer> copies = new HashMap<>();
        final Set<String> messageAndDomain = new HashSet<>();
        int transactions = 0;
        int bounceTransactions = 0;
        for (final ManyHostsSink.Transaction transaction : sink.transactions())
        {
            if (transaction.host().equals(InetAddress.getByName("127.0.0.1")))
            {
                assertEquals(List.of(SENDER), transaction.recipients(), "a bounce");
                bounceTransactions++;
                continue;
            }
            transactions++;
            final String domainName = domainOf(transaction.recipients().get(0));
            for (final String rcpt : transaction.recipients())
            {
                assertEquals(domainName, domainOf(rcpt), "one domain per transaction: " + transaction);
                copies.merge(transaction.messageId() + " " + rcpt, 1, Integer::sum);
            }
            final int index = Integer.parseInt(domainName.substring(1, domainName.indexOf('.')));
            assertEquals(InetAddress.getByName(hostAddress(index)), transaction.host(),
                "over the connection to " + domainName + "'s own MX host: " + transaction);
            assertTrue(messageAndDomain.add(transaction.messageId() + " " + domainName),
                "one transaction per message and domain: " + transaction);
        }
        int lost = 0;
        for (final Map.Entry<String, Set<String>> message : expected.entrySet())
        {
            for (final String rcpt : message.getValue())
            {
                lost += copies.containsKey(message.getKey() + " " + rcpt) ? 0 : 1;
            }
        }
        int duplicated = 0;
        for (final int count : copies.values())
        {
            duplicated += count - 1;
        }
        assertEquals(0, lost, "lost");
        assertEquals(0, duplicated, "duplicated");
        assertEquals(recipients, copies.size(), "no recipient that was not sent");
        assertEquals(messages * domainsPerMessage, transactions, "transactions");
        assertEquals(bounces, bounceTransactions, "one bounce per message with a recipient at a missing domain");

        // DNS: bounded in flight; one MX query per domain; negative answers (NXDOMAIN, no MX) asked once
        assertTrue(dns.peakOutstanding() <= MAX_DNS_IN_FLIGHT, "DNS queries in flight " + dns.peakOutstanding());
        assertTrue(relay.metrics().dnsPeakQueriesInFlight() <= MAX_DNS_IN_FLIGHT,
            "relay's peak in flight " + relay.metrics().dnsPeakQueriesInFlight());
        assertTrue(dns.peakOutstanding() > 1, "lookups overlap (asynchronous): peak " + dns.peakOutstanding());
        int mxQueries = 0;
        for (int i = 0; i < domains; i++)
        {
            mxQueries += dns.queries(domain(i), Type.MX);
        }
        assertEquals(domains, mxQueries, "one MX query per domain");
        for (int k = 0; k < nxDomains; k++)
        {
            assertEquals(1, dns.queries("nx" + k + ".test", Type.MX),
                "nx" + k + ".test: NXDOMAIN asked once for its " + bounces / nxDomains + " messages");
        }

        // the hop state of idle destinations goes; mail for them later is served from the DNS cache
        Await.until("idle hops dropped", Duration.ofSeconds(60), () -> relay.metrics().deliveryHops() == 0,
            () -> "hops " + relay.metrics().deliveryHops() + ", reclaimed " +
                relay.metrics().deliveryHopsReclaimed());
        final long hopsReclaimed = relay.metrics().deliveryHopsReclaimed();
        assertTrue(hopsReclaimed >= domains + nxDomains, "hops reclaimed " + hopsReclaimed);
        final int queriesBefore = dns.totalQueries();
        final List<String> again = new ArrayList<>();
        for (int k = 0; k < nxDomains; k++)
        {
            again.add("y@nx" + k + ".test");
            again.add("y@" + domain(k * 100 + 50));
            again.add("y@" + domain(k * 100 + 7));
        }
        assertTrue(isWithoutMx(50));
        final int recipientsBefore = sink.recipientCount();
        send(List.of(again), messages);
        Await.until("the second round delivered and its bounce sent", Duration.ofSeconds(60),
            () -> sink.recipientCount() >= recipientsBefore + 2 * nxDomains + 1 && relay.queuedMessages() == 0,
            this::state);
        assertEquals(queriesBefore, dns.totalQueries(), "every lookup of the second round answered from the cache");
        assertTrue(relay.metrics().dnsCacheHits() >= 3 * nxDomains, "cache hits " + relay.metrics().dnsCacheHits());

        System.out.printf("many domains: %d domains, %d messages, %d recipients: accepted in %d ms, all delivered " +
                "%d ms after the first; %d DNS queries, at most %d in flight; %d connections, at most %d open; " +
                "%d hops reclaimed%n",
            domains, messages, recipients, (acceptedNs - startNs) / 1_000_000, (deliveredNs - startNs) / 1_000_000,
            queriesBefore, dns.peakOutstanding(), sink.connectionsAccepted(), sink.peakOpenConnections(),
            hopsReclaimed);
    }

    @Test
    void aSlowAndASilentDestinationHoldOnlyTheirOwnConnectionsWhileMailToTheOthersFlows() throws Exception
    {
        final int others = 9_998;
        final int domainsPerMessage = 10;
        final int stuckMessages = 30;
        final int perHop = 4;
        final Duration slowReply = Duration.ofSeconds(20);
        final InetAddress slowHost = address("127.2.0.1");
        final InetAddress silentHost = address("127.2.0.2");
        dns = new TestDnsServer();
        dns.addMx("slow.test", 10, "mx.slow.test").addA("mx.slow.test", slowHost.getHostAddress())
            .addMx("silent.test", 10, "mx.silent.test").addA("mx.silent.test", silentHost.getHostAddress());
        for (int i = 0; i < others; i++)
        {
            dns.addMx(domain(i), 10, mxHost(i)).addA(mxHost(i), hostAddress(i));
        }
        startRelay("delivery.max_connections_per_hop", Integer.toString(perHop));
        sink.slow(slowHost, slowReply).silent(silentHost);

        final List<List<String>> stuck = new ArrayList<>();
        for (int m = 0; m < stuckMessages; m++)
        {
            stuck.add(List.of("s" + m + "@slow.test"));
            stuck.add(List.of("q" + m + "@silent.test"));
        }
        send(stuck, 0);
        Await.until("the slow and the silent destination at their connection limit", Duration.ofSeconds(30),
            () -> sink.openConnections(slowHost) == perHop && sink.openConnections(silentHost) == perHop,
            () -> "slow " + sink.openConnections(slowHost) + ", silent " + sink.openConnections(silentHost));

        final List<List<String>> envelopes = new ArrayList<>();
        for (int first = 0; first < others; first += domainsPerMessage)
        {
            final List<String> to = new ArrayList<>();
            for (int i = first; i < Math.min(others, first + domainsPerMessage); i++)
            {
                to.add("r@" + domain(i));
            }
            envelopes.add(to);
        }
        final long startNs = System.nanoTime();
        send(envelopes, stuck.size());
        Await.until("mail to the " + others + " other domains delivered", Duration.ofSeconds(120),
            () -> sink.recipientCount() >= others, this::state);
        final long elapsedMs = (System.nanoTime() - startNs) / 1_000_000;

        final Map<String, Integer> copies = new HashMap<>();
        for (final ManyHostsSink.Transaction transaction : sink.transactions())
        {
            for (final String rcpt : transaction.recipients())
            {
                copies.merge(rcpt, 1, Integer::sum);
            }
        }
        int duplicated = 0;
        for (final int count : copies.values())
        {
            duplicated += count - 1;
        }
        assertEquals(others, copies.size(), "lost " + (others - copies.size()));
        assertEquals(0, duplicated, "duplicated");
        assertTrue(elapsedMs < slowReply.toMillis(),
            "the others were all delivered in " + elapsedMs + " ms, before the slow destination answered once");
        assertEquals(perHop, sink.peakOpenConnections(slowHost), "connections the slow destination held at most");
        assertEquals(perHop, sink.peakOpenConnections(silentHost), "connections the silent destination held at most");
        assertEquals(perHop, sink.connectionsAccepted(slowHost), "connections opened to the slow destination");
        assertEquals(perHop, sink.connectionsAccepted(silentHost), "connections opened to the silent destination");
        assertEquals(2 * stuckMessages, relay.queuedMessages(), "the stuck mail waits, queued");

        System.out.printf("slow and silent: %d other domains delivered in %d ms (%.0f recipients/s) while the slow " +
                "and the silent destination held %d and %d connections%n",
            others, elapsedMs, others * 1000.0 / elapsedMs, sink.openConnections(slowHost),
            sink.openConnections(silentHost));
    }

    private static boolean isWithoutMx(final int index)
    {
        return index % 100 == 50;
    }

    private void startRelay(final String... keyValues) throws Exception
    {
        sink = ManyHostsSink.start();
        final List<String> config = new ArrayList<>(List.of(
            "delivery.routes", "client.test=127.0.0.1:" + sink.port(),
            "delivery.dns.servers", "127.0.0.1:" + dns.address().getPort(),
            "delivery.dns.max_in_flight", Integer.toString(MAX_DNS_IN_FLIGHT),
            "delivery.smtp_port", Integer.toString(sink.port())));
        config.addAll(List.of(keyValues));
        relay = E2e.start(E2e.config(spool, config.toArray(new String[0])));
    }

    /** Sends each envelope as one message (ids from {@code firstId}), over {@link #SENDERS} connections at once. */
    private void send(final List<List<String>> envelopes, final int firstId) throws Exception
    {
        if (senders == null)
        {
            senders = Executors.newFixedThreadPool(SENDERS);
        }
        final List<Future<Integer>> done = new ArrayList<>();
        for (int s = 0; s < SENDERS; s++)
        {
            final int first = s;
            done.add(senders.submit(() ->
            {
                int sent = 0;
                try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
                {
                    for (int m = first; m < envelopes.size(); m += SENDERS)
                    {
                        final List<String> to = envelopes.get(m);
                        client.send(SENDER, to, E2e.message(SENDER, to.get(0), "many-" + (firstId + m)));
                        sent++;
                    }
                }
                return sent;
            }));
        }
        int sent = 0;
        for (final Future<Integer> future : done)
        {
            sent += future.get(120, TimeUnit.SECONDS);
        }
        assertEquals(envelopes.size(), sent, "every message accepted");
    }

    private String state()
    {
        return "queued " + relay.queuedMessages() + ", delivered " + relay.metrics().messagesDelivered() +
            ", bounced " + relay.metrics().messagesBounced() + ", sink recipients " + sink.recipientCount() +
            ", connections " + sink.connectionsAccepted() + ", DNS queries " + dns.totalQueries() + ", hops " +
            relay.metrics().deliveryHops();
    }

    private static String messageId(final int m)
    {
        return "many-" + m + "@client.test";
    }

    private static String domain(final int index)
    {
        return "d" + index + ".test";
    }

    private static String mxHost(final int index)
    {
        return "mx.d" + index + ".test";
    }

    /** 127.1.0.1 and on, 200 to a /24: one loopback address per MX host. */
    private static String hostAddress(final int index)
    {
        return "127.1." + index / 200 + "." + (index % 200 + 1);
    }

    private static String domainOf(final String address)
    {
        return address.substring(address.indexOf('@') + 1);
    }

    static InetAddress address(final String ip)
    {
        try
        {
            return InetAddress.getByName(ip);
        }
        catch (final UnknownHostException ex)
        {
            throw new IllegalArgumentException(ip, ex);
        }
    }
}
