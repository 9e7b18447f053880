package dev.relay.net;

/**
 * Work another stage runs on a loop thread once per pass (for example, the spool writer's commit completions).
 * Called only on that loop's thread.
 */
public interface LoopHook
{
    /** Runs after I/O in each pass; returns how much work it did (0 = none). */
    int doWork(long nowMs);

    /** Runs last in each pass, after all input of the pass was handled (e.g. hand a group of commits to the syncer). */
    default void endOfPass()
    {
    }

    /**
     * Whether work is waiting; checked after the loop announced it is about to park, so a producer that saw the
     * loop awake and did not wake it is not missed. Must be cheap and safe to call from the loop thread.
     */
    default boolean hasPendingWork()
    {
        return false;
    }
}
