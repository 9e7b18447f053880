package dev.relay.delivery;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One log line per recipient per attempt, in the shape operators grep Postfix's smtp(8) logs for:
 * <pre>
 * 6H27MCQFW0000: to=&lt;b@y.test&gt;, relay=mx.y.test[192.0.2.7]:25, tls=TLSv1.3, delay=0.21, dsn=2.0.0,
 *   status=sent (250 Ok)
 * </pre>
 * ({@code tls=none} for a transaction in plaintext or none at all), and one line per connection whose TLS handshake
 * finished, as Postfix's smtp(8) says it:
 * <pre>
 * Verified TLS connection established to mx.y.test[192.0.2.7]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384
 * </pre>
 * Logged through the relay's asynchronous appender: the delivery loop never waits for the console.
 */
final class DeliveryLog
{
    private static final Logger LOG = LoggerFactory.getLogger("dev.relay.smtp-out");

    private DeliveryLog()
    {
    }

    static void attempt(
        final String queueId, final String recipient, final String relay, final String tls, final long delayMs,
        final String dsn, final String status, final String reply)
    {
        if (LOG.isInfoEnabled())
        {
            LOG.info("{}: to=<{}>, relay={}, tls={}, delay={}, dsn={}, status={} ({})", queueId, recipient, relay,
                tls == null ? "none" : tls, seconds(delayMs), dsn, status, reply);
        }
    }

    /**
     * {@code delay=} as Postfix writes it, seconds with two decimals rounded half up: what
     * {@code String.format("%.2f")} gave, without the Formatter and the DecimalFormatSymbols it builds per call (one
     * line per message).
     */
    static String seconds(final long ms)
    {
        final long hundredths = (Math.abs(ms) + 5) / 10;
        final StringBuilder text = new StringBuilder(12);
        if (ms < 0)
        {
            text.append('-');
        }
        text.append(hundredths / 100).append('.');
        final long fraction = hundredths % 100;
        if (fraction < 10)
        {
            text.append('0');
        }
        return text.append(fraction).toString();
    }

    /** The host and address tried, as Postfix names them: {@code mx2.example[192.0.2.3]:25}; "none" for none. */
    static String relay(final HopAddress address)
    {
        if (address == null)
        {
            return "none";
        }
        return address.host() + "[" + address.address().getAddress().getHostAddress() + "]:" +
            address.address().getPort();
    }

    static void info(final String format, final Object... args)
    {
        LOG.info(format, args);
    }

    static void warn(final String format, final Object... args)
    {
        LOG.warn(format, args);
    }

    static void error(final String format, final Object... args)
    {
        LOG.error(format, args);
    }
}
