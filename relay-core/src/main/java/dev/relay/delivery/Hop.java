package dev.relay.delivery;

import java.util.List;

/**
 * The addresses of one next hop and the health of each: its resolved addresses in MX order, the lookup under way,
 * each address's back-off, and the one probe. The connections and waiting jobs are its {@link HopPool}'s.
 * <p>
 * The MX list is walked on every attempt, as Postfix's smtp does (smtp_connect.c): a new connection goes to the
 * most preferred address that is not backed off, addresses of equal preference taking turns. An address that
 * refuses, times out, refuses the greeting (4xx or 5xx, Postfix {@code smtp_skip_5xx_greeting}) or breaks a
 * session is backed off on its own (1 s doubling to 60 s), and the next one is used at once. When its back-off
 * ends, a probe connection tests it — one probe per hop at a time, so a dead destination sees no reconnect storm —
 * and a finished transaction on it makes it healthy again. Only when every address is backed off and no
 * connection is left is the hop's mail deferred ("delivery temporarily suspended") until a back-off ends.
 * <p>
 * At TLS level {@code may}, an address whose TLS handshake failed gets plaintext for a while
 * ({@link #fallBackToPlaintext}): the mail goes at once on a plaintext connection instead of failing the same
 * handshake on every new one, and TLS is tried again once the time is up. A failed handshake is not a back-off.
 * <p>
 * Owned by the delivery loop the hop belongs to; no allocation except a new address list per lookup.
 */
final class Hop
{
    static final long BACKOFF_MIN_MS = 1_000;
    static final long BACKOFF_MAX_MS = 60_000;
    /** How long an address whose TLS handshake failed (at {@code may}) gets plaintext. */
    static final long PLAINTEXT_FALLBACK_MS = 3_600_000;
    private static final AddressHealth[] NO_ADDRESSES = new AddressHealth[0];

    final NextHop nextHop;

    private HopAddresses addresses;
    private boolean resolving;
    private AddressHealth[] health = NO_ADDRESSES;
    /** The one connection testing an address whose back-off ended, until it finishes a transaction or closes. */
    private HopConnection probe;
    private String lastFailure;
    /** The RFC 3463 code of {@link #lastFailure} (4.4.1 unless TLS's demands failed: 4.7.4, 4.7.5). */
    private String lastFailureCode = "4.4.1";
    /** Turns among healthy addresses of equal preference (RFC 5321 §5.1: spread the load). */
    private int turn;

    /** Back-off state of one address. */
    private static final class AddressHealth
    {
        final HopAddress address;
        int failures;
        long retryAtMs;
        /** Until when connections to it skip STARTTLS (its handshake failed at {@code may}); 0 for never. */
        long plaintextUntilMs;

        AddressHealth(final HopAddress address)
        {
            this.address = address;
        }
    }

    Hop(final NextHop nextHop)
    {
        this.nextHop = nextHop;
    }

    /** The last lookup's answer, or null before the first one. */
    HopAddresses addresses()
    {
        return addresses;
    }

    /** Never looked up, or the answer expired while no connection uses it ({@code inUse} false). */
    boolean needsLookup(final long nowMs, final boolean inUse)
    {
        return addresses == null || (addresses.expiresAtMs() <= nowMs && !inUse);
    }

    /** True when a lookup should start now (the caller starts it): none is under way. */
    boolean startLookup()
    {
        if (resolving)
        {
            return false;
        }
        resolving = true;
        return true;
    }

    /** A lookup answered: addresses known before keep their back-off (a refresh does not revive a dead host). */
    void resolved(final HopAddresses result)
    {
        final List<HopAddress> list = result.addresses();
        final AddressHealth[] next = list.isEmpty() ? NO_ADDRESSES : new AddressHealth[list.size()];
        for (int i = 0; i < next.length; i++)
        {
            next[i] = new AddressHealth(list.get(i));
            final AddressHealth known = healthOf(list.get(i));
            if (known != null)
            {
                next[i].failures = known.failures;
                next[i].retryAtMs = known.retryAtMs;
                next[i].plaintextUntilMs = known.plaintextUntilMs;
            }
        }
        resolving = false;
        addresses = result;
        health = next;
    }

    /** An operator's flush: every back-off ends now (probes walk the list again), a failed lookup is asked again. */
    void flush()
    {
        for (final AddressHealth address : health)
        {
            address.retryAtMs = 0;
        }
        if (!resolving && addresses != null && !addresses.ok())
        {
            addresses = null;
        }
    }

    /**
     * Where the next new connection goes, or null when none may be opened now. Preference groups in order: an
     * address whose back-off ended gets the probe when none is out; else the group's healthy addresses take turns;
     * a group with neither is skipped for the next.
     */
    HopAddress nextAddress(final long nowMs)
    {
        int group = 0;
        while (group < health.length)
        {
            final int preference = health[group].address.preference();
            int end = group;
            int healthy = 0;
            for (; end < health.length && health[end].address.preference() == preference; end++)
            {
                final AddressHealth address = health[end];
                if (address.failures == 0)
                {
                    healthy++;
                }
                else if (probe == null && nowMs >= address.retryAtMs)
                {
                    return address.address;
                }
            }
            if (healthy > 0)
            {
                int pick = Math.floorMod(turn++, healthy);
                for (int i = group; i < end; i++)
                {
                    if (health[i].failures == 0 && pick-- == 0)
                    {
                        return health[i].address;
                    }
                }
            }
            group = end;
        }
        return null;
    }

    /** Every address is backed off: nothing to connect to until a back-off ends (or a flush ends them all). */
    boolean allBackedOff(final long nowMs)
    {
        for (final AddressHealth address : health)
        {
            if (address.failures == 0 || nowMs >= address.retryAtMs)
            {
                return false;
            }
        }
        return true;
    }

    /**
     * Nothing here needs keeping: no lookup under way, no probe out, no address backed off now (a back-off
     * that ran out is forgotten with the hop, as qmgr forgets a destination once its queue is empty) and no address
     * on plaintext after a failed handshake (forgotten, the next connection would try STARTTLS again at once).
     */
    boolean isQuiet(final long nowMs)
    {
        if (resolving || probe != null)
        {
            return false;
        }
        for (final AddressHealth address : health)
        {
            if (address.failures > 0 && nowMs < address.retryAtMs || nowMs < address.plaintextUntilMs)
            {
                return false;
            }
        }
        return true;
    }

    /** Why the last address failed ("connect to mx.example[192.0.2.1]:25: ..."), for deferrals; null if none did. */
    String lastFailure()
    {
        return lastFailure;
    }

    /** The RFC 3463 code for deferring mail with {@link #lastFailure()}: 4.4.1, or 4.7.x when TLS could not be had. */
    String lastFailureCode()
    {
        return lastFailureCode;
    }

    /** Whether connections to {@code address} skip STARTTLS now (its handshake failed at {@code may} lately). */
    boolean plaintextOnly(final HopAddress address, final long nowMs)
    {
        final AddressHealth known = healthOf(address);
        return known != null && nowMs < known.plaintextUntilMs;
    }

    /** The TLS handshake with {@code address} failed at {@code may}: plaintext to it until {@code untilMs}. */
    void fallBackToPlaintext(final HopAddress address, final long untilMs)
    {
        final AddressHealth known = healthOf(address);
        if (known != null)
        {
            known.plaintextUntilMs = untilMs;
        }
    }

    /** A connection is being opened (from {@link #nextAddress}): to a backed-off address, it is the probe. */
    void opened(final HopConnection connection)
    {
        final AddressHealth address = healthOf(connection.address());
        if (address != null && address.failures > 0)
        {
            probe = connection;
        }
    }

    /** The peer spoke SMTP to the end of a transaction on {@code connection} (whatever its replies): healthy. */
    void transactionCompleted(final HopConnection connection)
    {
        final AddressHealth address = healthOf(connection.address());
        if (address != null)
        {
            address.failures = 0;
            address.retryAtMs = 0;
        }
        if (probe == connection)
        {
            probe = null;
        }
    }

    /**
     * {@code connection} is gone. With a {@code failure} (refused, timed out, greeting refused, session broken, TLS
     * required and not had; {@code failureCode} its RFC 3463 code) its address is backed off, the back-off doubling
     * per failure; connections that fail while it is backed off (opened before its first failure, and failing with
     * it) count once.
     */
    void closed(final HopConnection connection, final String failure, final String failureCode, final long nowMs)
    {
        if (failure != null)
        {
            lastFailure = failure;
            lastFailureCode = failureCode;
            final AddressHealth address = healthOf(connection.address());
            if (address != null && (address.failures == 0 || probe == connection || nowMs >= address.retryAtMs))
            {
                address.failures++;
                final long backOffMs = BACKOFF_MIN_MS << Math.min(address.failures - 1, 6);
                address.retryAtMs = nowMs + Math.min(BACKOFF_MAX_MS, backOffMs);
            }
        }
        if (probe == connection)
        {
            probe = null;
        }
    }

    private AddressHealth healthOf(final HopAddress address)
    {
        for (final AddressHealth known : health)
        {
            if (known.address.address().equals(address.address()))
            {
                return known;
            }
        }
        return null;
    }

    @Override
    public String toString()
    {
        return nextHop.key();
    }
}
