package dev.relay.delivery;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * The outcome of one {@link MxResolver} lookup: a status, the next-hop hosts in the order to try them and a
 * message for logs and DSNs, worded after Postfix's ("Host or domain name not found. Name service error for
 * name=example.com type=MX: Host not found").
 * <p>
 * What the caller does per status: {@link Status#OK} try {@link #hosts()} in order; {@link Status#NULL_MX}
 * bounce with 5.1.10 (RFC 7505 §4.2); {@link Status#NXDOMAIN} bounce with 5.1.2; {@link Status#NO_ADDRESS} and
 * {@link Status#TEMP_FAILURE} defer (4.4.3 / 4.4.4), as Postfix does.
 * <p>
 * Immutable; any thread. {@link #hosts()} is sorted by preference; the resolver hands each caller a copy with
 * equal preferences shuffled ({@link #shuffled(Random)}) and the time its cache entry has left
 * ({@link #validForMs()}).
 */
public final class MxResult
{
    /**
     * Kind of answer.
     */
    public enum Status
    {
        /** At least one host with at least one address. */
        OK,
        /** The domain publishes a null MX (RFC 7505): it accepts no mail. */
        NULL_MX,
        /** The domain does not exist, or its name is not valid. */
        NXDOMAIN,
        /** The domain exists, but neither its MX hosts nor (without MX records) the domain itself have addresses. */
        NO_ADDRESS,
        /** SERVFAIL, REFUSED, a timeout, an unreadable answer or a network error: try again later. */
        TEMP_FAILURE
    }

    private final Status status;
    private final List<MxHost> hosts;
    private final String message;
    /** When the resolver's cache entry of this result expires ({@code nanoTime} scale); 0 when not cached. */
    private final long expiresAtNs;
    /** How long the caller may use this result; 0 when unknown or not cached. */
    private final long validForMs;

    /**
     * @param status  kind of answer.
     * @param hosts   hosts in the order to try; copied; empty unless {@code status} is {@link Status#OK}.
     * @param message text for logs and DSNs.
     */
    public MxResult(final Status status, final List<MxHost> hosts, final String message)
    {
        this(status, List.copyOf(hosts), message, 0, 0);
        if (status == Status.OK && hosts.isEmpty())
        {
            throw new IllegalArgumentException("OK needs at least one host");
        }
    }

    private MxResult(
        final Status status, final List<MxHost> hosts, final String message, final long expiresAtNs,
        final long validForMs)
    {
        this.status = status;
        this.hosts = hosts;
        this.message = message;
        this.expiresAtNs = expiresAtNs;
        this.validForMs = validForMs;
    }

    /**
     * A result without hosts.
     *
     * @param status  anything but {@link Status#OK}.
     * @param message text for logs and DSNs.
     * @return the result.
     */
    public static MxResult failure(final Status status, final String message)
    {
        return new MxResult(status, List.of(), message);
    }

    /**
     * @return kind of answer.
     */
    public Status status()
    {
        return status;
    }

    /**
     * @return hosts in the order to try them; empty unless {@link Status#OK}.
     */
    public List<MxHost> hosts()
    {
        return hosts;
    }

    /**
     * @return text for logs and DSNs.
     */
    public String message()
    {
        return message;
    }

    /**
     * @return how long this answer stays valid from when the resolver handed it over (what its cache entry has
     * left: the TTL of the records used, or the negative TTL); 0 when it was not cached.
     */
    public long validForMs()
    {
        return validForMs;
    }

    /** When the resolver's cache entry of this result expires, on its clock; 0 when not cached. */
    long expiresAtNs()
    {
        return expiresAtNs;
    }

    /** This result as cached until {@code atNs}. */
    MxResult expiringAt(final long atNs)
    {
        return new MxResult(status, hosts, message, atNs, validForMs);
    }

    /** This result as handed to a caller that may use it for {@code ms}. */
    MxResult validFor(final long ms)
    {
        return ms == validForMs ? this : new MxResult(status, hosts, message, expiresAtNs, ms);
    }

    /**
     * @return true when the caller should bounce rather than defer ({@link Status#NULL_MX}, {@link Status#NXDOMAIN}).
     */
    public boolean isPermanentFailure()
    {
        return status == Status.NULL_MX || status == Status.NXDOMAIN;
    }

    /**
     * This result with hosts of equal preference in random order (RFC 5321 §5.1: "the SMTP client SHOULD
     * randomize them to spread the load"). Expects {@link #hosts()} sorted by preference.
     *
     * @param random source of randomness.
     * @return this when no two hosts share a preference, else a new result.
     */
    public MxResult shuffled(final Random random)
    {
        final int size = hosts.size();
        boolean tie = false;
        for (int i = 1; i < size && !tie; i++)
        {
            tie = hosts.get(i).preference() == hosts.get(i - 1).preference();
        }
        if (!tie)
        {
            return this;
        }

        final List<MxHost> copy = new ArrayList<>(hosts);
        int start = 0;
        while (start < size)
        {
            int end = start + 1;
            while (end < size && copy.get(end).preference() == copy.get(start).preference())
            {
                end++;
            }
            if (end - start > 1)
            {
                Collections.shuffle(copy.subList(start, end), random);
            }
            start = end;
        }
        return new MxResult(status, List.copyOf(copy), message, expiresAtNs, validForMs);
    }

    /**
     * {@inheritDoc}
     */
    public String toString()
    {
        return "MxResult{" + status + ", " + hosts + ", '" + message + "'}";
    }
}
