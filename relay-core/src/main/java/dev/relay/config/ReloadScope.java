package dev.relay.config;

/**
 * What a reload (SIGHUP, {@code ops/relay reload}) does with a changed key: the relay re-reads its properties file
 * and, when the whole file validates, puts every key that is not {@link #RESTART} in force; a changed
 * {@link #RESTART} key keeps its running value and is named in the log. {@code ops/relay.properties} says each key's
 * scope in the words of {@link #comment()}.
 * <p>
 * A key added without an entry here needs a restart: the safe default. Immutable; any thread.
 */
public enum ReloadScope
{
    /** Every decision from then on, on open connections too (admission, the rates, the tarpit). */
    NOW("reload: applies at once, to open connections' next step too (none is closed)"),
    /** Connections accepted after the reload; open ones keep the value they started with. */
    NEW_CONNECTIONS("reload: applies to connections accepted after it"),
    /** The queue manager's next routing or retry decision: new mail, and deferred mail at its next attempt. */
    NEXT_ATTEMPT("reload: applies to new mail and to deferred mail from its next attempt"),
    /** The file it names is read again at once (it is also re-read when it changes); another path needs a restart. */
    FILE("reload: the file is read again at once; another path needs a restart"),
    /** Only a restart changes it. */
    RESTART("reload: needs a restart");

    private final String comment;

    ReloadScope(final String comment)
    {
        this.comment = comment;
    }

    /** The line {@code ops/relay.properties} has for the key, without its {@code "# "}. */
    public String comment()
    {
        return comment;
    }

    /** The scope of {@code key}. */
    public static ReloadScope of(final ConfigKey key)
    {
        switch (key)
        {
            case SMTP_MAX_CONNECTIONS:
            case SMTP_MAX_CONNECTIONS_PER_IP:
            case SMTP_RATE_CONNECTIONS_PER_MINUTE:
            case SMTP_RATE_MESSAGES_PER_MINUTE:
            case SMTP_RATE_AUTH_FAILURES_PER_MINUTE:
            case SMTP_SOFT_ERROR_LIMIT:
            case SMTP_ERROR_DELAY:
                return NOW;
            case SMTP_MAX_MESSAGE_SIZE:
            case SMTP_MAX_RECIPIENTS:
            case SMTP_MAX_ERRORS:
            case SMTP_MAX_HOPS:
            case SMTP_MAX_COMMAND_LENGTH:
            case SMTP_LIMITS_EXEMPT_RELAY_NETWORKS:
            case SMTP_PROXY_NETWORKS:
            case RELAY_NETWORKS:
            case RELAY_DOMAINS:
                return NEW_CONNECTIONS;
            case DELIVERY_ROUTES:
            case DELIVERY_RETRY_SCHEDULE:
                return NEXT_ATTEMPT;
            case SMTP_TLS_CERT:
            case SMTP_TLS_KEY:
            case SMTP_AUTH_USERS:
                return FILE;
            default:
                return RESTART;
        }
    }
}
