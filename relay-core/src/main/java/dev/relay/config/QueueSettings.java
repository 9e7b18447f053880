package dev.relay.config;

import java.time.Duration;
import java.util.List;

/**
 * What the queue manager decides by: how long mail may wait, how much of it is kept in memory and on disk, when a
 * deferred message is tried again, when its sender is warned, how recipients are split into jobs, and where each
 * domain's mail goes. Handed to the queue manager at start and, through its proxy, at each reload ({@code routing}
 * and {@code retrySchedule} apply from the next attempt; the rest keeps its start value); immutable, any thread.
 *
 * @param maxAge                      {@code queue.max_age}: undelivered mail older than this bounces.
 * @param activeLimit                 {@code queue.active_limit}: messages kept in memory; the rest waits on disk.
 * @param maxBytes                    {@code queue.max_bytes}: -1 for auto (90% of the free space plus the spool's
 *                                    files when the spool opens).
 * @param retrySchedule               {@code delivery.retry.schedule}: waits between attempts, at least one; the
 *                                    last repeats.
 * @param delayWarning                {@code delivery.delay_warning}; {@link Duration#ZERO} means no delay
 *                                    notifications.
 * @param maxRecipientsPerTransaction {@code delivery.max_recipients_per_transaction}: recipients per job.
 * @param routing                     {@code delivery.routes}, {@code delivery.tls}, {@code delivery.tls.policy} and
 *                                    {@code delivery.smtp_port}.
 */
public record QueueSettings(
    Duration maxAge,
    int activeLimit,
    long maxBytes,
    List<Duration> retrySchedule,
    Duration delayWarning,
    int maxRecipientsPerTransaction,
    Routing routing)
{
    static QueueSettings from(final ConfigValues values, final int maxRecipientsPerTransaction)
    {
        return new QueueSettings(
            values.get(ConfigKey.QUEUE_MAX_AGE),
            values.get(ConfigKey.QUEUE_ACTIVE_LIMIT),
            values.get(ConfigKey.QUEUE_MAX_BYTES),
            values.get(ConfigKey.DELIVERY_RETRY_SCHEDULE),
            values.get(ConfigKey.DELIVERY_DELAY_WARNING),
            maxRecipientsPerTransaction,
            Routing.from(values));
    }
}
