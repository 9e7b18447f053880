package dev.relay.testing;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.fail;

/** Waiting by polling with a deadline (never a bare sleep as the wait itself), and closing what a test opened. */
public final class Await
{
    private static final long POLL_MS = 10;

    private Await()
    {
    }

    public static void until(final BooleanSupplier condition, final Duration timeout, final Supplier<String> what)
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

    /** {@link #until} for the in-process tests' shape: {@code state} says where things stood at the deadline. */
    public static void until(final String what, final Duration timeout, final BooleanSupplier condition,
        final Supplier<String> state)
    {
        until(condition, timeout, () -> what + "; " + state.get());
    }

    /** Closes {@code closeable} (null is fine); a failure to close fails the test. */
    public static void closeQuietly(final AutoCloseable closeable)
    {
        if (closeable == null)
        {
            return;
        }
        try
        {
            closeable.close();
        }
        catch (final Exception ex)
        {
            throw new AssertionError("close failed: " + closeable, ex);
        }
    }

    /** One short pause between two polls. */
    public static void pause()
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
