package dev.relay.delivery.client;

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
 * @param minDataRate                 bytes per second a transfer must average: the body and the reply to its end
 *                                    must be done within data block + data done timeouts + size / this rate;
 *                                    0 for no limit beyond the idle timeouts.
 */
public record ClientSettings(
    String heloName,
    long commandTimeoutMs,
    long dataInitTimeoutMs,
    long dataBlockTimeoutMs,
    long dataDoneTimeoutMs,
    int maxRecipientsPerTransaction,
    long minDataRate)
{
    /** The default {@code delivery.min_data_rate}: 10 KiB/s, so 25 MiB may take about 55 minutes, no more. */
    public static final long DEFAULT_MIN_DATA_RATE = 10 * 1024;

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
        if (minDataRate < 0)
        {
            throw new IllegalArgumentException("minDataRate");
        }
    }

    public ClientSettings(
        final String heloName, final long commandTimeoutMs, final long dataInitTimeoutMs,
        final long dataBlockTimeoutMs, final long dataDoneTimeoutMs, final int maxRecipientsPerTransaction)
    {
        this(heloName, commandTimeoutMs, dataInitTimeoutMs, dataBlockTimeoutMs, dataDoneTimeoutMs,
            maxRecipientsPerTransaction, DEFAULT_MIN_DATA_RATE);
    }

    /** The RFC 5321 §4.5.3.2 timeouts and 100 recipients per transaction (the minimum a server must accept). */
    public static ClientSettings defaults(final String heloName)
    {
        return new ClientSettings(heloName, 300_000, 120_000, 180_000, 600_000, 100, DEFAULT_MIN_DATA_RATE);
    }
}
