package dev.relay.config;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;

import static dev.relay.config.ValueParsers.intRange;
import static dev.relay.config.ValueParsers.intRangeOrAuto;
import static dev.relay.config.ValueParsers.intSize;
import static dev.relay.config.ValueParsers.oneOf;
import static dev.relay.config.ValueParsers.size;

/**
 * The table of every configuration key: name, type of its parsed value, default (as written in a properties file),
 * value syntax with its bounds, and a one-line description. It alone drives parsing, validation, unknown-key
 * detection, {@link RelayConfig#effective()} and the check that {@code ops/relay.properties} documents every key;
 * the settings records read each key's value by its entry here, once.
 * <p>
 * Immutable; the parsers allocate and are meant for start-up only.
 */
public enum ConfigKey
{
    SMTP_LISTEN("smtp.listen", List.class, "0.0.0.0:2525", AddressParsers::listenList,
        "addresses to accept SMTP on: comma list of host:port, IPv6 as [::1]:25; port 0 picks a free port"),
    SMTP_HOSTNAME("smtp.hostname", String.class, "", DomainParsers::parseHostname,
        "name used in the greeting, EHLO reply and Received headers; empty = the machine's canonical host name"),
    SMTP_MAX_MESSAGE_SIZE("smtp.max_message_size", Long.class, "26214400", size(1, Long.MAX_VALUE),
        "largest message accepted, in bytes, advertised in EHLO SIZE (RFC 1870); suffixes k, M, G are binary"),
    SMTP_MAX_RECIPIENTS("smtp.max_recipients", Integer.class, "1000", intRange(1, Integer.MAX_VALUE),
        "RCPT TO accepted per transaction, more get 452 4.5.3 (RFC 5321 §4.5.3.1.8 asks for at least 100)"),
    SMTP_MAX_CONNECTIONS("smtp.max_connections", Integer.class, "10000", intRange(1, Integer.MAX_VALUE),
        "concurrent inbound connections; beyond it new connections get 421 4.7.0 and are closed"),
    SMTP_MAX_CONNECTIONS_PER_IP("smtp.max_connections_per_ip", Integer.class, "100", intRange(0, Integer.MAX_VALUE),
        "concurrent inbound connections from one client address; 0 = unlimited"),
    SMTP_LIMITS_EXEMPT_RELAY_NETWORKS("smtp.limits_exempt_relay_networks", Boolean.class, "true",
        ValueParsers::parseBoolean,
        "true: clients in relay.networks are exempt from per-client limits (as Postfix exempts $mynetworks)"),
    SMTP_IO_THREADS("smtp.io_threads", Integer.class, "auto",
        intRangeOrAuto(1, 64, Runtime.getRuntime().availableProcessors()),
        "selector loop threads for inbound SMTP, 1..64; auto = one per available processor"),
    SMTP_ACCEPT("smtp.accept", String.class, "reuseport", ValueParsers::parseAcceptMode,
        "how connections reach the loops: reuseport (a listener per loop, the kernel spreads them) or acceptor "
            + "(loop 0 accepts and hands them out in turn)"),
    SMTP_TIMEOUT_COMMAND("smtp.timeout.command", Duration.class, "5m", ValueParsers::positiveDuration,
        "idle time allowed while waiting for a client command (RFC 5321 §4.5.3.2.7: at least 5 minutes)"),
    SMTP_TIMEOUT_DATA("smtp.timeout.data", Duration.class, "3m", ValueParsers::positiveDuration,
        "idle time allowed between reads of message content (DATA or BDAT)"),
    SMTP_DRAIN_TIMEOUT("smtp.drain_timeout", Duration.class, "30s", ValueParsers::positiveDuration,
        "on shutdown, time given to open sessions to finish before they get 421 and are closed"),
    SMTP_MAX_ERRORS("smtp.max_errors", Integer.class, "20", intRange(1, Integer.MAX_VALUE),
        "protocol errors allowed per connection before 421 and close (Postfix smtpd_hard_error_limit)"),
    SMTP_SOFT_ERROR_LIMIT("smtp.soft_error_limit", Integer.class, "10", intRange(1, Integer.MAX_VALUE),
        "protocol errors after which every further error reply is delayed by smtp.error_delay (Postfix "
            + "smtpd_soft_error_limit)"),
    SMTP_ERROR_DELAY("smtp.error_delay", Duration.class, "1s", ValueParsers::parseDuration,
        "tarpit: delay before reading more from a client past smtp.soft_error_limit; 0 = off"),
    SMTP_RATE_CONNECTIONS_PER_MINUTE("smtp.rate.connections_per_minute", Integer.class, "1200",
        intRange(0, Integer.MAX_VALUE),
        "new connections per minute from one client address, beyond it 421 4.7.0 (Postfix anvil); 0 = unlimited"),
    SMTP_RATE_MESSAGES_PER_MINUTE("smtp.rate.messages_per_minute", Integer.class, "12000",
        intRange(0, Integer.MAX_VALUE),
        "MAIL FROM per minute from one client address, beyond it 450 4.7.1; 0 = unlimited"),
    SMTP_MAX_HOPS("smtp.max_hops", Integer.class, "100", intRange(1, Integer.MAX_VALUE),
        "Received headers allowed before a message is refused as a mail loop (RFC 5321 §6.3)"),
    SMTP_MAX_COMMAND_LENGTH("smtp.max_command_length", Integer.class, "512", intRange(512, 2048),
        "longest command line in octets incl. CRLF, 512..2048 (RFC 5321 §4.5.3.1.4; extensions may need more)"),
    SMTP_BUFFER_SIZE("smtp.buffer_size", Integer.class, "65536", intSize(4096, 1048576),
        "size in bytes of each pooled read buffer, 4096..1048576 (4k..1M); at least 32k with TLS (a record's " +
            "plaintext is unwrapped into it)"),
    SMTP_TLS_CERT("smtp.tls.cert", Path.class, "", ValueParsers::optionalFile,
        "PEM certificate chain, leaf first; with smtp.tls.key, STARTTLS (RFC 3207) is offered on every listener; " +
            "empty = no TLS"),
    SMTP_TLS_KEY("smtp.tls.key", Path.class, "", ValueParsers::optionalFile,
        "PEM private key of smtp.tls.cert, unencrypted PKCS#8 (BEGIN PRIVATE KEY), RSA or EC"),
    SMTP_TLS_PROVIDER("smtp.tls.provider", String.class, "auto", oneOf("auto", "jdk", "openssl"),
        "the TLS engine, inbound and outbound: jdk (the JDK's), openssl (BoringSSL through netty-tcnative, " +
            "linux-x86_64), or auto (openssl where it loads, else jdk)"),
    SMTP_TLS_REQUIRED("smtp.tls.required", Boolean.class, "false", ValueParsers::parseBoolean,
        "true: on smtp.listen every command but EHLO, HELO, STARTTLS, NOOP and QUIT gets 530 5.7.0 until " +
            "STARTTLS (Postfix smtpd_tls_security_level=encrypt)"),
    SMTP_TLS_HANDSHAKE_TIMEOUT("smtp.tls.handshake_timeout", Duration.class, "60s", ValueParsers::positiveDuration,
        "the whole TLS handshake must be done within this, however the bytes trickle in; then the connection " +
            "is closed"),
    SMTP_TLS_RELOAD_INTERVAL("smtp.tls.reload_interval", Duration.class, "5s", ValueParsers::parseDuration,
        "how often smtp.tls.cert and smtp.tls.key are checked for changes; a renewed pair that loads is used " +
            "for new handshakes, open connections keep theirs; 0 = never"),
    SMTP_AUTH_USERS("smtp.auth.users", Path.class, "", ValueParsers::optionalFile,
        "users file for AUTH PLAIN and LOGIN (RFC 4954): one user:{SCHEME}hash per line, Dovecot passwd-file " +
            "style; ops/relay passwd USER prints a line; an authenticated client may relay anywhere; empty = no AUTH"),
    SMTP_AUTH_ALLOW_PLAINTEXT("smtp.auth.allow_plaintext", Boolean.class, "false", ValueParsers::parseBoolean,
        "true: offer AUTH without TLS too (passwords in the clear: loopback tests only)"),
    SMTP_RATE_AUTH_FAILURES_PER_MINUTE("smtp.rate.auth_failures_per_minute", Integer.class, "10",
        intRange(0, Integer.MAX_VALUE),
        "failed AUTH attempts per minute from one client address; beyond it AUTH gets 454 4.7.0 without a " +
            "password check (password guessing, as Postfix's anvil limits it); 0 = unlimited"),
    SMTP_PROXY_PROTOCOL("smtp.proxy_protocol", Boolean.class, "false", ValueParsers::parseBoolean,
        "true: every connection on smtp.listen starts with a HAProxy PROXY v1 or v2 header (auto-detected); the " +
            "client it names is the client for relay decisions, limits, log lines and Received:"),
    SMTP_PROXY_NETWORKS("smtp.proxy_networks", NetworkList.class, "127.0.0.0/8,::1/128", AddressParsers::parseNetworks,
        "peers allowed to send that header (the load balancers): comma list of CIDR networks; any other peer is " +
            "closed without a greeting"),
    SMTP_PROXY_TIMEOUT("smtp.proxy_timeout", Duration.class, "5s", ValueParsers::positiveDuration,
        "the whole PROXY header must arrive within this of the connection (Postfix smtpd_upstream_proxy_timeout); " +
            "a missing, malformed or late header closes the connection"),

    SUBMISSION_LISTEN("submission.listen", List.class, "", AddressParsers::listenListOrEmpty,
        "message submission listeners (RFC 6409, port 587): STARTTLS before AUTH, AUTH before MAIL; needs " +
            "smtp.tls.cert, smtp.tls.key and smtp.auth.users; empty = none"),
    SUBMISSIONS_LISTEN("submissions.listen", List.class, "", AddressParsers::listenListOrEmpty,
        "implicit-TLS submission listeners (RFC 8314, port 465): TLS from the first byte, AUTH before MAIL; " +
            "needs smtp.tls.cert, smtp.tls.key and smtp.auth.users; empty = none"),

    RELAY_NETWORKS("relay.networks", NetworkList.class, "127.0.0.0/8,::1/128", AddressParsers::parseNetworks,
        "clients allowed to relay to any domain: comma list of CIDR networks (IPv4 and IPv6); empty = none"),
    RELAY_DOMAINS("relay.domains", Set.class, "", DomainParsers::parseDomains,
        "domains anyone may send to: comma list; .example.com means every subdomain of example.com"),

    QUEUE_DIR("queue.dir", Path.class, "data/spool", ValueParsers::parseDirectory,
        "spool directory, relative to the working directory unless absolute; created if missing"),
    QUEUE_SYNC("queue.sync", SyncMode.class, "batch", ValueParsers::parseSyncMode,
        "when a message is synced before its 250: always (each), batch (group commit), none (page cache only)"),
    QUEUE_MAX_AGE("queue.max_age", Duration.class, "5d", ValueParsers::positiveDuration,
        "undeliverable mail older than this is bounced (RFC 5321 §4.5.4.1 suggests 4-5 days)"),
    QUEUE_ROLL_CYCLE("queue.roll_cycle", String.class, "minutely", oneOf("secondly", "minutely", "hourly", "daily"),
        "length of a spool file cycle; a cycle's file is deleted once the next has begun and its mail is delivered,"
            + " so the spool holds about two cycles of the traffic (delivered mail too); a spool keeps the cycle it"
            + " was made with; secondly is for tests"),
    QUEUE_MAX_BYTES("queue.max_bytes", Long.class, "auto", ValueParsers.sizeOrAuto(0, Long.MAX_VALUE),
        "undelivered mail the spool may hold before new mail gets 452 4.3.1 (bodies and the deferred index's files);"
            + " auto = 90% of the free space at start plus what the spool already holds"),
    QUEUE_MIN_FREE_BYTES("queue.min_free_bytes", Long.class, "268435456", size(0, Long.MAX_VALUE),
        "free disk space under the spool below which new mail gets 452 4.3.1; bytes, suffixes k, M, G; 0 = off"),
    QUEUE_ACTIVE_LIMIT("queue.active_limit", Integer.class, "20000", intRange(16, 10_000_000),
        "messages delivery keeps in memory (and five times as many recipients), as Postfix's "
            + "qmgr_message_active_limit: the rest waits on disk; a quarter is kept for new mail, and deferred mail taken "
            + "back holds at most an eighth"),

    DELIVERY_ROUTES("delivery.routes", List.class, "", DomainParsers::parseRoutes,
        "next hops: comma list of domain=host; .domain = subdomains, * = everything else; unrouted mail uses MX;"
            + " [host] or host:port skip the MX lookup; port default 25"),
    DELIVERY_TLS("delivery.tls", TlsLevel.class, "may", TlsLevel::parse,
        "outbound TLS (Postfix smtp_tls_security_level): none, may (STARTTLS when offered; a failed handshake falls " +
            "back to plaintext for an hour), encrypt (TLS or defer 4.7.x), verify (encrypt, and the certificate " +
            "must chain to delivery.tls.ca_file and name the MX host or the route's host)"),
    DELIVERY_TLS_POLICY("delivery.tls.policy", List.class, "", DomainParsers::parseTlsPolicy,
        "per recipient domain TLS levels: comma list of domain=level, domains as in delivery.routes (.domain = " +
            "subdomains, * = everything else); other domains get delivery.tls"),
    DELIVERY_TLS_CA_FILE("delivery.tls.ca_file", Path.class, "", ValueParsers::optionalFile,
        "PEM bundle of the CA certificates verify trusts; empty = the JDK's trust store (cacerts)"),
    DELIVERY_IO_THREADS("delivery.io_threads", Integer.class, "auto",
        intRangeOrAuto(1, 64, Runtime.getRuntime().availableProcessors()),
        "selector loop threads for outbound SMTP (delivery loops), 1..64; each next hop and its connections live on "
            + "one of them (a stable hash of the hop); auto = one per available processor"),
    DELIVERY_RETRY_SCHEDULE("delivery.retry.schedule", List.class, "1m,5m,15m,30m,1h,2h,4h", ValueParsers::durationList,
        "waits between delivery attempts of deferred mail; the last one repeats until queue.max_age"),
    DELIVERY_MAX_CONNECTIONS_PER_HOP("delivery.max_connections_per_hop", Integer.class, "20",
        intRange(1, Integer.MAX_VALUE),
        "concurrent outbound connections to one next hop"),
    DELIVERY_MAX_CONNECTIONS("delivery.max_connections", Integer.class, "1000", intRange(1, Integer.MAX_VALUE),
        "concurrent outbound connections in all, shared evenly by the delivery loops (Postfix's smtp process " +
            "limit); at the limit an idle connection is closed for a destination with mail waiting"),
    DELIVERY_MAX_MESSAGES_PER_CONNECTION("delivery.max_messages_per_connection", Integer.class, "100",
        intRange(1, Integer.MAX_VALUE),
        "messages sent over one outbound connection before it is closed and replaced"),
    DELIVERY_IDLE_TIMEOUT("delivery.idle_timeout", Duration.class, "30s", ValueParsers::positiveDuration,
        "an idle pooled outbound connection is closed (QUIT) after this; a next hop with no mail waiting, no " +
            "connection and no back-off in force is forgotten after it too"),
    DELIVERY_MAX_RECIPIENTS_PER_TRANSACTION("delivery.max_recipients_per_transaction", Integer.class, "100",
        intRange(1, Integer.MAX_VALUE),
        "RCPT TO per outbound transaction; more recipients are split (RFC 5321 §4.5.3.1.8: servers take 100)"),
    DELIVERY_SMTP_PORT("delivery.smtp_port", Integer.class, "25", intRange(1, 65535),
        "TCP port of next hops found by MX lookup or routed without a port (Postfix smtp_tcp_port)"),
    DELIVERY_DNS_SERVERS("delivery.dns.servers", List.class, "", AddressParsers::dnsServerList,
        "DNS servers for MX lookups: comma list of host[:port] (port default 53); empty = the system resolver"),
    DELIVERY_DNS_MAX_IN_FLIGHT("delivery.dns.max_in_flight", Integer.class, "100", intRange(1, 65_535),
        "DNS queries outstanding at once for MX lookups; more wait their turn (Postfix: one per smtp process)"),
    DELIVERY_DNS_CACHE_SIZE("delivery.dns.cache_size", Integer.class, "100000", intRange(0, 10_000_000),
        "domains whose MX lookup result is kept (by TTL, least recently used out first), about 0.5 KiB each; " +
            "0 = no cache"),
    DELIVERY_TIMEOUT_CONNECT("delivery.timeout.connect", Duration.class, "30s", ValueParsers::positiveDuration,
        "time allowed to open a TCP connection to a next hop"),
    DELIVERY_TIMEOUT_COMMAND("delivery.timeout.command", Duration.class, "5m", ValueParsers::positiveDuration,
        "wait for the greeting and the EHLO, MAIL and RCPT replies (RFC 5321 §4.5.3.2.1-3: 5 minutes)"),
    DELIVERY_TIMEOUT_DATA_INIT("delivery.timeout.data_init", Duration.class, "2m", ValueParsers::positiveDuration,
        "wait for the 354 reply to DATA (RFC 5321 §4.5.3.2.4: 2 minutes)"),
    DELIVERY_TIMEOUT_DATA_BLOCK("delivery.timeout.data_block", Duration.class, "3m", ValueParsers::positiveDuration,
        "wait for each block of message content to be written (RFC 5321 §4.5.3.2.5: 3 minutes)"),
    DELIVERY_TIMEOUT_DATA_DONE("delivery.timeout.data_done", Duration.class, "10m", ValueParsers::positiveDuration,
        "wait for the reply to the final <CRLF>.<CRLF> (RFC 5321 §4.5.3.2.6: 10 minutes)"),
    DELIVERY_MIN_DATA_RATE("delivery.min_data_rate", Long.class, "10240", size(0, Long.MAX_VALUE),
        "slowest transfer allowed, bytes/s: a body and the reply to its end must be done within data_block + " +
            "data_done + size / this rate (Postfix smtp_min_data_rate); 0 = only the idle timeouts"),
    DELIVERY_DELAY_WARNING("delivery.delay_warning", Duration.class, "off", ValueParsers::durationOrOff,
        "send a delay notification (DSN, RFC 3464) to the sender after mail waited this long, for the recipients " +
            "whose NOTIFY allows it (none given, or with DELAY; RFC 3461); off or 0 = never"),

    METRICS_LISTEN("metrics.listen", InetSocketAddress.class, "127.0.0.1:9025", AddressParsers::listenOrOff,
        "HTTP address for /metrics (Prometheus), /health and the loopback-only /admin/ commands: host:port, or off"),
    METRICS_ADMIN_TOKEN("metrics.admin_token", String.class, "", ValueParsers::parseToken,
        "bearer token every /admin/ request (spool flush, hold, release, delete, requeue) must carry; ops/relay "
            + "sends it from this file; empty = none (loopback peers only, either way)");

    /**
     * The prefixes under which every JVM system property is taken as a configuration key (unknown ones are errors).
     */
    public static final List<String> PREFIXES =
        List.of("smtp.", "submission.", "submissions.", "relay.", "queue.", "delivery.", "metrics.");

    private final String key;
    private final Class<?> type;
    private final String defaultText;
    private final ValueParsers.ValueParser parser;
    private final String doc;

    ConfigKey(
        final String key, final Class<?> type, final String defaultText, final ValueParsers.ValueParser parser,
        final String doc)
    {
        this.key = key;
        this.type = type;
        this.defaultText = defaultText;
        this.parser = parser;
        this.doc = doc;
    }

    /**
     * @return the property name, e.g. {@code smtp.listen}.
     */
    public String key()
    {
        return key;
    }

    /**
     * @return the class of the parsed value ({@code List}, {@code Set} for the list keys); the parsed value of a key
     * that may be unset ({@code smtp.tls.cert}, {@code metrics.listen=off}, ...) is null.
     */
    public Class<?> type()
    {
        return type;
    }

    /**
     * @return the default as written in a properties file (empty when the default is "nothing" or computed).
     */
    public String defaultText()
    {
        return defaultText;
    }

    /**
     * @return one-line description, with units and RFC where they apply.
     */
    public String doc()
    {
        return doc;
    }

    /**
     * @return the section: the part of the key before the first dot ({@code smtp}, {@code relay}, ...).
     */
    public String section()
    {
        return key.substring(0, key.indexOf('.'));
    }

    /**
     * @return what a reload does when this key changes ({@link ReloadScope#RESTART} for most).
     */
    public ReloadScope reloadScope()
    {
        return ReloadScope.of(this);
    }

    Object parse(final String text)
    {
        return parser.parse(text);
    }

    /**
     * @param key a property name.
     * @return the definition, or null when the key is unknown.
     */
    public static ConfigKey of(final String key)
    {
        for (final ConfigKey k : values())
        {
            if (k.key.equals(key))
            {
                return k;
            }
        }

        return null;
    }

    /**
     * @param name a property name.
     * @return true when it starts with one of {@link #PREFIXES}.
     */
    public static boolean hasKnownPrefix(final String name)
    {
        for (final String prefix : PREFIXES)
        {
            if (name.startsWith(prefix))
            {
                return true;
            }
        }

        return false;
    }
}
