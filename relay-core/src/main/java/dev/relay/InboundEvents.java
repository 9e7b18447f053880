package dev.relay;

import dev.relay.metrics.RelayMetrics;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.SessionEvents;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.charset.StandardCharsets;

/**
 * Logs one line per accepted message and one per connection (Postfix's smtpd/cleanup shape, so the same greps
 * work), and feeds the inbound metrics. Runs on loop threads: logging goes through the relay's asynchronous appender
 * ({@link AsyncConsoleAppender}), which only queues the line on this thread.
 */
final class InboundEvents implements SessionEvents
{
    private static final Logger LOG = LoggerFactory.getLogger("dev.relay.smtpd");

    private final RelayMetrics metrics;

    InboundEvents(final RelayMetrics metrics)
    {
        this.metrics = metrics;
    }

    @Override
    public void onMessageAccepted(final InboundMessage message, final String client, final long acceptLatencyNs)
    {
        metrics.onMessageAccepted(acceptLatencyNs);
        if (LOG.isInfoEnabled())
        {
            if (message.authUser() == null)
            {
                LOG.info("{}: from=<{}>, nrcpt={}, size={}, client=[{}]", message.queueIdText(),
                    new String(message.reversePath(), StandardCharsets.UTF_8), message.recipients().size(),
                    message.bodyBytes(), client);
            }
            else
            {
                // Postfix's names: sasl_method=, sasl_username=
                LOG.info("{}: from=<{}>, nrcpt={}, size={}, client=[{}], sasl_method={}, sasl_username={}",
                    message.queueIdText(), new String(message.reversePath(), StandardCharsets.UTF_8),
                    message.recipients().size(), message.bodyBytes(), client, message.authMechanism(),
                    message.authUser());
            }
        }
    }

    @Override
    public void onTlsEstablished(final String client, final String protocol, final String cipher)
    {
        metrics.onTlsHandshake(true);
        LOG.info("TLS connection established from {}: {} with cipher {}", client, protocol, cipher);
    }

    @Override
    public void onTlsFailed(final String client, final String reason)
    {
        metrics.onTlsHandshake(false);
        LOG.info("TLS failed from {}: {}", client, reason);
    }

    @Override
    public void onAuthenticated(final String client, final String mechanism, final String user)
    {
        metrics.onAuth(true);
        LOG.info("{}: sasl_method={}, sasl_username={}", client, mechanism, user);
    }

    @Override
    public void onAuthFailed(final String client, final String mechanism, final String user, final String reason)
    {
        metrics.onAuth(false);
        LOG.warn("{}: SASL {} authentication failed: {}, sasl_username={}", client, mechanism, reason, user);
    }

    @Override
    public void onMessageRejected(final InboundMessage message, final String client, final String reason)
    {
        metrics.onMessageRejected();
        LOG.info("{}: reject: {}; from=<{}>, client=[{}]", message.queueIdText(), reason,
            message.reversePath() == null ? "" : new String(message.reversePath(), StandardCharsets.UTF_8), client);
    }

    @Override
    public void onDisconnect(final String client, final String summary, final boolean timedOut, final boolean tls)
    {
        metrics.onConnectionClosed(tls);
        if (LOG.isInfoEnabled())
        {
            LOG.info("{} from {} {}", timedOut ? "timeout, disconnect" : "disconnect", client, summary);
        }
    }
}
