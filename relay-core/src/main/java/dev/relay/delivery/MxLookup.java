package dev.relay.delivery;

import org.xbill.DNS.AAAARecord;
import org.xbill.DNS.ARecord;
import org.xbill.DNS.MXRecord;
import org.xbill.DNS.Name;
import org.xbill.DNS.Record;
import org.xbill.DNS.TextParseException;
import org.xbill.DNS.Type;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

import static dev.relay.delivery.MxResolver.MAX_MX_HOSTS;
import static dev.relay.delivery.MxResolver.MAX_TTL_SECONDS;
import static dev.relay.delivery.MxResolver.PARTIAL_TTL_SECONDS;

/**
 * One lookup of {@link MxResolver}'s, shared by every caller that asked for the domain while it ran: the MX query,
 * then the A and AAAA queries of each exchange, and what their answers make of the domain (RFC 5321 §5.1): the
 * hosts by preference with their addresses, an implicit MX without MX records, a null MX (RFC 7505), or a failure;
 * and the TTL its result is cached for. Its queries go through the resolver's slots
 * ({@link DnsQuerySender#submit}); its result goes to the resolver's cache and to every waiting caller.
 * <p>
 * Its query handlers run on the {@code relay-dns} thread; {@link #pending} orders the writes to the answer arrays;
 * {@link #addWaiter} may be called from any thread. Allocates its state and its result (a lookup, not a message).
 */
final class MxLookup
{
    private final MxResolver resolver;
    private final String domain;
    /** Set when its MX query is sent; any thread may send it. */
    volatile long deadlineNs;
    private final List<Consumer<MxResult>> waiters = new ArrayList<>(2);
    private boolean done;
    private MxResult result;

    private Name name;
    private boolean implicit;
    private long mxTtl = MAX_TTL_SECONDS;
    private String[] hostNames;
    private int[] preferences;
    private DnsAnswer[] aAnswers;
    private DnsAnswer[] aaaaAnswers;
    private final AtomicInteger pending = new AtomicInteger();

    MxLookup(final MxResolver resolver, final String domain)
    {
        this.resolver = resolver;
        this.domain = domain;
    }

    /** One DNS question of a lookup: the MX of its domain ({@code hostIndex} -1), or an address of one host. */
    static final class Query
    {
        final MxLookup lookup;
        final Name name;
        final int type;
        final int hostIndex;

        Query(final MxLookup lookup, final Name name, final int type, final int hostIndex)
        {
            this.lookup = lookup;
            this.name = name;
            this.type = type;
            this.hostIndex = hostIndex;
        }
    }

    void addWaiter(final Consumer<MxResult> callback)
    {
        final MxResult finished;
        synchronized (this)
        {
            if (!done)
            {
                waiters.add(callback);
                return;
            }
            finished = result;
        }
        resolver.deliver(callback, finished);
    }

    void start()
    {
        if (domain.isEmpty() || domain.equals("."))
        {
            finish(MxResult.failure(MxResult.Status.NXDOMAIN, "empty domain name"), 0);
            return;
        }
        try
        {
            name = Name.fromString(domain, Name.root);
        }
        catch (final TextParseException ex)
        {
            finish(MxResult.failure(MxResult.Status.NXDOMAIN, "bad domain name " + domain + ": " +
                ex.getMessage()), 0);
            return;
        }
        query(name, Type.MX, -1);
    }

    private void query(final Name qname, final int type, final int hostIndex)
    {
        resolver.submit(new Query(this, qname, type, hostIndex));
    }

    /** The answer to one of its queries, on the {@code relay-dns} thread. */
    void onAnswer(final int hostIndex, final int type, final DnsAnswer answer)
    {
        if (hostIndex < 0)
        {
            onMx(answer);
            return;
        }
        if (type == Type.A)
        {
            aAnswers[hostIndex] = answer;
        }
        else
        {
            aaaaAnswers[hostIndex] = answer;
        }
        if (pending.decrementAndGet() == 0)
        {
            onAddresses();
        }
    }

    private void onMx(final DnsAnswer answer)
    {
        final String prefix = "Host or domain name not found. ";
        switch (answer.kind)
        {
            case DnsAnswer.TEMP:
                finish(MxResult.failure(
                    MxResult.Status.TEMP_FAILURE, prefix + answer.describe(domain, Type.MX)), 0);
                return;
            case DnsAnswer.NXDOMAIN:
                finish(MxResult.failure(
                    MxResult.Status.NXDOMAIN, prefix + answer.describe(domain, Type.MX)), answer.ttlSeconds);
                return;
            case DnsAnswer.NODATA:
                implicit = true;
                mxTtl = answer.ttlSeconds;
                resolveHosts(new String[]{ domain }, new int[]{ 0 }, new Name[]{ name });
                return;
            default:
                onMxRecords(answer);
        }
    }

    private void onMxRecords(final DnsAnswer answer)
    {
        mxTtl = answer.ttlSeconds;
        final List<MXRecord> records = new ArrayList<>(answer.records.size());
        for (final Record record : answer.records)
        {
            records.add((MXRecord)record);
        }
        if (records.size() == 1 && records.get(0).getTarget().equals(Name.root))
        {
            // RFC 7505 §3: a null MX is the domain's only MX record; a "." among others is ignored.
            finish(MxResult.failure(
                MxResult.Status.NULL_MX, "Domain " + domain + " does not accept mail (nullMX)"), mxTtl);
            return;
        }
        records.removeIf((record) -> record.getTarget().equals(Name.root));
        records.sort(Comparator.comparingInt(MXRecord::getPriority)
            .thenComparing((record) -> record.getTarget().toString(true).toLowerCase(Locale.ROOT)));

        final List<Name> targets = new ArrayList<>();
        final List<Integer> prefs = new ArrayList<>();
        for (final MXRecord record : records)
        {
            if (!targets.contains(record.getTarget()) && targets.size() < MAX_MX_HOSTS)
            {
                targets.add(record.getTarget());
                prefs.add(record.getPriority());
            }
        }
        final int count = targets.size();
        final String[] names = new String[count];
        final int[] preferenceArray = new int[count];
        for (int i = 0; i < count; i++)
        {
            names[i] = targets.get(i).toString(true).toLowerCase(Locale.ROOT);
            preferenceArray[i] = prefs.get(i);
        }
        resolveHosts(names, preferenceArray, targets.toArray(new Name[0]));
    }

    private void resolveHosts(final String[] names, final int[] prefs, final Name[] targets)
    {
        hostNames = names;
        preferences = prefs;
        aAnswers = new DnsAnswer[names.length];
        aaaaAnswers = new DnsAnswer[names.length];
        pending.set(2 * names.length);
        for (int i = 0; i < names.length; i++)
        {
            query(targets[i], Type.A, i);
            query(targets[i], Type.AAAA, i);
        }
    }

    private void onAddresses()
    {
        final List<MxHost> hosts = new ArrayList<>(hostNames.length);
        long ttl = mxTtl;
        boolean partial = false;
        String firstTemp = null;
        String firstMissing = null;
        for (int i = 0; i < hostNames.length; i++)
        {
            final List<InetAddress> addresses = new ArrayList<>(2);
            long hostTtl = Long.MAX_VALUE;
            long negativeTtl = Long.MAX_VALUE;
            for (int family = 0; family < 2; family++)
            {
                final DnsAnswer answer = family == 0 ? aAnswers[i] : aaaaAnswers[i];
                final int type = family == 0 ? Type.A : Type.AAAA;
                if (answer.kind == DnsAnswer.TEMP)
                {
                    partial = true;
                    firstTemp = firstTemp == null ? answer.describe(hostNames[i], type) : firstTemp;
                }
                else if (answer.kind == DnsAnswer.DATA)
                {
                    hostTtl = Math.min(hostTtl, answer.ttlSeconds);
                    for (final Record record : answer.records)
                    {
                        addresses.add(record instanceof ARecord ?
                            ((ARecord)record).getAddress() : ((AAAARecord)record).getAddress());
                    }
                }
                else
                {
                    negativeTtl = Math.min(negativeTtl, answer.ttlSeconds);
                    firstMissing = firstMissing == null ? answer.describe(hostNames[i], type) : firstMissing;
                }
            }
            if (!addresses.isEmpty())
            {
                hosts.add(new MxHost(hostNames[i], preferences[i], addresses));
                ttl = Math.min(ttl, hostTtl);
            }
            else if (negativeTtl != Long.MAX_VALUE)
            {
                // a skipped host is looked at again once its negative answer expires
                ttl = Math.min(ttl, negativeTtl);
            }
        }

        final String prefix = "Host or domain name not found. ";
        if (!hosts.isEmpty())
        {
            final String message = (implicit ? "no MX, using A/AAAA of " : "MX hosts of ") + domain +
                (partial ? "; skipped after " + firstTemp : "");
            finish(
                new MxResult(MxResult.Status.OK, hosts, message),
                partial ? Math.min(ttl, PARTIAL_TTL_SECONDS) : ttl);
        }
        else if (firstTemp != null)
        {
            finish(MxResult.failure(MxResult.Status.TEMP_FAILURE, prefix + firstTemp), 0);
        }
        else
        {
            finish(MxResult.failure(MxResult.Status.NO_ADDRESS, prefix + firstMissing), ttl);
        }
    }

    private void finish(final MxResult answer, final long ttlSeconds)
    {
        final MxResult finished = resolver.cache(domain, answer, ttlSeconds);
        final Object[] callbacks;
        synchronized (this)
        {
            done = true;
            result = finished;
            callbacks = waiters.toArray();
            waiters.clear();
        }
        resolver.lookupDone(domain, this);
        for (final Object callback : callbacks)
        {
            @SuppressWarnings("unchecked") final Consumer<MxResult> typed = (Consumer<MxResult>)callback;
            resolver.deliver(typed, finished);
        }
    }
}
