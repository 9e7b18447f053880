package dev.relay.it;

import dev.relay.Relay;
import dev.relay.config.ConfigException;
import dev.relay.config.RelayConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A relay started in this JVM on 127.0.0.1 port 0 with its spool in a temp directory; close() stops it. */
final class InProcessRelay implements AutoCloseable
{
    private final Relay relay;
    private final Path spoolDir;

    private InProcessRelay(final Relay relay, final Path spoolDir)
    {
        this.relay = relay;
        this.spoolDir = spoolDir;
    }

    /** Test defaults; {@code overrides} as key, value pairs win. */
    static Map<String, String> config(final Path spoolDir, final String... overrides)
    {
        final Map<String, String> config = new LinkedHashMap<>();
        config.put("smtp.listen", "127.0.0.1:0");
        config.put("smtp.hostname", "relay.test");
        config.put("smtp.io_threads", "2");
        config.put("queue.dir", spoolDir.toString());
        config.put("queue.sync", "batch");
        config.put("queue.roll_cycle", "hourly");
        config.put("queue.min_free_bytes", "0");
        config.put("metrics.listen", "off");
        // inbound tests look at the spool: mail must stay there, neither delivered nor bounced (an MX lookup of
        // ours.test would fail and queue a DSN), so every domain goes to a closed port and waits an hour
        config.put("delivery.routes", "*=[127.0.0.1]:1");
        config.put("delivery.retry.schedule", "1h");
        for (int i = 0; i + 1 < overrides.length; i += 2)
        {
            config.put(overrides[i], overrides[i + 1]);
        }
        return config;
    }

    static InProcessRelay start(final Path spoolDir, final String... overrides) throws IOException
    {
        final RelayConfig config;
        try
        {
            config = RelayConfig.fromMap(config(spoolDir, overrides));
        }
        catch (final ConfigException ex)
        {
            throw new IllegalArgumentException("test configuration refused: " + ex.getMessage(), ex);
        }
        return new InProcessRelay(Relay.start(config), spoolDir);
    }

    int port()
    {
        return relay.smtpAddresses().get(0).getPort();
    }

    Relay relay()
    {
        return relay;
    }

    Path spoolDir()
    {
        return spoolDir;
    }

    List<SpoolContents.Stored> spooled() throws IOException
    {
        return SpoolContents.read(spoolDir);
    }

    SmtpTestClient connect() throws IOException
    {
        return SmtpTestClient.connect(port());
    }

    SmtpTestClient connectEhlo() throws IOException
    {
        return SmtpTestClient.connectEhlo(port());
    }

    @Override
    public void close() throws InterruptedException
    {
        relay.close();
    }
}
