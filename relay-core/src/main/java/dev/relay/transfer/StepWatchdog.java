package dev.relay.transfer;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;

/**
 * The deadline of a {@link TransferClient}'s current step: a blocking channel has no timeout of its own, so this
 * owns a daemon thread that closes the channel when a read or a write runs past the deadline armed for it; the
 * blocked call then fails with an {@link IOException}, which the client reports as timed out.
 * <p>
 * The client's thread arms, disarms and stops it; the watchdog thread only reads the deadline and closes the
 * channel.
 */
final class StepWatchdog
{
    private final SocketChannel channel;
    private final Thread thread;
    private volatile long deadlineNs;
    private volatile boolean closed;
    private volatile boolean timedOut;

    /** Starts watching {@code channel}, with no deadline armed. */
    StepWatchdog(final SocketChannel channel)
    {
        this.channel = channel;
        this.thread = new Thread(this::watch, "transfer-watchdog");
        this.thread.setDaemon(true);
        this.thread.start();
    }

    /** Whether the watchdog closed the channel because a step ran past its deadline. */
    boolean timedOut()
    {
        return timedOut;
    }

    void arm(final long timeoutMs)
    {
        deadlineNs = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Math.max(1, timeoutMs));
    }

    void disarm()
    {
        deadlineNs = 0;
    }

    /** Ends the watchdog thread; the caller closes the channel. */
    void stop()
    {
        closed = true;
        thread.interrupt();
    }

    /** Closes the channel when a step runs past its deadline. */
    private void watch()
    {
        while (!closed)
        {
            try
            {
                Thread.sleep(200);
            }
            catch (final InterruptedException ex)
            {
                return;
            }
            final long deadline = deadlineNs;
            if (deadline != 0 && System.nanoTime() - deadline > 0)
            {
                timedOut = true;
                try
                {
                    channel.close();
                }
                catch (final IOException ex)
                {
                    // the blocked call fails either way
                }
                return;
            }
        }
    }
}
