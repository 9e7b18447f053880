package dev.relay;

import dev.relay.config.RelayConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The relay as an operating-system process ({@link RelayMain}'s {@code run}): the signals (SIGTERM and SIGINT
 * drain and stop, SIGHUP reloads), the exit codes of a start that fails, and the exit when a stage thread dies.
 * Its log lines are {@link Relay}'s. Static; the main thread, the JVM's signal thread and dying stage threads.
 */
final class RelayProcess
{
    private static final Logger LOG = LoggerFactory.getLogger(Relay.class);

    private RelayProcess()
    {
    }

    /**
     * A stage thread died of an {@code Error} (a bug, or the JVM in trouble: out of memory, a fault in mapped
     * memory). A relay with a dead loop would keep its port and serve nobody, so under {@link RelayMain} the process
     * ends with exit code 70 for its supervisor to restart it; every message that got a 250 is in the spool.
     */
    static void onStageDeath(final Thread thread, final Throwable failure)
    {
        LOG.error("stage thread {} died", thread.getName(), failure);
        if (haltOnStageDeath)
        {
            System.err.println("relay: stage thread " + thread.getName() + " died: " + failure + "; exiting 70");
            Runtime.getRuntime().halt(70);
        }
    }

    private static volatile boolean haltOnStageDeath;

    /**
     * Runs until SIGTERM or SIGINT, then drains; SIGHUP reloads the configuration from {@code source}. Returns the
     * process exit code.
     */
    static int runUntilStopped(final RelayConfig config, final ConfigReload.Source source)
    {
        haltOnStageDeath = true;
        // the JVM's default for SIGHUP is to exit (129): from here on it reloads (once started; ignored before), on
        // the thread the JVM runs signal handlers on
        final AtomicReference<Relay> started = new AtomicReference<>();
        final SignalHandler previousHup = Signal.handle(new Signal("HUP"), signal ->
        {
            final Relay running = started.get();
            if (running == null)
            {
                LOG.warn("received SIGHUP while starting: ignored (the configuration being started is the file's)");
                return;
            }
            LOG.info("received SIGHUP: reloading the configuration");
            running.reload();
        });
        if (previousHup == SignalHandler.SIG_IGN)
        {
            // the JVM keeps a signal ignored at launch ignored (nohup does that): say so rather than fail silently
            LOG.warn("SIGHUP was ignored when this process started (under nohup?) and stays ignored: reload with "
                + "`ops/relay reload` instead");
        }
        final long preloadStartNs = System.nanoTime();
        final int preloaded = ClassPreloader.loadAll();
        LOG.debug("{} classes preloaded in {} ms", preloaded, (System.nanoTime() - preloadStartNs) / 1_000_000);
        final Relay relay;
        try
        {
            relay = Relay.start(config);
        }
        catch (final Relay.SpoolUnavailableException ex)
        {
            System.err.println("relay: spool directory unusable: " + ex.getMessage());
            return RelayMain.EXIT_CONFIG;
        }
        catch (final Relay.UnusableFileException ex)
        {
            System.err.println("relay: invalid configuration:");
            System.err.println(ex.getMessage());
            return RelayMain.EXIT_CONFIG;
        }
        catch (final IOException ex)
        {
            System.err.println("relay: cannot start: " + ex);
            return RelayMain.EXIT_FAILURE;
        }
        final CountDownLatch stop = new CountDownLatch(1);
        final SignalHandler onSignal = signal ->
        {
            LOG.info("received SIG{}", signal.getName());
            stop.countDown();
        };
        Signal.handle(new Signal("TERM"), onSignal);
        Signal.handle(new Signal("INT"), onSignal);
        relay.configSource(source);
        started.set(relay);
        try
        {
            stop.await();
            relay.drainAndClose();
            return RelayMain.EXIT_OK;
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            return RelayMain.EXIT_FAILURE;
        }
    }
}
