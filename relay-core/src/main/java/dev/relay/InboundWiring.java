package dev.relay;

import dev.relay.config.AdmissionSettings;
import dev.relay.config.InboundSettings;
import dev.relay.config.NetworkList;
import dev.relay.config.RelayPolicy;
import dev.relay.net.ClientRates;
import dev.relay.net.ConnectionLimiter;
import dev.relay.net.InboundServer;
import dev.relay.smtp.SmtpSession;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * What the inbound stage's objects are made of, from the settings records: the admission limits and rates, the
 * listeners (the SMTP conversation reads its {@code SmtpServerSettings} as the configuration built it). Used at
 * start and at each reload, so both build them the same way. Stateless; the control thread.
 */
final class InboundWiring
{
    private InboundWiring()
    {
    }

    /** Inbound admission: relay.networks exempt unless smtp.limits_exempt_relay_networks=false. */
    static ConnectionLimiter.Limits limits(final AdmissionSettings admission, final RelayPolicy relay)
    {
        final boolean exemptRelayNetworks = admission.limitsExemptRelayNetworks();
        final NetworkList relayNetworks = relay.networks();
        return new ConnectionLimiter.Limits(admission.maxConnections(), admission.maxConnectionsPerIp(),
            address -> exemptRelayNetworks && relayNetworks.contains(address));
    }

    /** The per-client rates (Postfix's anvil). */
    static ClientRates.Limits rates(final AdmissionSettings admission)
    {
        return new ClientRates.Limits(admission.connectionsPerMinute(), admission.messagesPerMinute(),
            admission.authFailuresPerMinute());
    }

    /** smtp.listen (tag 0), then submission.listen and submissions.listen, in that order. */
    static List<InboundServer.Listener> listeners(final InboundSettings inbound)
    {
        final List<InboundServer.Listener> listeners = new ArrayList<>();
        for (final InetSocketAddress address : inbound.smtpListen())
        {
            listeners.add(new InboundServer.Listener(address, SmtpSession.SMTP_LISTENER));
        }
        for (final InetSocketAddress address : inbound.submissionListen())
        {
            listeners.add(new InboundServer.Listener(address, SmtpSession.SUBMISSION_LISTENER));
        }
        for (final InetSocketAddress address : inbound.submissionsListen())
        {
            listeners.add(new InboundServer.Listener(address, SmtpSession.SUBMISSIONS_LISTENER));
        }
        return listeners;
    }
}
