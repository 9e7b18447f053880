package dev.relay.e2e;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.relay.Relay;
import dev.relay.config.RelayConfig;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** Shared pieces of the delivery end-to-end tests: relay config and start, polling with a deadline, messages, logs. */
final class E2e
{
    private E2e()
    {
    }

    /**
     * A config for an in-process relay on 127.0.0.1 (ephemeral port), spool in {@code dir}, one inbound loop (the
     * machine has two cores), short retries and timeouts; {@code keyValues} (key, value, key, value...) win.
     */
    static Map<String, String> config(final Path dir, final String... keyValues)
    {
        final Map<String, String> values = new LinkedHashMap<>();
        values.put("smtp.listen", "127.0.0.1:0");
        values.put("smtp.hostname", "relay.test");
        values.put("smtp.io_threads", "1");
        values.put("queue.dir", dir.toString());
        values.put("metrics.listen", "off");
        values.put("delivery.retry.schedule", "200ms");
        values.put("delivery.timeout.connect", "2s");
        for (int i = 0; i + 1 < keyValues.length; i += 2)
        {
            values.put(keyValues[i], keyValues[i + 1]);
        }
        return values;
    }

    static Relay start(final Map<String, String> config) throws Exception
    {
        return Relay.start(RelayConfig.fromMap(config));
    }

    static InetSocketAddress smtp(final Relay relay)
    {
        return relay.smtpAddresses().get(0);
    }

    /** A small message in wire form (CRLF, dot-stuffed, no final {@code .CRLF}) with a unique Message-ID. */
    static byte[] message(final String from, final String to, final String id)
    {
        return ("From: <" + from + ">\r\n" +
            "To: <" + to + ">\r\n" +
            "Subject: e2e " + id + "\r\n" +
            "Message-ID: <" + id + "@client.test>\r\n" +
            "\r\n" +
            "body of " + id + "\r\n").getBytes(StandardCharsets.US_ASCII);
    }

    static String text(final byte[] bytes)
    {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** The {@code Message-ID} value of a delivered message, or null. */
    static String messageId(final byte[] content)
    {
        final String text = text(content);
        final int at = text.indexOf("\r\nMessage-ID: <");
        if (at < 0)
        {
            return null;
        }
        final int start = at + "\r\nMessage-ID: <".length();
        return text.substring(start, text.indexOf('>', start));
    }

    /** Spool cycle files ({@code *.cq4}) directly in {@code dir}. */
    static List<Path> cycleFiles(final Path dir) throws IOException
    {
        final List<Path> files = new ArrayList<>();
        try (Stream<Path> list = Files.list(dir))
        {
            list.filter(path -> path.getFileName().toString().endsWith(".cq4")).forEach(files::add);
        }
        return files;
    }

    static long bytes(final List<Path> files) throws IOException
    {
        long sum = 0;
        for (final Path file : files)
        {
            sum += Files.exists(file) ? Files.size(file) : 0;
        }
        return sum;
    }

    /** Captures the delivery log ({@code dev.relay.smtp-out}, INFO) while open; the console stays quiet. */
    static final class DeliveryLogCapture implements AutoCloseable
    {
        private final Logger logger = (Logger)LoggerFactory.getLogger("dev.relay.smtp-out");
        private final ListAppender<ILoggingEvent> appender = new ListAppender<>();
        private final Level level = logger.getLevel();
        private final boolean additive = logger.isAdditive();

        DeliveryLogCapture()
        {
            appender.start();
            logger.addAppender(appender);
            logger.setLevel(Level.INFO);
            logger.setAdditive(false);
        }

        List<String> lines()
        {
            final List<String> lines = new ArrayList<>();
            synchronized (appender) // AppenderBase.doAppend locks the appender
            {
                for (final ILoggingEvent event : appender.list)
                {
                    lines.add(event.getFormattedMessage());
                }
            }
            return lines;
        }

        boolean any(final String... parts)
        {
            for (final String line : lines())
            {
                boolean all = true;
                for (final String part : parts)
                {
                    all &= line.contains(part);
                }
                if (all)
                {
                    return true;
                }
            }
            return false;
        }

        @Override
        public void close()
        {
            logger.detachAppender(appender);
            logger.setLevel(level);
            logger.setAdditive(additive);
            appender.stop();
        }
    }
}
