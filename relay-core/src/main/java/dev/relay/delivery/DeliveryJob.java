package dev.relay.delivery;

/**
 * Some recipients of one message, bound for one hop, in one SMTP transaction (at most
 * {@code delivery.max_recipients_per_transaction} of them). Owned by the delivery thread.
 */
final class DeliveryJob
{
    final QueuedMessage queued;
    final Hop hop;
    final int[] recipientIndexes;
    long startedMs;

    DeliveryJob(final QueuedMessage queued, final Hop hop, final int[] recipientIndexes)
    {
        this.queued = queued;
        this.hop = hop;
        this.recipientIndexes = recipientIndexes;
    }
}
