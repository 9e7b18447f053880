package dev.relay.config;

import java.nio.file.Path;

/**
 * SMTP AUTH (RFC 4954): the users file and whether AUTH is offered without TLS. Read by the root package when it
 * loads the users and builds the session contexts; immutable, any thread.
 *
 * @param users          {@code smtp.auth.users}, or null when AUTH is off.
 * @param allowPlaintext {@code smtp.auth.allow_plaintext}: AUTH offered without TLS.
 */
public record AuthSettings(Path users, boolean allowPlaintext)
{
    static AuthSettings from(final ConfigValues values)
    {
        return new AuthSettings(values.get(ConfigKey.SMTP_AUTH_USERS), values.get(ConfigKey.SMTP_AUTH_ALLOW_PLAINTEXT));
    }
}
