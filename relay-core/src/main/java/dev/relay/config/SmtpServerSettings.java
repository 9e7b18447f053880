package dev.relay.config;

import java.time.Duration;
import java.util.Map;

/**
 * What the inbound SMTP conversation takes from the configuration: its name, the limits of a transaction, its idle
 * timeouts and who may relay. The one record of these keys: built here from the parsed values, handed by the root
 * package to each loop's {@code dev.relay.smtp.SessionContext} at start and at each reload (for connections accepted
 * after it), and read by the session as it is. Immutable, any thread.
 *
 * @param hostname         {@code smtp.hostname}, lowercase (empty resolved to the machine's name): the name in the
 *                         greeting, EHLO reply and Received headers.
 * @param maxMessageSize   {@code smtp.max_message_size} in bytes (advertised in SIZE, RFC 1870).
 * @param maxRecipients    {@code smtp.max_recipients}: RCPT TO accepted per transaction.
 * @param maxErrors        {@code smtp.max_errors}: protocol errors per connection before 421.
 * @param maxHops          {@code smtp.max_hops}: Received headers allowed before a message is refused as a loop.
 * @param maxCommandLength {@code smtp.max_command_length}: longest command line in octets including CRLF.
 * @param commandTimeoutMs {@code smtp.timeout.command}: idle time allowed while waiting for a command.
 * @param dataTimeoutMs    {@code smtp.timeout.data}: idle time allowed between reads of message content.
 * @param relay            {@code relay.networks} and {@code relay.domains}: the same {@link RelayPolicy} as
 *                         {@link RelayConfig#relay()}.
 */
public record SmtpServerSettings(
    String hostname,
    long maxMessageSize,
    int maxRecipients,
    int maxErrors,
    int maxHops,
    int maxCommandLength,
    long commandTimeoutMs,
    long dataTimeoutMs,
    RelayPolicy relay)
{
    static SmtpServerSettings from(final ConfigValues values, final String hostname, final RelayPolicy relay)
    {
        return new SmtpServerSettings(
            hostname,
            values.get(ConfigKey.SMTP_MAX_MESSAGE_SIZE),
            values.get(ConfigKey.SMTP_MAX_RECIPIENTS),
            values.get(ConfigKey.SMTP_MAX_ERRORS),
            values.get(ConfigKey.SMTP_MAX_HOPS),
            values.get(ConfigKey.SMTP_MAX_COMMAND_LENGTH),
            values.<Duration>get(ConfigKey.SMTP_TIMEOUT_COMMAND).toMillis(),
            values.<Duration>get(ConfigKey.SMTP_TIMEOUT_DATA).toMillis(),
            relay);
    }

    /**
     * Every key at its default ({@link ConfigKey}'s table) but {@code smtp.hostname}: for tests and benchmarks.
     *
     * @param hostname a host name, as {@code smtp.hostname} accepts it.
     */
    public static SmtpServerSettings defaults(final String hostname)
    {
        try
        {
            return ConfigLoader.fromMap(Map.of(ConfigKey.SMTP_HOSTNAME.key(), hostname)).smtp();
        }
        catch (final ConfigException ex)
        {
            throw new IllegalArgumentException(ex.getMessage(), ex);
        }
    }

    public SmtpServerSettings withMaxMessageSize(final long size)
    {
        return new SmtpServerSettings(hostname, size, maxRecipients, maxErrors, maxHops, maxCommandLength,
            commandTimeoutMs, dataTimeoutMs, relay);
    }

    public SmtpServerSettings withMaxRecipients(final int count)
    {
        return new SmtpServerSettings(hostname, maxMessageSize, count, maxErrors, maxHops, maxCommandLength,
            commandTimeoutMs, dataTimeoutMs, relay);
    }

    public SmtpServerSettings withRelay(final RelayPolicy policy)
    {
        return new SmtpServerSettings(hostname, maxMessageSize, maxRecipients, maxErrors, maxHops, maxCommandLength,
            commandTimeoutMs, dataTimeoutMs, policy);
    }

    public SmtpServerSettings withMaxErrors(final int count)
    {
        return new SmtpServerSettings(hostname, maxMessageSize, maxRecipients, count, maxHops, maxCommandLength,
            commandTimeoutMs, dataTimeoutMs, relay);
    }

    public SmtpServerSettings withMaxHops(final int count)
    {
        return new SmtpServerSettings(hostname, maxMessageSize, maxRecipients, maxErrors, count, maxCommandLength,
            commandTimeoutMs, dataTimeoutMs, relay);
    }
}
