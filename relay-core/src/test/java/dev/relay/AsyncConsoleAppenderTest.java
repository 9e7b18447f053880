package dev.relay;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.util.LogbackMDCAdapter;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link AsyncConsoleAppender} in a private Logback context, writing to a capturing stream: every line arrives once
 * and in order, in fewer writes than lines; WARN does not wait for the batch delay; stop drains; a full queue drops
 * and says how many.
 */
@Timeout(60)
class AsyncConsoleAppenderTest
{
    private final LoggerContext context = new LoggerContext();
    private final CapturingStream output = new CapturingStream();
    private AsyncConsoleAppender appender;

    @AfterEach
    void stopContext()
    {
        context.stop();
    }

    @Test
    void everyLineFromManyThreadsArrivesOnceInOrderInFewerWritesThanLines() throws Exception
    {
        final Logger log = logger(1 << 16, 10);
        final int threads = 4;
        final int perThread = 5_000;
        final List<Thread> loggers = new ArrayList<>();
        for (int t = 0; t < threads; t++)
        {
            final int id = t;
            final Thread thread = new Thread(() ->
            {
                for (int i = 0; i < perThread; i++)
                {
                    log.info("t{} n{}", id, i);
                }
            });
            loggers.add(thread);
            thread.start();
        }
        for (final Thread thread : loggers)
        {
            thread.join();
        }
        appender.stop();
        final Map<String, Integer> next = new HashMap<>();
        int lines = 0;
        for (final String line : output.text().split("\n"))
        {
            final String[] parts = line.split(" ");
            final int expected = next.getOrDefault(parts[1], 0);
            assertEquals("n" + expected, parts[2], "lost, duplicated or reordered: " + line);
            next.put(parts[1], expected + 1);
            lines++;
        }
        assertEquals(threads * perThread, lines, "lost + duplicated");
        assertEquals(0, appender.droppedCount());
        assertTrue(output.writes() < lines / 10, output.writes() + " writes for " + lines + " lines");
    }

    @Test
    void warnLeavesAtOnceWhileInfoWaitsForTheBatch()
    {
        final Logger log = logger(1024, 600_000);
        log.info("first");
        // the idle writer is woken by the first line
        awaitTrue(() -> output.text().contains("first"), "first line written");
        log.info("second");
        log.warn("third");
        awaitTrue(() -> output.text().contains("third"), "WARN written long before the 10-minute batch delay");
        final String text = output.text();
        assertTrue(text.indexOf("second") < text.indexOf("third"), text);
    }

    @Test
    void stopWritesWhatIsQueued()
    {
        final Logger log = logger(1024, 600_000);
        log.info("wake");
        awaitTrue(() -> output.text().contains("wake"), "first line written");
        for (int i = 0; i < 100; i++)
        {
            log.info("queued {}", i);
        }
        appender.stop();
        final String text = output.text();
        for (int i = 0; i < 100; i++)
        {
            assertTrue(text.contains("queued " + i + "\n"), "line " + i + " lost at stop");
        }
    }

    @Test
    void aFullQueueDropsLinesAndSaysHowMany()
    {
        final Logger log = logger(4, 600_000);
        log.info("wake");
        awaitTrue(() -> output.text().contains("wake"), "first line written");
        final int logged = 2_000;
        for (int i = 0; i < logged; i++)
        {
            log.info("line {}", i);
        }
        log.warn("warning");
        awaitTrue(() -> output.text().contains("lines dropped"), "the drop reported");
        appender.stop();
        final String text = output.text();
        int written = 0;
        for (int i = 0; i < logged; i++)
        {
            written += text.contains("line " + i + "\n") ? 1 : 0;
        }
        written += text.contains("warning\n") ? 1 : 0;
        assertTrue(appender.droppedCount() > 0);
        assertEquals(logged + 1, written + appender.droppedCount(), "every line written or counted as dropped");
    }

    private Logger logger(final int queueSize, final long maxDelayMs)
    {
        // what the SLF4J provider gives the real context (the event's MDC is read when it is queued)
        context.setMDCAdapter(new LogbackMDCAdapter());
        final PatternLayoutEncoder encoder = new PatternLayoutEncoder();
        encoder.setContext(context);
        encoder.setPattern("%level %msg%n");
        encoder.start();
        appender = new AsyncConsoleAppender();
        appender.setContext(context);
        appender.setName("test");
        appender.setEncoder(encoder);
        appender.setQueueSize(queueSize);
        appender.setMaxDelayMs(maxDelayMs);
        appender.output(output);
        appender.start();
        assertTrue(appender.isStarted());
        final Logger logger = context.getLogger("test");
        logger.setLevel(Level.INFO);
        logger.setAdditive(false);
        logger.addAppender(appender);
        return logger;
    }

    private static void awaitTrue(final BooleanSupplier condition, final String what)
    {
        final long deadline = System.nanoTime() + 20_000_000_000L;
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() > deadline)
            {
                fail("not within 20 s: " + what);
            }
            LockSupport.parkNanos(1_000_000);
        }
    }

    /** Collects what is written and counts the writes. */
    private static final class CapturingStream extends OutputStream
    {
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        private int writes;

        @Override
        public synchronized void write(final int b)
        {
            bytes.write(b);
            writes++;
        }

        @Override
        public synchronized void write(final byte[] b, final int off, final int len)
        {
            bytes.write(b, off, len);
            writes++;
        }

        synchronized String text()
        {
            return bytes.toString(StandardCharsets.UTF_8);
        }

        synchronized int writes()
        {
            return writes;
        }
    }
}
