package dev.relay.delivery;

import dev.relay.metrics.RelayMetrics;
import dev.relay.smtp.DsnParameters;
import dev.relay.spool.OutcomeJournal;

import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * Records what happened to one recipient, everywhere it must be known: on the {@link QueuedMessage} (for the round's
 * end and the DSN), in the {@link OutcomeJournal} (final outcomes, at once: a crash between a remote 250 and this
 * write is the only source of duplicates), in the metrics, and in the delivery log, one line per recipient per
 * attempt in Postfix's shape. A deferral is not journaled per recipient: the message's state goes to the deferred
 * index with its next attempt's time when the round ends ({@link DeferredQueue#park}).
 * <p>
 * Owned by the queue manager's thread. Allocates the log line's strings.
 */
final class OutcomeRecorder
{
    private final OutcomeJournal journal;
    private final RelayMetrics metrics;

    OutcomeRecorder(final OutcomeJournal journal, final RelayMetrics metrics)
    {
        this.journal = journal;
        this.metrics = metrics;
    }

    /** Recipient {@code position} of {@code job} was accepted by the next hop (2xx after the end of data). */
    void delivered(final DeliveryJob job, final int position, final long nowMs)
    {
        final QueuedMessage queued = job.queued;
        final int index = job.recipientIndexes[position];
        final String reply = job.reply(position);
        final String dsn = job.statusCode(position);
        queued.status[index] = QueuedMessage.DELIVERED;
        if (!job.peerOffersDsn() && DsnParameters.notifiesSuccess(queued.message.notify(index)))
        {
            // RFC 3461 §6.2.3: the next hop cannot carry NOTIFY=SUCCESS on, so the relay reports "relayed" itself
            queued.markSuccessToReport(index);
            queued.lastReply[index] = reply;
            queued.remoteMta[index] = job.nextHop.host();
        }
        journal.recordResult(queued.queueId(), index, OutcomeJournal.DELIVERED, queued.attempts + 1, 0, reply);
        metrics.onDelivered((nowMs - queued.message.receivedAtMs()) * 1_000_000L);
        DeliveryLog.attempt(queued.queueIdText(), recipient(queued, index), job.relay(), job.tls(),
            nowMs - queued.message.receivedAtMs(), dsn == null ? "2.0.0" : dsn, "sent", reply);
    }

    /** Recipient {@code index} failed for good (5xx, no such domain, the peer cannot take the message). */
    void bounced(
        final QueuedMessage queued, final int index, final String relay, final String tls, final String dsn,
        final String reply, final String remoteHost, final long nowMs)
    {
        queued.status[index] = QueuedMessage.BOUNCED;
        queued.lastReply[index] = reply;
        queued.lastStatusCode[index] = dsn == null ? "5.0.0" : dsn;
        queued.remoteMta[index] = remoteHost;
        journal.recordResult(queued.queueId(), index, OutcomeJournal.BOUNCED, queued.attempts + 1, 0, reply);
        metrics.onBounced();
        DeliveryLog.attempt(queued.queueIdText(), recipient(queued, index), relay, tls,
            nowMs - queued.message.receivedAtMs(), queued.lastStatusCode[index], "bounced", reply);
    }

    /** Recipient {@code index} is to be tried again (4xx, timeout, lost connection, no usable address). */
    void deferred(
        final QueuedMessage queued, final int index, final String relay, final String tls, final String dsn,
        final String reply, final String remoteHost, final long nowMs)
    {
        queued.status[index] = QueuedMessage.DEFERRED;
        queued.lastReply[index] = reply;
        queued.lastStatusCode[index] = dsn == null ? "4.0.0" : dsn;
        queued.remoteMta[index] = remoteHost;
        metrics.onDeferred();
        DeliveryLog.attempt(queued.queueIdText(), recipient(queued, index), relay, tls,
            nowMs - queued.message.receivedAtMs(), queued.lastStatusCode[index], "deferred", reply);
    }

    /** {@code queue.max_age} passed: every deferred recipient bounces with 4.4.7 and its last error. */
    void expired(final QueuedMessage queued, final long ageMs)
    {
        for (int i = 0; i < queued.recipientCount(); i++)
        {
            if (queued.status[i] == QueuedMessage.DEFERRED)
            {
                final String reply = "message expired after " + Duration.ofMillis(ageMs).toSeconds() +
                    "s in the queue; last error: " + queued.lastReply[i];
                queued.status[i] = QueuedMessage.BOUNCED;
                queued.lastReply[i] = reply;
                queued.lastStatusCode[i] = "4.4.7";
                journal.recordResult(queued.queueId(), i, OutcomeJournal.BOUNCED, queued.attempts, 0, reply);
                metrics.onBounced();
                DeliveryLog.attempt(queued.queueIdText(), recipient(queued, i), "none", null, ageMs, "4.4.7",
                    "expired", reply);
            }
        }
    }

    /**
     * The message moved to a newer copy: the journal cycles its outcomes so far live in may now be deleted, so they
     * are written again.
     */
    void restated(final QueuedMessage queued)
    {
        for (int i = 0; i < queued.recipientCount(); i++)
        {
            final byte status = queued.status[i];
            if (status == QueuedMessage.DELIVERED || status == QueuedMessage.BOUNCED ||
                status == QueuedMessage.DEFERRED)
            {
                journal.recordResult(queued.queueId(), i, status == QueuedMessage.DELIVERED ? OutcomeJournal.DELIVERED :
                    status == QueuedMessage.BOUNCED ? OutcomeJournal.BOUNCED : OutcomeJournal.DEFERRED,
                    queued.attempts, queued.nextAttemptMs, queued.lastReply[i]);
            }
        }
    }

    /** The message is finished: every recipient final, its DSN (if any) durable. */
    void done(final QueuedMessage queued)
    {
        journal.recordDone(queued.queueId());
        DeliveryLog.info("{}: removed", queued.queueIdText());
    }

    private static String recipient(final QueuedMessage queued, final int index)
    {
        return new String(queued.message.recipients().get(index), StandardCharsets.UTF_8);
    }
}
