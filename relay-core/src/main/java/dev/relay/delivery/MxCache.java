package dev.relay.delivery;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Bounded LRU map from a lowercase domain to the {@link MxResult} last resolved for it, each entry with its own
 * expiry (from the TTLs of the records used, see {@link MxResolver}). An expired entry goes when it is asked for,
 * when it is the least recently used at a full cache, or when it is among the {@value #PURGE_PER_PUT} least recently
 * used entries as a new one comes in: a cache that once held many domains shrinks back as their TTLs run out.
 * <p>
 * Thread-safe (one lock; every operation is a map access). {@link #put} allocates an entry; {@link #get} does not.
 */
final class MxCache
{
    private static final class Entry
    {
        final MxResult result;
        final long expiresAtNs;

        Entry(final MxResult result, final long expiresAtNs)
        {
            this.result = result;
            this.expiresAtNs = expiresAtNs;
        }
    }

    static final int PURGE_PER_PUT = 2;

    private final int capacity;
    private final LinkedHashMap<String, Entry> entries;

    MxCache(final int capacity)
    {
        if (capacity < 0)
        {
            throw new IllegalArgumentException("cacheSize < 0: " + capacity);
        }
        this.capacity = capacity;
        this.entries = new LinkedHashMap<>(16, 0.75f, true)
        {
            protected boolean removeEldestEntry(final Map.Entry<String, Entry> eldest)
            {
                return size() > MxCache.this.capacity;
            }
        };
    }

    /**
     * @param domain lowercase domain.
     * @param nowNs  current {@link System#nanoTime()}-style time.
     * @return the live result, or null when absent or expired (an expired entry is removed).
     */
    synchronized MxResult get(final String domain, final long nowNs)
    {
        final Entry entry = entries.get(domain);
        if (entry == null)
        {
            return null;
        }
        if (nowNs - entry.expiresAtNs >= 0)
        {
            entries.remove(domain);
            return null;
        }
        return entry.result;
    }

    /**
     * Stores a result unless {@code ttlSeconds} is not positive or the cache has no room at all.
     *
     * @param domain     lowercase domain.
     * @param result     result to keep.
     * @param ttlSeconds how long it stays valid.
     * @param nowNs      current time.
     */
    synchronized void put(final String domain, final MxResult result, final long ttlSeconds, final long nowNs)
    {
        if (ttlSeconds <= 0 || capacity == 0)
        {
            return;
        }
        entries.put(domain, new Entry(result, nowNs + ttlSeconds * 1_000_000_000L));
        final Iterator<Entry> eldest = entries.values().iterator();
        for (int i = 0; i < PURGE_PER_PUT && eldest.hasNext(); i++)
        {
            if (nowNs - eldest.next().expiresAtNs >= 0)
            {
                eldest.remove();
            }
        }
    }

    /** Removes every entry whose result matches {@code filter}; walks the whole cache. */
    synchronized void removeIf(final Predicate<MxResult> filter)
    {
        entries.values().removeIf((entry) -> filter.test(entry.result));
    }

    synchronized int size()
    {
        return entries.size();
    }

    synchronized void clear()
    {
        entries.clear();
    }
}
