package dev.relay.smtp;

/**
 * What one outbound SMTP connection needs from the configuration. Immutable; shared by every client session.
 *
 * @param heloName                    the name sent in EHLO / HELO.
 * @param commandTimeoutMs            waiting for the greeting and the replies to EHLO, MAIL, RCPT, RSET; also the idle
 *                                    timeout between transactions (RFC 5321 §4.5.3.2: 5 minutes).
 * @param dataInitTimeoutMs           waiting for the 354 to DATA (2 minutes).
 * @param dataBlockTimeoutMs          writing the body, per part that leaves (3 minutes).
 * @param dataDoneTimeoutMs           waiting for the reply to the end of data (10 minutes).
 * @param maxRecipientsPerTransaction recipients per MAIL transaction; the caller splits larger messages.
 */
public record ClientSettings(
    String heloName,
    long commandTimeoutMs,
    long dataInitTimeoutMs,
    long dataBlockTimeoutMs,
    long dataDoneTimeoutMs,
    int maxRecipientsPerTransaction)
{
    public ClientSettings
    {
        if (heloName == null || heloName.isEmpty())
        {
            throw new IllegalArgumentException("heloName");
        }
        if (commandTimeoutMs <= 0 || dataInitTimeoutMs <= 0 || dataBlockTimeoutMs <= 0 || dataDoneTimeoutMs <= 0)
        {
            throw new IllegalArgumentException("timeouts must be positive");
        }
        if (maxRecipientsPerTransaction < 1)
        {
            throw new IllegalArgumentException("maxRecipientsPerTransaction");
        }
    }

    /** The RFC 5321 §4.5.3.2 timeouts and 100 recipients per transaction (the minimum a server must accept). */
    public static ClientSettings defaults(final String heloName)
    {
        return new ClientSettings(heloName, 300_000, 120_000, 180_000, 600_000, 100);
    }
}
