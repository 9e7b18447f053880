package dev.relay.hardening;

import dev.relay.Relay;
import dev.relay.config.RelayConfig;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/** Shared pieces of the hardening tests: relay config, polling with a deadline, a blocking SMTP client, DNS. */
final class Hardening
{
    private Hardening()
    {
    }

    /** In-process relay on 127.0.0.1:0, one inbound loop, spool in {@code dir}; {@code keyValues} win. */
    static Map<String, String> config(final Path dir, final String... keyValues)
    {
        final Map<String, String> values = new LinkedHashMap<>();
        values.put("smtp.listen", "127.0.0.1:0");
        values.put("smtp.hostname", "relay.test");
        values.put("smtp.io_threads", "1");
        values.put("queue.dir", dir.toString());
        values.put("queue.min_free_bytes", "0");
        values.put("metrics.listen", "off");
        values.put("delivery.retry.schedule", "200ms");
        values.put("delivery.timeout.connect", "1s");
        values.put("delivery.timeout.command", "1s");
        values.put("delivery.timeout.data_init", "1s");
        values.put("delivery.timeout.data_block", "1s");
        values.put("delivery.timeout.data_done", "1s");
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

    /** Lets {@code window} of wall time pass (a measurement window, not a wait for a condition). */
    static void window(final Duration window)
    {
        final long end = System.nanoTime() + window.toNanos();
        while (System.nanoTime() - end < 0)
        {
            Await.pause();
        }
    }

    /** A small message in wire form with a unique Message-ID. */
    static byte[] message(final String from, final String to, final String id)
    {
        return ("From: <" + from + ">\r\n" +
            "To: <" + to + ">\r\n" +
            "Subject: hardening " + id + "\r\n" +
            "Message-ID: <" + id + "@client.test>\r\n" +
            "\r\n" +
            "body of " + id + "\r\n").getBytes(StandardCharsets.US_ASCII);
    }

    /** The {@code Message-ID} value of a delivered message, or null. */
    static String messageId(final byte[] content)
    {
        final String text = new String(content, StandardCharsets.UTF_8);
        final int at = text.indexOf("\r\nMessage-ID: <");
        if (at < 0)
        {
            return null;
        }
        final int start = at + "\r\nMessage-ID: <".length();
        return text.substring(start, text.indexOf('>', start));
    }
}
