package dev.relay.e2e;

import dev.relay.Relay;
import dev.relay.testing.Await;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * What the end-to-end tests of delivery faults and DSNs share: an in-process relay whose destination domain
 * {@code example.test} routes to one {@link TestSmtpSink} ({@link #dest}) and whose sender domain {@code client.test}
 * routes to another ({@link #senderSink}), where bounces and other DSNs arrive; the delivery log captured; all of it
 * closed after each test.
 */
abstract class RelayWithSenderSink
{
    static final Duration WAIT = Duration.ofSeconds(20);
    static final String SENDER = "alice@client.test";

    @TempDir
    Path spool;

    TestSmtpSink dest;
    TestSmtpSink senderSink;
    Relay relay;
    E2e.DeliveryLogCapture log;

    @BeforeEach
    void sinks() throws Exception
    {
        log = new E2e.DeliveryLogCapture();
        dest = TestSmtpSink.start();
        senderSink = TestSmtpSink.start();
    }

    @AfterEach
    void closeAll()
    {
        try
        {
            Await.closeQuietly(relay);
        }
        finally
        {
            Await.closeQuietly(dest);
            Await.closeQuietly(senderSink);
            log.close();
        }
    }

    /** Starts the relay with the two routes and {@code extra} key, value pairs. */
    Relay start(final String... extra) throws Exception
    {
        final List<String> keys = new ArrayList<>(List.of("delivery.routes",
            "example.test=127.0.0.1:" + dest.port() + ",client.test=127.0.0.1:" + senderSink.port()));
        keys.addAll(List.of(extra));
        relay = E2e.start(E2e.config(spool, keys.toArray(new String[0])));
        return relay;
    }
}
