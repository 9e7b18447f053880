package dev.relay.config;

import java.net.InetSocketAddress;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The rules between keys (DESIGN.md's fine print for TLS and submission): TLS needs a certificate and its key,
 * {@code smtp.tls.required} and the submission listeners need TLS, submission needs AUTH, a TLS read buffer holds a
 * record, and no address is bound by two listeners. They look at the parsed values before any settings record is
 * built. Stateless; start-up and reload only.
 */
final class CrossKeyRules
{
    private CrossKeyRules()
    {
    }

    /** Adds a problem, naming the key it is about, for each rule between {@code values} that is broken. */
    static void check(
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
        final Set<InetSocketAddress> bound = new HashSet<>();
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
}
