package dev.relay.net;

import java.util.ArrayList;

/**
 * The {@link LoopHook}s of a {@link ConnectionLoop}: other stages' work run once per pass (the spool writer's commit
 * completions before the flushes, its group commit hand-off after them). A hook that throws is a bug in its stage:
 * the loop is told ({@link ConnectionLoop#onHookFailure}) and the other hooks, the loop and its connections go on.
 * <p>
 * Hooks are added before the loop starts; then loop thread only. Allocates nothing per pass.
 */
final class LoopHooks
{
    private final ConnectionLoop loop;
    private final ArrayList<LoopHook> hooks = new ArrayList<>();

    LoopHooks(final ConnectionLoop loop)
    {
        this.loop = loop;
    }

    /** Before the loop starts. */
    void add(final LoopHook hook)
    {
        hooks.add(hook);
    }

    /** Each hook's work for this pass (before the flushes); returns how much they did. */
    int run(final long nowMs)
    {
        int work = 0;
        for (int i = 0, n = hooks.size(); i < n; i++)
        {
            try
            {
                work += hooks.get(i).doWork(nowMs);
            }
            catch (final RuntimeException ex)
            {
                loop.onHookFailure(ex);
                work++;
            }
        }
        return work;
    }

    /** Each hook's end of pass (after the flushes: the group commit hand-off). */
    void endOfPass()
    {
        for (int i = 0, n = hooks.size(); i < n; i++)
        {
            try
            {
                hooks.get(i).endOfPass();
            }
            catch (final RuntimeException ex)
            {
                loop.onHookFailure(ex);
            }
        }
    }

    /** @return true when a hook has work waiting (checked after the loop announced it is about to park). */
    boolean hasPendingWork()
    {
        for (int i = 0, n = hooks.size(); i < n; i++)
        {
            if (hooks.get(i).hasPendingWork())
            {
                return true;
            }
        }
        return false;
    }
}
