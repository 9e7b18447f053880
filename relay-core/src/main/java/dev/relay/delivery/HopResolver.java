package dev.relay.delivery;

import java.util.function.Consumer;

/**
 * Resolves a next hop to addresses without blocking the caller: the callback may run on any thread (the delivery
 * agent re-posts it to its loop).
 */
public interface HopResolver extends AutoCloseable
{
    void resolve(NextHop hop, long nowMs, Consumer<HopAddresses> callback);

    /** An operator's flush: cached temporary failures are forgotten, so the next lookup asks again. Any thread. */
    default void flush()
    {
    }

    @Override
    default void close()
    {
    }
}
