package dev.relay.smtp;

import java.util.function.Predicate;

/**
 * What the SMTP conversation needs from the configuration, as plain values (built once by the root package from
 * {@code dev.relay.config.RelayConfig}; tests build it directly).
 *
 * @param relayClient   whether a client address (4 or 16 bytes) may relay to any domain ({@code relay.networks}).
 * @param relayDomain   whether a lower-case recipient domain is one anyone may send to ({@code relay.domains}).
 */
public record SmtpSettings(
    String hostname,
    long maxMessageSize,
    int maxRecipients,
    int maxErrors,
    int maxHops,
    int maxCommandLength,
    long commandTimeoutMs,
    long dataTimeoutMs,
    Predicate<byte[]> relayClient,
    Predicate<String> relayDomain)
{
    /** Defaults as documented in ops/relay.properties, for tests. */
    public static SmtpSettings defaults(final String hostname)
    {
        return new SmtpSettings(hostname, 26_214_400L, 1000, 20, 100, 512, 300_000, 180_000,
            address -> address.length == 4 && address[0] == 127, domain -> false);
    }

    public SmtpSettings withMaxMessageSize(final long size)
    {
        return new SmtpSettings(hostname, size, maxRecipients, maxErrors, maxHops, maxCommandLength,
            commandTimeoutMs, dataTimeoutMs, relayClient, relayDomain);
    }

    public SmtpSettings withMaxRecipients(final int count)
    {
        return new SmtpSettings(hostname, maxMessageSize, count, maxErrors, maxHops, maxCommandLength,
            commandTimeoutMs, dataTimeoutMs, relayClient, relayDomain);
    }

    public SmtpSettings withRelay(final Predicate<byte[]> client, final Predicate<String> domain)
    {
        return new SmtpSettings(hostname, maxMessageSize, maxRecipients, maxErrors, maxHops, maxCommandLength,
            commandTimeoutMs, dataTimeoutMs, client, domain);
    }

    public SmtpSettings withMaxErrors(final int count)
    {
        return new SmtpSettings(hostname, maxMessageSize, maxRecipients, count, maxHops, maxCommandLength,
            commandTimeoutMs, dataTimeoutMs, relayClient, relayDomain);
    }

    public SmtpSettings withMaxHops(final int count)
    {
        return new SmtpSettings(hostname, maxMessageSize, maxRecipients, maxErrors, count, maxCommandLength,
            commandTimeoutMs, dataTimeoutMs, relayClient, relayDomain);
    }

    public SmtpSettings withTimeouts(final long commandMs, final long dataMs)
    {
        return new SmtpSettings(hostname, maxMessageSize, maxRecipients, maxErrors, maxHops, maxCommandLength,
            commandMs, dataMs, relayClient, relayDomain);
    }
}
