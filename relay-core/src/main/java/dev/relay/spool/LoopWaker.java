package dev.relay.spool;

/**
 * Wakes the loop thread that owns a {@link SpoolWriter} after the syncer posted completions to it, so the loop
 * calls {@link SpoolWriter#drainCompletions()} soon (for a selector loop: {@code selector.wakeup()} when parked).
 * <p>
 * Called on the {@code spool-syncer} thread; must not block and should not allocate.
 */
@FunctionalInterface
public interface LoopWaker
{
    void wakeup();
}
