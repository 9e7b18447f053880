package dev.relay.config;

import dev.relay.spool.SyncMode;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;

/**
 * The relay's settings: one properties file read at start, overridden by JVM system properties of the same
 * name, validated in full, then frozen. Keys, defaults and syntaxes are listed once, in {@link ConfigKey};
 * {@code ops/relay.properties} documents each of them.
 * <p>
 * Loading reports every problem at once in a {@link ConfigException} (unknown key, bad value, duplicate key,
 * unreadable file), each naming source, line, key and value; the caller exits with
 * {@link ConfigException#EXIT_CODE}. Sizes take binary suffixes ({@code k}, {@code M}, {@code G} = 1024ⁿ);
 * durations need a unit ({@code ms}, {@code s}, {@code m}, {@code h}, {@code d}) unless they are {@code 0}.
 * <p>
 * Immutable and safe to share between threads once built. Accessors do not allocate, except
 * {@link #routeFor(String)}, {@link #tlsLevelFor(String)} and {@link #isRelayDomain(String)}, which may create
 * suffix strings.
 */
public final class RelayConfig
{
    private static final String SYSTEM_SOURCE = "system property";
    private static final String MAP_SOURCE = "map";

    private final List<InetSocketAddress> smtpListen;
    private final String smtpHostname;
    private final long smtpMaxMessageSize;
    private final int smtpMaxRecipients;
    private final int smtpMaxConnections;
    private final int smtpMaxConnectionsPerIp;
    private final boolean smtpLimitsExemptRelayNetworks;
    private final int smtpIoThreads;
    private final Duration smtpCommandTimeout;
    private final Duration smtpDataTimeout;
    private final Duration smtpDrainTimeout;
    private final int smtpMaxErrors;
    private final int smtpSoftErrorLimit;
    private final boolean smtpSingleAcceptor;
    private final Duration smtpErrorDelay;
    private final int smtpRateConnectionsPerMinute;
    private final int smtpRateMessagesPerMinute;
    private final long queueMaxBytes;
    private final int smtpMaxHops;
    private final int smtpMaxCommandLength;
    private final int smtpBufferSize;
    private final Path smtpTlsCert;
    private final Path smtpTlsKey;
    private final boolean smtpTlsRequired;
    private final String smtpTlsProvider;
    private final Duration smtpTlsHandshakeTimeout;
    private final Duration smtpTlsReloadInterval;
    private final Path smtpAuthUsers;
    private final boolean smtpAuthAllowPlaintext;
    private final int smtpRateAuthFailuresPerMinute;
    private final boolean smtpProxyProtocol;
    private final NetworkList smtpProxyNetworks;
    private final Duration smtpProxyTimeout;
    private final List<InetSocketAddress> submissionListen;
    private final List<InetSocketAddress> submissionsListen;
    private final NetworkList relayNetworks;
    private final Set<String> relayDomains;
    private final Path queueDir;
    private final SyncMode queueSync;
    private final Duration queueMaxAge;
    private final String queueRollCycle;
    private final long queueMinFreeBytes;
    private final int queueActiveLimit;
    private final List<Route> deliveryRoutes;
    private final TlsLevel deliveryTls;
    private final List<TlsPolicy> deliveryTlsPolicy;
    private final Path deliveryTlsCaFile;
    private final List<Duration> deliveryRetrySchedule;
    private final int deliveryIoThreads;
    private final int deliveryMaxConnectionsPerHop;
    private final int deliveryMaxConnections;
    private final int deliveryMaxMessagesPerConnection;
    private final Duration deliveryIdleTimeout;
    private final int deliveryMaxRecipientsPerTransaction;
    private final int deliverySmtpPort;
    private final List<InetSocketAddress> deliveryDnsServers;
    private final int deliveryDnsMaxInFlight;
    private final int deliveryDnsCacheSize;
    private final Duration deliveryConnectTimeout;
    private final Duration deliveryCommandTimeout;
    private final Duration deliveryDataInitTimeout;
    private final Duration deliveryDataBlockTimeout;
    private final Duration deliveryDataDoneTimeout;
    private final long deliveryMinDataRate;
    private final Duration deliveryDelayWarning;
    private final InetSocketAddress metricsListen;
    private final String metricsAdminToken;

    private final Map<String, Route> exactRoutes = new HashMap<>();
    private final Map<String, Route> suffixRoutes = new HashMap<>();
    private final Route catchAllRoute;
    private final Map<String, TlsLevel> exactTlsLevels = new HashMap<>();
    private final Map<String, TlsLevel> suffixTlsLevels = new HashMap<>();
    private final TlsLevel catchAllTlsLevel;
    private final Map<String, String> effective;

    @SuppressWarnings("unchecked")
    private RelayConfig(final Map<ConfigKey, Object> values, final Map<ConfigKey, String> texts)
    {
        smtpListen = (List<InetSocketAddress>)values.get(ConfigKey.SMTP_LISTEN);
        final String hostname = (String)values.get(ConfigKey.SMTP_HOSTNAME);
        smtpHostname = hostname.isEmpty() ? machineName() : hostname;
        smtpMaxMessageSize = (Long)values.get(ConfigKey.SMTP_MAX_MESSAGE_SIZE);
        smtpMaxRecipients = (Integer)values.get(ConfigKey.SMTP_MAX_RECIPIENTS);
        smtpMaxConnections = (Integer)values.get(ConfigKey.SMTP_MAX_CONNECTIONS);
        smtpMaxConnectionsPerIp = (Integer)values.get(ConfigKey.SMTP_MAX_CONNECTIONS_PER_IP);
        smtpLimitsExemptRelayNetworks = (Boolean)values.get(ConfigKey.SMTP_LIMITS_EXEMPT_RELAY_NETWORKS);
        smtpIoThreads = (Integer)values.get(ConfigKey.SMTP_IO_THREADS);
        smtpCommandTimeout = (Duration)values.get(ConfigKey.SMTP_TIMEOUT_COMMAND);
        smtpDataTimeout = (Duration)values.get(ConfigKey.SMTP_TIMEOUT_DATA);
        smtpDrainTimeout = (Duration)values.get(ConfigKey.SMTP_DRAIN_TIMEOUT);
        smtpMaxErrors = (Integer)values.get(ConfigKey.SMTP_MAX_ERRORS);
        smtpSoftErrorLimit = (Integer)values.get(ConfigKey.SMTP_SOFT_ERROR_LIMIT);
        smtpSingleAcceptor = "acceptor".equals(values.get(ConfigKey.SMTP_ACCEPT));
        smtpErrorDelay = (Duration)values.get(ConfigKey.SMTP_ERROR_DELAY);
        smtpRateConnectionsPerMinute = (Integer)values.get(ConfigKey.SMTP_RATE_CONNECTIONS_PER_MINUTE);
        smtpRateMessagesPerMinute = (Integer)values.get(ConfigKey.SMTP_RATE_MESSAGES_PER_MINUTE);
        queueMaxBytes = (Long)values.get(ConfigKey.QUEUE_MAX_BYTES);
        smtpMaxHops = (Integer)values.get(ConfigKey.SMTP_MAX_HOPS);
        smtpMaxCommandLength = (Integer)values.get(ConfigKey.SMTP_MAX_COMMAND_LENGTH);
        smtpBufferSize = (Integer)values.get(ConfigKey.SMTP_BUFFER_SIZE);
        smtpTlsCert = (Path)values.get(ConfigKey.SMTP_TLS_CERT);
        smtpTlsKey = (Path)values.get(ConfigKey.SMTP_TLS_KEY);
        smtpTlsRequired = (Boolean)values.get(ConfigKey.SMTP_TLS_REQUIRED);
        smtpTlsProvider = (String)values.get(ConfigKey.SMTP_TLS_PROVIDER);
        smtpTlsHandshakeTimeout = (Duration)values.get(ConfigKey.SMTP_TLS_HANDSHAKE_TIMEOUT);
        smtpTlsReloadInterval = (Duration)values.get(ConfigKey.SMTP_TLS_RELOAD_INTERVAL);
        smtpAuthUsers = (Path)values.get(ConfigKey.SMTP_AUTH_USERS);
        smtpAuthAllowPlaintext = (Boolean)values.get(ConfigKey.SMTP_AUTH_ALLOW_PLAINTEXT);
        smtpRateAuthFailuresPerMinute = (Integer)values.get(ConfigKey.SMTP_RATE_AUTH_FAILURES_PER_MINUTE);
        smtpProxyProtocol = (Boolean)values.get(ConfigKey.SMTP_PROXY_PROTOCOL);
        smtpProxyNetworks = (NetworkList)values.get(ConfigKey.SMTP_PROXY_NETWORKS);
        smtpProxyTimeout = (Duration)values.get(ConfigKey.SMTP_PROXY_TIMEOUT);
        submissionListen = (List<InetSocketAddress>)values.get(ConfigKey.SUBMISSION_LISTEN);
        submissionsListen = (List<InetSocketAddress>)values.get(ConfigKey.SUBMISSIONS_LISTEN);
        relayNetworks = (NetworkList)values.get(ConfigKey.RELAY_NETWORKS);
        relayDomains = (Set<String>)values.get(ConfigKey.RELAY_DOMAINS);
        queueDir = (Path)values.get(ConfigKey.QUEUE_DIR);
        queueSync = (SyncMode)values.get(ConfigKey.QUEUE_SYNC);
        queueMaxAge = (Duration)values.get(ConfigKey.QUEUE_MAX_AGE);
        queueRollCycle = (String)values.get(ConfigKey.QUEUE_ROLL_CYCLE);
        queueMinFreeBytes = (Long)values.get(ConfigKey.QUEUE_MIN_FREE_BYTES);
        queueActiveLimit = (Integer)values.get(ConfigKey.QUEUE_ACTIVE_LIMIT);
        deliveryRoutes = (List<Route>)values.get(ConfigKey.DELIVERY_ROUTES);
        deliveryTls = (TlsLevel)values.get(ConfigKey.DELIVERY_TLS);
        deliveryTlsPolicy = (List<TlsPolicy>)values.get(ConfigKey.DELIVERY_TLS_POLICY);
        deliveryTlsCaFile = (Path)values.get(ConfigKey.DELIVERY_TLS_CA_FILE);
        deliveryRetrySchedule = (List<Duration>)values.get(ConfigKey.DELIVERY_RETRY_SCHEDULE);
        deliveryIoThreads = (Integer)values.get(ConfigKey.DELIVERY_IO_THREADS);
        deliveryMaxConnectionsPerHop = (Integer)values.get(ConfigKey.DELIVERY_MAX_CONNECTIONS_PER_HOP);
        deliveryMaxConnections = (Integer)values.get(ConfigKey.DELIVERY_MAX_CONNECTIONS);
        deliveryMaxMessagesPerConnection = (Integer)values.get(ConfigKey.DELIVERY_MAX_MESSAGES_PER_CONNECTION);
        deliveryIdleTimeout = (Duration)values.get(ConfigKey.DELIVERY_IDLE_TIMEOUT);
        deliveryMaxRecipientsPerTransaction = (Integer)values.get(ConfigKey.DELIVERY_MAX_RECIPIENTS_PER_TRANSACTION);
        deliverySmtpPort = (Integer)values.get(ConfigKey.DELIVERY_SMTP_PORT);
        deliveryDnsServers = (List<InetSocketAddress>)values.get(ConfigKey.DELIVERY_DNS_SERVERS);
        deliveryDnsMaxInFlight = (Integer)values.get(ConfigKey.DELIVERY_DNS_MAX_IN_FLIGHT);
        deliveryDnsCacheSize = (Integer)values.get(ConfigKey.DELIVERY_DNS_CACHE_SIZE);
        deliveryConnectTimeout = (Duration)values.get(ConfigKey.DELIVERY_TIMEOUT_CONNECT);
        deliveryCommandTimeout = (Duration)values.get(ConfigKey.DELIVERY_TIMEOUT_COMMAND);
        deliveryDataInitTimeout = (Duration)values.get(ConfigKey.DELIVERY_TIMEOUT_DATA_INIT);
        deliveryDataBlockTimeout = (Duration)values.get(ConfigKey.DELIVERY_TIMEOUT_DATA_BLOCK);
        deliveryDataDoneTimeout = (Duration)values.get(ConfigKey.DELIVERY_TIMEOUT_DATA_DONE);
        deliveryMinDataRate = (Long)values.get(ConfigKey.DELIVERY_MIN_DATA_RATE);
        deliveryDelayWarning = (Duration)values.get(ConfigKey.DELIVERY_DELAY_WARNING);
        metricsListen = (InetSocketAddress)values.get(ConfigKey.METRICS_LISTEN);
        metricsAdminToken = (String)values.get(ConfigKey.METRICS_ADMIN_TOKEN);

        Route catchAll = null;
        for (final Route route : deliveryRoutes)
        {
            if (Route.CATCH_ALL.equals(route.domain()))
            {
                catchAll = route;
            }
            else if (route.domain().startsWith("."))
            {
                suffixRoutes.put(route.domain(), route);
            }
            else
            {
                exactRoutes.put(route.domain(), route);
            }
        }
        catchAllRoute = catchAll;
        TlsLevel catchAllLevel = deliveryTls;
        for (final TlsPolicy policy : deliveryTlsPolicy)
        {
            if (Route.CATCH_ALL.equals(policy.domain()))
            {
                catchAllLevel = policy.level();
            }
            else
            {
                (policy.domain().startsWith(".") ? suffixTlsLevels : exactTlsLevels).put(policy.domain(),
                    policy.level());
            }
        }
        catchAllTlsLevel = catchAllLevel;

        final Map<String, String> effective = new LinkedHashMap<>();
        for (final ConfigKey key : ConfigKey.values())
        {
            effective.put(key.key(), texts.get(key));
        }
        effective.put(ConfigKey.SMTP_HOSTNAME.key(), smtpHostname);
        effective.put(ConfigKey.SMTP_IO_THREADS.key(), Integer.toString(smtpIoThreads));
        effective.put(ConfigKey.DELIVERY_IO_THREADS.key(), Integer.toString(deliveryIoThreads));
        if (!metricsAdminToken.isEmpty())
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
        final String source = file.toString();
        final String text;
        try
        {
            text = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(java.nio.ByteBuffer.wrap(Files.readAllBytes(file)))
                .toString();
        }
        catch (final CharacterCodingException ex)
        {
            throw new ConfigException(List.of(source + ": is not valid UTF-8"));
        }
        catch (final IOException ex)
        {
            throw new ConfigException(List.of(source + ": cannot read the configuration file: " + describe(ex)));
        }

        final List<String> problems = new ArrayList<>();
        final List<PropertiesReader.Entry> entries = PropertiesReader.read(text, source, problems);

        return build(source, entries, systemOverrides, problems);
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
        final String text = leniently(ConfigKey.METRICS_LISTEN, file, systemOverrides);
        try
        {
            return (InetSocketAddress)ConfigKey.METRICS_LISTEN.parse(text);
        }
        catch (final IllegalArgumentException ex)
        {
            return (InetSocketAddress)ConfigKey.METRICS_LISTEN.parse(ConfigKey.METRICS_LISTEN.defaultText());
        }
    }

    /** {@code metrics.admin_token} of {@code file}, read as leniently as {@link #metricsListenOf}; empty if none. */
    public static String metricsAdminTokenOf(final Path file, final Properties systemOverrides)
    {
        final String text = leniently(ConfigKey.METRICS_ADMIN_TOKEN, file, systemOverrides);
        try
        {
            return (String)ConfigKey.METRICS_ADMIN_TOKEN.parse(text);
        }
        catch (final IllegalArgumentException ex)
        {
            return "";
        }
    }

    /** The last value of {@code key} in {@code file} (a system property wins), its default if none or unreadable. */
    private static String leniently(final ConfigKey key, final Path file, final Properties systemOverrides)
    {
        String text = key.defaultText();
        try
        {
            for (final PropertiesReader.Entry entry : PropertiesReader.read(Files.readString(file,
                StandardCharsets.UTF_8), file.toString(), new ArrayList<>()))
            {
                if (key.key().equals(entry.key()))
                {
                    text = entry.value();
                }
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            // the default, as a start without this key would have it
        }
        return systemOverrides.getProperty(key.key(), text).strip();
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
        final List<PropertiesReader.Entry> entries = new ArrayList<>();
        for (final String key : new TreeSet<>(values.keySet()))
        {
            entries.add(new PropertiesReader.Entry(key, values.get(key).strip(), 0));
        }

        return build(MAP_SOURCE, entries, new Properties(), new ArrayList<>());
    }

    /**
     * @return the configuration with every key at its default.
     */
    public static RelayConfig defaults()
    {
        try
        {
            return fromMap(Map.of());
        }
        catch (final ConfigException ex)
        {
            throw new IllegalStateException("the built-in defaults do not validate:\n" + ex.getMessage(), ex);
        }
    }

    private static RelayConfig build(
        final String source,
        final List<PropertiesReader.Entry> entries,
        final Properties systemOverrides,
        final List<String> problems) throws ConfigException
    {
        final Map<ConfigKey, Object> values = new EnumMap<>(ConfigKey.class);
        final Map<ConfigKey, String> texts = new EnumMap<>(ConfigKey.class);
        final Map<String, Integer> firstLine = new HashMap<>();

        for (final PropertiesReader.Entry entry : entries)
        {
            final String where = source + ":" + entry.line() + ": " + entry.key();
            final Integer previous = firstLine.putIfAbsent(entry.key(), entry.line());
            if (null != previous)
            {
                problems.add(where + ": duplicate key (first set at line " + previous + ")");
                continue;
            }
            apply(where, entry.key(), entry.value(), values, texts, problems);
        }

        for (final String name : new TreeSet<>(systemOverrides.stringPropertyNames()))
        {
            if (ConfigKey.hasKnownPrefix(name))
            {
                final String where = SYSTEM_SOURCE + " " + name;
                apply(where, name, systemOverrides.getProperty(name).strip(), values, texts, problems);
            }
        }

        if (!problems.isEmpty())
        {
            throw new ConfigException(problems);
        }

        for (final ConfigKey key : ConfigKey.values())
        {
            if (!values.containsKey(key))
            {
                values.put(key, key.parse(key.defaultText()));
                texts.put(key, key.defaultText());
            }
        }
        checkTogether(source, firstLine, values, problems);
        if (!problems.isEmpty())
        {
            throw new ConfigException(problems);
        }

        return new RelayConfig(values, texts);
    }

    /** Rules between keys (DESIGN.md's fine print for TLS and submission): each problem names the key it is about. */
    private static void checkTogether(
        final String source, final Map<String, Integer> firstLine, final Map<ConfigKey, Object> values,
        final List<String> problems)
    {
        final boolean cert = values.get(ConfigKey.SMTP_TLS_CERT) != null;
        final boolean key = values.get(ConfigKey.SMTP_TLS_KEY) != null;
        final boolean users = values.get(ConfigKey.SMTP_AUTH_USERS) != null;
        final boolean tls = cert && key;
        if (cert != key)
        {
            final ConfigKey set = cert ? ConfigKey.SMTP_TLS_CERT : ConfigKey.SMTP_TLS_KEY;
            problems.add(where(source, firstLine, set) + "set without " +
                (cert ? ConfigKey.SMTP_TLS_KEY : ConfigKey.SMTP_TLS_CERT).key() + ": TLS needs both");
        }
        if (!tls && (Boolean)values.get(ConfigKey.SMTP_TLS_REQUIRED))
        {
            problems.add(where(source, firstLine, ConfigKey.SMTP_TLS_REQUIRED) +
                "true needs smtp.tls.cert and smtp.tls.key");
        }
        for (final ConfigKey listener : new ConfigKey[]{ConfigKey.SUBMISSION_LISTEN, ConfigKey.SUBMISSIONS_LISTEN})
        {
            if (((List<?>)values.get(listener)).isEmpty())
            {
                continue;
            }
            if (!tls)
            {
                problems.add(where(source, firstLine, listener) + "a TLS listener needs smtp.tls.cert and " +
                    "smtp.tls.key");
            }
            if (!users)
            {
                problems.add(where(source, firstLine, listener) + "requires AUTH: set smtp.auth.users");
            }
        }
        if (tls && (Integer)values.get(ConfigKey.SMTP_BUFFER_SIZE) < 32 * 1024)
        {
            problems.add(where(source, firstLine, ConfigKey.SMTP_BUFFER_SIZE) + "must be at least 32k with TLS " +
                "(a TLS record's plaintext is up to 16k and a little)");
        }
        final Set<InetSocketAddress> bound = new java.util.HashSet<>();
        for (final ConfigKey listener : new ConfigKey[]{ConfigKey.SMTP_LISTEN, ConfigKey.SUBMISSION_LISTEN,
            ConfigKey.SUBMISSIONS_LISTEN})
        {
            for (final Object address : (List<?>)values.get(listener))
            {
                final InetSocketAddress socket = (InetSocketAddress)address;
                if (socket.getPort() != 0 && !bound.add(socket))
                {
                    problems.add(where(source, firstLine, listener) + socket + " is listed by another listener too");
                }
            }
        }
    }

    private static String where(final String source, final Map<String, Integer> firstLine, final ConfigKey key)
    {
        final Integer line = firstLine.get(key.key());
        return source + ":" + (line == null ? 0 : line) + ": " + key.key() + ": ";
    }

    private static void apply(
        final String where,
        final String name,
        final String text,
        final Map<ConfigKey, Object> values,
        final Map<ConfigKey, String> texts,
        final List<String> problems)
    {
        final ConfigKey key = ConfigKey.of(name);
        if (null == key)
        {
            problems.add(where + ": unknown key" + suggestion(name));
            return;
        }
        try
        {
            values.put(key, key.parse(text));
            texts.put(key, text);
        }
        catch (final IllegalArgumentException ex)
        {
            problems.add(where + ": \"" + text + "\" " + ex.getMessage());
        }
    }

    private static String suggestion(final String name)
    {
        ConfigKey best = null;
        int bestDistance = 4;
        for (final ConfigKey key : ConfigKey.values())
        {
            final int distance = editDistance(name, key.key());
            if (distance < bestDistance)
            {
                best = key;
                bestDistance = distance;
            }
        }

        return null == best ? "" : " (did you mean " + best.key() + "?)";
    }

    private static int editDistance(final String a, final String b)
    {
        final int[] previous = new int[b.length() + 1];
        final int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++)
        {
            previous[j] = j;
        }
        for (int i = 1; i <= a.length(); i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++)
            {
                final int substitute = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                current[j] = Math.min(substitute, Math.min(previous[j], current[j - 1]) + 1);
            }
            System.arraycopy(current, 0, previous, 0, current.length);
        }

        return previous[b.length()];
    }

    private static String describe(final IOException ex)
    {
        return ex instanceof java.nio.file.NoSuchFileException ? "no such file" : ex.toString();
    }

    private static String machineName()
    {
        try
        {
            final String name = InetAddress.getLocalHost().getCanonicalHostName().toLowerCase(Locale.ROOT);
            if (ValueParsers.isHostName(name))
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

    /**
     * What is in force after a reload to {@code next}: this configuration with the keys a reload applies
     * ({@link ReloadScope#NOW}, {@link ReloadScope#NEW_CONNECTIONS}, {@link ReloadScope#NEXT_ATTEMPT}) taken from
     * {@code next}; every other key keeps its value here.
     *
     * @throws ConfigException never for two valid configurations (the rules between keys involve restart-only keys).
     */
    public RelayConfig reloadedWith(final RelayConfig next) throws ConfigException
    {
        final Map<String, String> values = new LinkedHashMap<>(effective);
        for (final ConfigKey key : ConfigKey.values())
        {
            final ReloadScope scope = key.reloadScope();
            if (scope != ReloadScope.RESTART && scope != ReloadScope.FILE)
            {
                values.put(key.key(), next.effective.get(key.key()));
            }
        }
        return fromMap(values);
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
            if (!effective.get(key.key()).equals(next.effective.get(key.key())))
            {
                changed.add(key);
            }
        }
        return changed;
    }

    /**
     * @param domainLowercase a recipient domain, lowercase, without trailing dot.
     * @return true when {@code relay.domains} lists it exactly, or lists {@code .suffix} and the domain is a
     * subdomain of {@code suffix} (not {@code suffix} itself).
     */
    public boolean isRelayDomain(final String domainLowercase)
    {
        if (relayDomains.isEmpty())
        {
            return false;
        }
        if (relayDomains.contains(domainLowercase))
        {
            return true;
        }
        for (int dot = domainLowercase.indexOf('.'); dot >= 0; dot = domainLowercase.indexOf('.', dot + 1))
        {
            if (relayDomains.contains(domainLowercase.substring(dot)))
            {
                return true;
            }
        }

        return false;
    }

    /**
     * The route for a recipient domain: an exact entry first, then the longest matching {@code .suffix} entry,
     * then {@code *}.
     *
     * @param domainLowercase a recipient domain, lowercase, without trailing dot.
     * @return the route, or null when the domain is unrouted and its MX records decide.
     */
    public Route routeFor(final String domainLowercase)
    {
        return matchDomain(exactRoutes, suffixRoutes, catchAllRoute, domainLowercase);
    }

    /**
     * The outbound TLS level for a recipient domain: {@code delivery.tls.policy} matched as routes are (exact,
     * longest {@code .suffix}, {@code *}), else {@code delivery.tls}.
     *
     * @param domainLowercase a recipient domain, lowercase, without trailing dot.
     */
    public TlsLevel tlsLevelFor(final String domainLowercase)
    {
        return matchDomain(exactTlsLevels, suffixTlsLevels, catchAllTlsLevel, domainLowercase);
    }

    private static <T> T matchDomain(
        final Map<String, T> exact, final Map<String, T> suffixes, final T otherwise, final String domainLowercase)
    {
        final T found = exact.get(domainLowercase);
        if (null != found)
        {
            return found;
        }
        if (!suffixes.isEmpty())
        {
            for (int dot = domainLowercase.indexOf('.'); dot >= 0; dot = domainLowercase.indexOf('.', dot + 1))
            {
                final T value = suffixes.get(domainLowercase.substring(dot));
                if (null != value)
                {
                    return value;
                }
            }
        }

        return otherwise;
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
     * @return {@code smtp.listen}: the addresses to accept SMTP on, at least one; port 0 means any free port.
     */
    public List<InetSocketAddress> smtpListen()
    {
        return smtpListen;
    }

    /**
     * @return {@code smtp.hostname}, lowercase: the name in the greeting, EHLO reply and Received headers.
     */
    public String smtpHostname()
    {
        return smtpHostname;
    }

    /**
     * @return {@code smtp.max_message_size} in bytes (advertised in SIZE, RFC 1870).
     */
    public long smtpMaxMessageSize()
    {
        return smtpMaxMessageSize;
    }

    /**
     * @return {@code smtp.max_recipients}: RCPT TO accepted per transaction.
     */
    public int smtpMaxRecipients()
    {
        return smtpMaxRecipients;
    }

    /**
     * @return {@code smtp.max_connections}: concurrent inbound connections.
     */
    public int smtpMaxConnections()
    {
        return smtpMaxConnections;
    }

    /**
     * @return {@code smtp.max_connections_per_ip}: concurrent inbound connections per client address; 0 = unlimited.
     */
    public int smtpMaxConnectionsPerIp()
    {
        return smtpMaxConnectionsPerIp;
    }

    /**
     * @return {@code smtp.limits_exempt_relay_networks}: clients in {@link #relayNetworks()} skip per-client limits.
     */
    public boolean smtpLimitsExemptRelayNetworks()
    {
        return smtpLimitsExemptRelayNetworks;
    }

    /**
     * @return {@code smtp.io_threads}: inbound selector loops, 1..64 ({@code auto} resolved to the processor count).
     */
    public int smtpIoThreads()
    {
        return smtpIoThreads;
    }

    /**
     * @return {@code smtp.timeout.command}: idle time allowed while waiting for a command.
     */
    public Duration smtpCommandTimeout()
    {
        return smtpCommandTimeout;
    }

    /**
     * @return {@code smtp.timeout.data}: idle time allowed between reads of message content.
     */
    public Duration smtpDataTimeout()
    {
        return smtpDataTimeout;
    }

    /**
     * @return {@code smtp.drain_timeout}: time open sessions get to finish on shutdown.
     */
    public Duration smtpDrainTimeout()
    {
        return smtpDrainTimeout;
    }

    /**
     * @return {@code smtp.max_errors}: protocol errors per connection before 421.
     */
    public int smtpMaxErrors()
    {
        return smtpMaxErrors;
    }

    /**
     * @return {@code smtp.max_hops}: Received headers allowed before a message is refused as a loop.
     */
    public int smtpMaxHops()
    {
        return smtpMaxHops;
    }

    /**
     * @return {@code smtp.max_command_length}: longest command line in octets including CRLF, 512..2048.
     */
    public int smtpMaxCommandLength()
    {
        return smtpMaxCommandLength;
    }

    /**
     * @return {@code smtp.buffer_size}: bytes per pooled read buffer, 4096..1048576.
     */
    public int smtpBufferSize()
    {
        return smtpBufferSize;
    }

    /** @return {@code smtp.tls.cert}, or null when TLS is off. */
    public Path smtpTlsCert()
    {
        return smtpTlsCert;
    }

    /** @return {@code smtp.tls.key}, or null when TLS is off. */
    public Path smtpTlsKey()
    {
        return smtpTlsKey;
    }

    /** @return whether TLS is configured (both {@code smtp.tls.cert} and {@code smtp.tls.key}). */
    public boolean tlsEnabled()
    {
        return smtpTlsCert != null && smtpTlsKey != null;
    }

    /** @return {@code smtp.tls.provider}: {@code auto}, {@code jdk} or {@code openssl}. */
    public String smtpTlsProvider()
    {
        return smtpTlsProvider;
    }

    /** @return {@code smtp.tls.required}: 530 5.7.0 before STARTTLS on {@code smtp.listen}. */
    public boolean smtpTlsRequired()
    {
        return smtpTlsRequired;
    }

    /** @return {@code smtp.tls.handshake_timeout}: the whole handshake's deadline. */
    public Duration smtpTlsHandshakeTimeout()
    {
        return smtpTlsHandshakeTimeout;
    }

    /** @return {@code smtp.tls.reload_interval}; zero = the files are not watched. */
    public Duration smtpTlsReloadInterval()
    {
        return smtpTlsReloadInterval;
    }

    /** @return {@code smtp.auth.users}, or null when AUTH is off. */
    public Path smtpAuthUsers()
    {
        return smtpAuthUsers;
    }

    /** @return {@code smtp.auth.allow_plaintext}: AUTH offered without TLS. */
    public boolean smtpAuthAllowPlaintext()
    {
        return smtpAuthAllowPlaintext;
    }

    /** @return {@code smtp.rate.auth_failures_per_minute} per client address; 0 = unlimited. */
    public int smtpRateAuthFailuresPerMinute()
    {
        return smtpRateAuthFailuresPerMinute;
    }

    /** @return {@code smtp.proxy_protocol}: connections on {@code smtp.listen} start with a PROXY header. */
    public boolean smtpProxyProtocol()
    {
        return smtpProxyProtocol;
    }

    /** @return {@code smtp.proxy_networks}: the peers allowed to send a PROXY header. */
    public NetworkList smtpProxyNetworks()
    {
        return smtpProxyNetworks;
    }

    /** @return {@code smtp.proxy_timeout}: the whole PROXY header's deadline. */
    public Duration smtpProxyTimeout()
    {
        return smtpProxyTimeout;
    }

    /** @return {@code submission.listen} (RFC 6409), possibly empty. */
    public List<InetSocketAddress> submissionListen()
    {
        return submissionListen;
    }

    /** @return {@code submissions.listen} (RFC 8314 implicit TLS), possibly empty. */
    public List<InetSocketAddress> submissionsListen()
    {
        return submissionsListen;
    }

    /**
     * @return {@code relay.networks}: clients allowed to relay anywhere.
     */
    public NetworkList relayNetworks()
    {
        return relayNetworks;
    }

    /**
     * @return {@code relay.domains}, lowercase, unmodifiable; an entry starting with a dot stands for subdomains.
     */
    public Set<String> relayDomains()
    {
        return relayDomains;
    }

    /**
     * @return {@code queue.dir}: the spool directory, as written (relative paths resolve against the working
     * directory); it may not exist yet.
     */
    public Path queueDir()
    {
        return queueDir;
    }

    /**
     * @return {@code queue.sync}.
     */
    public SyncMode queueSync()
    {
        return queueSync;
    }

    /**
     * @return {@code queue.max_age}: undelivered mail older than this bounces.
     */
    public Duration queueMaxAge()
    {
        return queueMaxAge;
    }

    /**
     * @return {@code queue.roll_cycle}: one of {@code secondly}, {@code minutely}, {@code hourly}, {@code daily}.
     */
    public String queueRollCycle()
    {
        return queueRollCycle;
    }

    /**
     * @return {@code queue.min_free_bytes}: free space below which new mail gets 452 4.3.1; 0 = no check.
     */
    /** @return {@code smtp.accept=acceptor}: one loop accepts and hands connections to the others. */
    public boolean smtpSingleAcceptor()
    {
        return smtpSingleAcceptor;
    }

    /** @return {@code smtp.soft_error_limit}: errors after which error replies are delayed. */
    public int smtpSoftErrorLimit()
    {
        return smtpSoftErrorLimit;
    }

    /** @return {@code smtp.error_delay}: the tarpit delay; zero = off. */
    public Duration smtpErrorDelay()
    {
        return smtpErrorDelay;
    }

    /** @return {@code smtp.rate.connections_per_minute} per client address; 0 = unlimited. */
    public int smtpRateConnectionsPerMinute()
    {
        return smtpRateConnectionsPerMinute;
    }

    /** @return {@code smtp.rate.messages_per_minute} per client address; 0 = unlimited. */
    public int smtpRateMessagesPerMinute()
    {
        return smtpRateMessagesPerMinute;
    }

    /** @return {@code queue.max_bytes}: -1 for auto (90% of the free space plus the spool's files when the spool opens). */
    public long queueMaxBytes()
    {
        return queueMaxBytes;
    }

    public long queueMinFreeBytes()
    {
        return queueMinFreeBytes;
    }

    /** @return {@code queue.active_limit}: messages delivery keeps in memory; the rest waits on disk. */
    public int queueActiveLimit()
    {
        return queueActiveLimit;
    }

    /**
     * @return {@code delivery.routes} in the order written, unmodifiable; see {@link #routeFor(String)}.
     */
    public List<Route> deliveryRoutes()
    {
        return deliveryRoutes;
    }

    /** @return {@code delivery.tls}: the level of domains {@code delivery.tls.policy} does not name. */
    public TlsLevel deliveryTls()
    {
        return deliveryTls;
    }

    /** @return {@code delivery.tls.policy} in the order written; see {@link #tlsLevelFor(String)}. */
    public List<TlsPolicy> deliveryTlsPolicy()
    {
        return deliveryTlsPolicy;
    }

    /** @return {@code delivery.tls.ca_file}, or null for the JDK's trust store. */
    public Path deliveryTlsCaFile()
    {
        return deliveryTlsCaFile;
    }

    /**
     * @return {@code delivery.retry.schedule}: waits between attempts, at least one; the last repeats.
     */
    public List<Duration> deliveryRetrySchedule()
    {
        return deliveryRetrySchedule;
    }

    /**
     * @return {@code delivery.io_threads}: delivery selector loops, 1..64 ({@code auto} resolved to the processor
     * count).
     */
    public int deliveryIoThreads()
    {
        return deliveryIoThreads;
    }

    /**
     * @return {@code delivery.max_connections_per_hop}.
     */
    public int deliveryMaxConnectionsPerHop()
    {
        return deliveryMaxConnectionsPerHop;
    }

    /**
     * @return {@code delivery.max_connections}: outbound connections open or opening in all, each delivery loop
     * taking an even share.
     */
    public int deliveryMaxConnections()
    {
        return deliveryMaxConnections;
    }

    /**
     * @return {@code delivery.max_messages_per_connection}.
     */
    public int deliveryMaxMessagesPerConnection()
    {
        return deliveryMaxMessagesPerConnection;
    }

    /**
     * @return {@code delivery.idle_timeout}: an idle pooled connection is closed after this.
     */
    public Duration deliveryIdleTimeout()
    {
        return deliveryIdleTimeout;
    }

    /**
     * @return {@code delivery.max_recipients_per_transaction}.
     */
    public int deliveryMaxRecipientsPerTransaction()
    {
        return deliveryMaxRecipientsPerTransaction;
    }

    /**
     * @return {@code delivery.smtp_port}: the port of MX-resolved next hops and of routes without a port.
     */
    public int deliverySmtpPort()
    {
        return deliverySmtpPort;
    }

    /**
     * @return {@code delivery.dns.servers}; empty means the system resolver.
     */
    public List<InetSocketAddress> deliveryDnsServers()
    {
        return deliveryDnsServers;
    }

    /**
     * @return {@code delivery.dns.max_in_flight}: DNS queries outstanding at once.
     */
    public int deliveryDnsMaxInFlight()
    {
        return deliveryDnsMaxInFlight;
    }

    /**
     * @return {@code delivery.dns.cache_size}: domains whose lookup result is cached; 0 = none.
     */
    public int deliveryDnsCacheSize()
    {
        return deliveryDnsCacheSize;
    }

    /**
     * @return {@code delivery.timeout.connect}.
     */
    public Duration deliveryConnectTimeout()
    {
        return deliveryConnectTimeout;
    }

    /**
     * @return {@code delivery.timeout.command}: greeting, EHLO, MAIL and RCPT replies (RFC 5321 §4.5.3.2).
     */
    public Duration deliveryCommandTimeout()
    {
        return deliveryCommandTimeout;
    }

    /**
     * @return {@code delivery.timeout.data_init}: the 354 reply to DATA.
     */
    public Duration deliveryDataInitTimeout()
    {
        return deliveryDataInitTimeout;
    }

    /**
     * @return {@code delivery.timeout.data_block}: writing each block of content.
     */
    public Duration deliveryDataBlockTimeout()
    {
        return deliveryDataBlockTimeout;
    }

    /**
     * @return {@code delivery.timeout.data_done}: the reply to the final dot.
     */
    public Duration deliveryDataDoneTimeout()
    {
        return deliveryDataDoneTimeout;
    }

    /**
     * @return {@code delivery.min_data_rate}: bytes per second a message transfer must average (0 = no limit).
     */
    public long deliveryMinDataRate()
    {
        return deliveryMinDataRate;
    }

    /**
     * @return {@code delivery.delay_warning}; {@link Duration#ZERO} means no delay notifications.
     */
    public Duration deliveryDelayWarning()
    {
        return deliveryDelayWarning;
    }

    /**
     * @return {@code metrics.listen}, or null when it is {@code off}.
     */
    public InetSocketAddress metricsListen()
    {
        return metricsListen;
    }

    /**
     * @return {@code metrics.admin_token}: the bearer token /admin/ requests must carry; empty when none is asked for.
     */
    public String metricsAdminToken()
    {
        return metricsAdminToken;
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
}
