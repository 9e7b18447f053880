package dev.relay.config;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;

/**
 * The relay's settings: one properties file read at start, overridden by JVM system properties of the same
 * name, validated in full ({@link ConfigLoader}, {@link CrossKeyRules}), then frozen into one small settings record
 * per stage, each holding only what its stage uses: {@link #inbound()}, {@link #admission()}, {@link #smtp()},
 * {@link #relay()}, {@link #serverTls()}, {@link #auth()}, {@link #spool()}, {@link #queue()}, {@link #delivery()},
 * {@link #dns()}, {@link #clientTls()} and {@link #metrics()}. Keys, defaults, syntaxes and bounds are listed once,
 * in {@link ConfigKey}, and each key's value is read by exactly one record (checked at every load);
 * {@code ops/relay.properties} documents each of them.
 * <p>
 * Loading reports every problem at once in a {@link ConfigException} (unknown key, bad value, duplicate key,
 * unreadable file), each naming source, line, key and value; the caller exits with
 * {@link ConfigException#EXIT_CODE}. Sizes take binary suffixes ({@code k}, {@code M}, {@code G} = 1024ⁿ);
 * durations need a unit ({@code ms}, {@code s}, {@code m}, {@code h}, {@code d}) unless they are {@code 0}.
 * <p>
 * Immutable and safe to share between threads once built.
 */
public final class RelayConfig
{
    private final InboundSettings inbound;
    private final AdmissionSettings admission;
    private final SmtpServerSettings smtp;
    private final RelayPolicy relay;
    private final ServerTlsSettings serverTls;
    private final AuthSettings auth;
    private final SpoolSettings spool;
    private final QueueSettings queue;
    private final DeliverySettings delivery;
    private final DnsSettings dns;
    private final ClientTlsSettings clientTls;
    private final MetricsSettings metrics;
    /** Every key's value as written (or its default), the resolved ones resolved: what a reload starts from. */
    private final Map<String, String> written;
    private final Map<String, String> effective;

    RelayConfig(final Map<ConfigKey, Object> parsed, final Map<ConfigKey, String> texts)
    {
        final ConfigValues values = new ConfigValues(parsed);
        // the keys two stages share are read here once and handed to both
        final String hostname = resolveHostname(values.get(ConfigKey.SMTP_HOSTNAME));
        final String tlsProvider = values.get(ConfigKey.SMTP_TLS_PROVIDER);
        final int maxRecipientsPerTransaction = values.get(ConfigKey.DELIVERY_MAX_RECIPIENTS_PER_TRANSACTION);
        inbound = InboundSettings.from(values);
        admission = AdmissionSettings.from(values);
        relay = RelayPolicy.from(values);
        smtp = SmtpServerSettings.from(values, hostname, relay);
        serverTls = ServerTlsSettings.from(values, tlsProvider);
        auth = AuthSettings.from(values);
        spool = SpoolSettings.from(values);
        queue = QueueSettings.from(values, maxRecipientsPerTransaction);
        delivery = DeliverySettings.from(values, hostname, maxRecipientsPerTransaction);
        dns = DnsSettings.from(values);
        clientTls = ClientTlsSettings.from(values, tlsProvider);
        metrics = MetricsSettings.from(values);
        values.checkEachReadOnce();

        final Map<String, String> effective = new LinkedHashMap<>();
        for (final ConfigKey key : ConfigKey.values())
        {
            effective.put(key.key(), texts.get(key));
        }
        effective.put(ConfigKey.SMTP_HOSTNAME.key(), hostname);
        effective.put(ConfigKey.SMTP_IO_THREADS.key(), Integer.toString(inbound.ioThreads()));
        effective.put(ConfigKey.DELIVERY_IO_THREADS.key(), Integer.toString(delivery.ioThreads()));
        this.written = Collections.unmodifiableMap(new LinkedHashMap<>(effective));
        if (!metrics.adminToken().isEmpty())
        {
            // check-config prints this: the secret stays in the file
            effective.put(ConfigKey.METRICS_ADMIN_TOKEN.key(), "(set, not shown)");
        }
        this.effective = Collections.unmodifiableMap(effective);
    }

    /**
     * Reads {@code file}, applies the entries of {@code systemOverrides} whose names start with one of
     * {@link ConfigKey#PREFIXES} (they win over the file), and validates everything.
     *
     * @param file            the properties file, UTF-8.
     * @param systemOverrides usually {@link System#getProperties()}; entries outside the prefixes are ignored.
     * @return the validated configuration.
     * @throws ConfigException listing every problem found.
     */
    public static RelayConfig load(final Path file, final Properties systemOverrides) throws ConfigException
    {
        return ConfigLoader.load(file, systemOverrides);
    }

    /**
     * Builds a configuration from key/value pairs, validated as a file would be; problems name line 0.
     * For tests and tools.
     *
     * @param values property names to values.
     * @return the validated configuration.
     * @throws ConfigException listing every problem found.
     */
    public static RelayConfig fromMap(final Map<String, String> values) throws ConfigException
    {
        return ConfigLoader.fromMap(values);
    }

    /**
     * @return the configuration with every key at its default.
     */
    public static RelayConfig defaults()
    {
        return ConfigLoader.defaults();
    }

    /**
     * Where the admin endpoint of a relay started from {@code file} listens ({@code metrics.listen}), read leniently:
     * {@code ops/relay reload} must reach the running relay even when the edited file no longer validates (the relay
     * then reports why). A system property wins over the file; an unreadable file or value gives the default.
     *
     * @return the address, or null when it is {@code off}.
     */
    public static InetSocketAddress metricsListenOf(final Path file, final Properties systemOverrides)
    {
        return ConfigLoader.metricsListenOf(file, systemOverrides);
    }

    /** {@code metrics.admin_token} of {@code file}, read as leniently as {@link #metricsListenOf}; empty if none. */
    public static String metricsAdminTokenOf(final Path file, final Properties systemOverrides)
    {
        return ConfigLoader.metricsAdminTokenOf(file, systemOverrides);
    }

    /** @return the inbound server's listeners, loops, buffers, drain and PROXY protocol. */
    public InboundSettings inbound()
    {
        return inbound;
    }

    /** @return what one client may do: connections, rates, the tarpit. */
    public AdmissionSettings admission()
    {
        return admission;
    }

    /** @return the inbound SMTP conversation's name, limits and timeouts. */
    public SmtpServerSettings smtp()
    {
        return smtp;
    }

    /** @return who may relay: {@code relay.networks}, {@code relay.domains}. */
    public RelayPolicy relay()
    {
        return relay;
    }

    /** @return inbound TLS. */
    public ServerTlsSettings serverTls()
    {
        return serverTls;
    }

    /** @return SMTP AUTH. */
    public AuthSettings auth()
    {
        return auth;
    }

    /** @return where the spool lives and how it writes. */
    public SpoolSettings spool()
    {
        return spool;
    }

    /** @return what the queue manager decides by, routing included. */
    public QueueSettings queue()
    {
        return queue;
    }

    /** @return the delivery loops' limits and their client's timeouts. */
    public DeliverySettings delivery()
    {
        return delivery;
    }

    /** @return delivery's MX lookups. */
    public DnsSettings dns()
    {
        return dns;
    }

    /** @return outbound TLS's trust and engine. */
    public ClientTlsSettings clientTls()
    {
        return clientTls;
    }

    /** @return the metrics and admin endpoint. */
    public MetricsSettings metrics()
    {
        return metrics;
    }

    /**
     * @return every key, in {@link ConfigKey} order, with the value in effect: as written in the file or system
     * property, or the default; {@code smtp.hostname}, {@code smtp.io_threads} and {@code delivery.io_threads} show
     * their resolved values.
     */
    public Map<String, String> effective()
    {
        return effective;
    }

    /**
     * What is in force after a reload to {@code next}: this configuration with the keys a reload applies
     * ({@link ReloadScope#NOW}, {@link ReloadScope#NEW_CONNECTIONS}, {@link ReloadScope#NEXT_ATTEMPT}) taken from
     * {@code next}; every other key keeps its value here.
     *
     * @throws ConfigException never for two valid configurations (the rules between keys involve restart-only keys).
     */
    public RelayConfig reloadedWith(final RelayConfig next) throws ConfigException
    {
        // from the values as written: the admin token is masked in effective()
        final Map<String, String> values = new LinkedHashMap<>(written);
        for (final ConfigKey key : ConfigKey.values())
        {
            final ReloadScope scope = key.reloadScope();
            if (scope != ReloadScope.RESTART && scope != ReloadScope.FILE)
            {
                values.put(key.key(), next.written.get(key.key()));
            }
        }
        return ConfigLoader.fromMap(values);
    }

    /**
     * @return the keys whose value in {@code next} differs from this one's (as written, or resolved for the keys
     * {@link #effective()} resolves), in {@link ConfigKey} order.
     */
    public List<ConfigKey> changedIn(final RelayConfig next)
    {
        final List<ConfigKey> changed = new ArrayList<>();
        for (final ConfigKey key : ConfigKey.values())
        {
            if (!written.get(key.key()).equals(next.written.get(key.key())))
            {
                changed.add(key);
            }
        }
        return changed;
    }

    /**
     * @return the effective configuration as {@code key=value} lines.
     */
    public String toString()
    {
        final StringBuilder sb = new StringBuilder();
        effective.forEach((k, v) -> sb.append(k).append('=').append(v).append('\n'));

        return sb.toString();
    }

    /** {@code smtp.hostname} as used: the machine's canonical name when empty. */
    private static String resolveHostname(final String hostname)
    {
        return hostname.isEmpty() ? machineName() : hostname;
    }

    private static String machineName()
    {
        try
        {
            final String name = InetAddress.getLocalHost().getCanonicalHostName().toLowerCase(Locale.ROOT);
            if (DomainParsers.isHostName(name))
            {
                return name;
            }
        }
        catch (final IOException | SecurityException ex)
        {
            // fall back below
        }

        return "localhost";
    }
}
