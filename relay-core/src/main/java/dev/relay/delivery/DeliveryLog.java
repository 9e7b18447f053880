package dev.relay.delivery;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Locale;

/**
 * One log line per recipient per attempt, in the shape operators grep Postfix's smtp(8) logs for:
 * <pre>
 * 6H27MCQFW0000: to=&lt;b@y.test&gt;, relay=mx.y.test[192.0.2.7]:25, delay=0.21, dsn=2.0.0, status=sent (250 2.0.0 Ok)
 * </pre>
 * Logged through Logback's asynchronous appender: the delivery loop never waits for the console.
 */
final class DeliveryLog
{
    private static final Logger LOG = LoggerFactory.getLogger("dev.relay.smtp-out");

    private DeliveryLog()
    {
    }

    static void attempt(
        final String queueId, final String recipient, final String relay, final long delayMs, final String dsn,
        final String status, final String reply)
    {
        if (LOG.isInfoEnabled())
        {
            LOG.info("{}: to=<{}>, relay={}, delay={}, dsn={}, status={} ({})", queueId, recipient, relay,
                String.format(Locale.ROOT, "%.2f", delayMs / 1000.0), dsn, status, reply);
        }
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
