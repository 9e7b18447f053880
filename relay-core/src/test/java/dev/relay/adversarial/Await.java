package dev.relay.adversarial;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.fail;

/** Waiting by polling with a deadline (never a bare sleep as the wait itself). */
final class Await
{
    private static final long POLL_MS = 10;

    private Await()
    {
    }

    static void until(final BooleanSupplier condition, final Duration timeout, final Supplier<String> what)
    {
        final long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() - deadline > 0)
            {
                fail("timed out after " + timeout + " waiting for " + what.get());
            }
            pause();
        }
    }

    /** One short pause between two polls. */
    static void pause()
    {
        try
        {
            Thread.sleep(POLL_MS);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting", ex);
        }
    }
}
