package dev.relay.it;

import dev.relay.config.ConfigException;
import dev.relay.config.RelayConfig;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * What the deployment tests share: the repository's files (ops/, the release tarball) and the relay's own reading of a
 * properties file, so that a check compares ports and paths with what the relay would really use.
 */
final class Deployment
{
    private Deployment()
    {
    }

    /** The checkout this test runs in: the directory holding ops/relay and ops/jvm.options. */
    static Path repositoryRoot()
    {
        Path dir = Path.of(System.getProperty("basedir", System.getProperty("user.dir"))).toAbsolutePath();
        while (dir != null)
        {
            if (Files.isRegularFile(dir.resolve("ops/relay")) && Files.isRegularFile(dir.resolve("ops/jvm.options")))
            {
                return dir;
            }
            dir = dir.getParent();
        }
        return fail("ops/relay not found above " + System.getProperty("user.dir"));
    }

    /** A properties file's text as the relay reads and validates it (defaults filled in), failing on any error. */
    static RelayConfig relayConfig(final String propertiesText, final String what)
    {
        try
        {
            return RelayConfig.fromMap(properties(new StringReader(propertiesText)));
        }
        catch (final ConfigException ex)
        {
            return fail(what + " is not a valid relay configuration: " + ex.getMessage());
        }
    }

    static RelayConfig relayConfig(final Path file)
    {
        try
        {
            return relayConfig(Files.readString(file, StandardCharsets.UTF_8), file.toString());
        }
        catch (final IOException ex)
        {
            return fail("cannot read " + file + ": " + ex);
        }
    }

    static Map<String, String> properties(final Reader text)
    {
        final Properties properties = new Properties();
        try
        {
            properties.load(text);
        }
        catch (final IOException ex)
        {
            return fail("not a properties file: " + ex);
        }
        final Map<String, String> values = new TreeMap<>();
        properties.stringPropertyNames().forEach(name -> values.put(name, properties.getProperty(name).trim()));
        return values;
    }

    /** The TCP ports the relay listens on with {@code config}: every smtp.listen address and metrics.listen. */
    static TreeSet<Integer> listenPorts(final RelayConfig config)
    {
        final TreeSet<Integer> ports = new TreeSet<>();
        for (final InetSocketAddress address : config.inbound().smtpListen())
        {
            ports.add(address.getPort());
        }
        if (config.metrics().listen() != null)
        {
            ports.add(config.metrics().listen().getPort());
        }
        return ports;
    }
}
