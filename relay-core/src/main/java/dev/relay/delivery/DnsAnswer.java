package dev.relay.delivery;

import org.xbill.DNS.CNAMERecord;
import org.xbill.DNS.Message;
import org.xbill.DNS.Name;
import org.xbill.DNS.Rcode;
import org.xbill.DNS.Record;
import org.xbill.DNS.SOARecord;
import org.xbill.DNS.Section;
import org.xbill.DNS.Type;

import java.net.SocketTimeoutException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;

/**
 * One DNS answer reduced to what an {@link MxResolver} lookup needs: data (after following a CNAME chain inside
 * the answer), NODATA, NXDOMAIN (both with their RFC 2308 negative TTL) or a temporary failure, with a reason in
 * Postfix's words.
 * <p>
 * Immutable; any thread. Built once per DNS response on the resolver thread.
 */
final class DnsAnswer
{
    static final int DATA = 0;
    static final int NODATA = 1;
    static final int NXDOMAIN = 2;
    static final int TEMP = 3;

    final int kind;
    final List<Record> records;
    final long ttlSeconds;
    final String reason;

    DnsAnswer(final int kind, final List<Record> records, final long ttlSeconds, final String reason)
    {
        this.kind = kind;
        this.records = records;
        this.ttlSeconds = ttlSeconds;
        this.reason = reason;
    }

    static DnsAnswer of(final Message response, final Name name, final int type)
    {
        final int rcode = response.getRcode();
        if (rcode == Rcode.NXDOMAIN)
        {
            return new DnsAnswer(NXDOMAIN, List.of(), negativeTtl(response), "Host not found");
        }
        if (rcode != Rcode.NOERROR)
        {
            return temp("Host not found, try again (" + Rcode.string(rcode) + ")");
        }

        final List<Record> answer = response.getSection(Section.ANSWER);
        long ttl = Long.MAX_VALUE;
        Name current = name;
        for (int hop = 0; hop < MxResolver.MAX_CNAME_HOPS; hop++)
        {
            Name next = null;
            for (final Record record : answer)
            {
                if (record instanceof CNAMERecord && record.getName().equals(current))
                {
                    next = ((CNAMERecord)record).getTarget();
                    ttl = Math.min(ttl, record.getTTL());
                    break;
                }
            }
            if (next == null)
            {
                break;
            }
            current = next;
        }

        final List<Record> records = new ArrayList<>();
        for (final Record record : answer)
        {
            if (record.getType() == type && record.getName().equals(current))
            {
                records.add(record);
                ttl = Math.min(ttl, record.getTTL());
            }
        }
        if (records.isEmpty())
        {
            return new DnsAnswer(
                NODATA, List.of(), negativeTtl(response), "Host found but no data record of requested type");
        }
        return new DnsAnswer(DATA, records, Math.min(ttl, MxResolver.MAX_TTL_SECONDS), null);
    }

    static DnsAnswer temp(final String reason)
    {
        return new DnsAnswer(TEMP, List.of(), 0, reason);
    }

    static DnsAnswer ofFailure(final Throwable failure, final long timeoutMs)
    {
        Throwable cause = failure;
        while ((cause instanceof CompletionException || cause instanceof ExecutionException) &&
            cause.getCause() != null)
        {
            cause = cause.getCause();
        }
        if (cause instanceof TimeoutException || cause instanceof SocketTimeoutException)
        {
            return temp("Host not found, try again (timed out after " + timeoutMs + " ms)");
        }
        return temp("Host not found, try again (" + cause.getClass().getSimpleName() + ": " +
            cause.getMessage() + ")");
    }

    /** RFC 2308 §5: min(SOA TTL, SOA MINIMUM), capped; no SOA, no caching. */
    static long negativeTtl(final Message response)
    {
        for (final Record record : response.getSection(Section.AUTHORITY))
        {
            if (record instanceof SOARecord)
            {
                final long ttl = Math.min(record.getTTL(), ((SOARecord)record).getMinimum());
                return Math.min(ttl, MxResolver.MAX_NEGATIVE_TTL_SECONDS);
            }
        }
        return 0;
    }

    String describe(final String name, final int type)
    {
        return "Name service error for name=" + name + " type=" + Type.string(type) + ": " + reason;
    }
}
