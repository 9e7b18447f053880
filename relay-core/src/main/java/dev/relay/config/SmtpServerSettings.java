package dev.relay.config;

import java.time.Duration;

/**
 * What the inbound SMTP conversation takes from the configuration: its name, the limits of a transaction and its
 * idle timeouts. The root package hands it to each session context (as {@code dev.relay.smtp.SmtpSettings}, with
 * {@link RelayPolicy}'s decisions), at start and at each reload for connections accepted after it; immutable, any
 * thread.
 *
 * @param hostname         {@code smtp.hostname}, lowercase (empty resolved to the machine's name): the name in the
 *                         greeting, EHLO reply and Received headers.
 * @param maxMessageSize   {@code smtp.max_message_size} in bytes (advertised in SIZE, RFC 1870).
 * @param maxRecipients    {@code smtp.max_recipients}: RCPT TO accepted per transaction.
 * @param maxErrors        {@code smtp.max_errors}: protocol errors per connection before 421.
 * @param maxHops          {@code smtp.max_hops}: Received headers allowed before a message is refused as a loop.
 * @param maxCommandLength {@code smtp.max_command_length}: longest command line in octets including CRLF.
 * @param commandTimeout   {@code smtp.timeout.command}: idle time allowed while waiting for a command.
 * @param dataTimeout      {@code smtp.timeout.data}: idle time allowed between reads of message content.
 */
public record SmtpServerSettings(
    String hostname,
    long maxMessageSize,
    int maxRecipients,
    int maxErrors,
    int maxHops,
    int maxCommandLength,
    Duration commandTimeout,
    Duration dataTimeout)
{
    static SmtpServerSettings from(final ConfigValues values, final String hostname)
    {
        return new SmtpServerSettings(
            hostname,
            values.get(ConfigKey.SMTP_MAX_MESSAGE_SIZE),
            values.get(ConfigKey.SMTP_MAX_RECIPIENTS),
            values.get(ConfigKey.SMTP_MAX_ERRORS),
            values.get(ConfigKey.SMTP_MAX_HOPS),
            values.get(ConfigKey.SMTP_MAX_COMMAND_LENGTH),
            values.get(ConfigKey.SMTP_TIMEOUT_COMMAND),
            values.get(ConfigKey.SMTP_TIMEOUT_DATA));
    }
}
