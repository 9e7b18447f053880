package dev.relay.config;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;

/**
 * What the inbound server is built from: its listeners, selector loops and read buffers, the drain at shutdown and
 * the PROXY protocol of {@code smtp.listen}. Read by the root package when it builds and stops the inbound stage;
 * immutable, any thread.
 *
 * @param smtpListen        {@code smtp.listen}: at least one address; port 0 means any free port.
 * @param submissionListen  {@code submission.listen} (RFC 6409), possibly empty.
 * @param submissionsListen {@code submissions.listen} (RFC 8314 implicit TLS), possibly empty.
 * @param ioThreads         {@code smtp.io_threads}: inbound selector loops, 1..64 ({@code auto} resolved).
 * @param singleAcceptor    {@code smtp.accept=acceptor}: one loop accepts and hands connections to the others.
 * @param bufferSize        {@code smtp.buffer_size}: bytes per pooled read buffer.
 * @param drainTimeout      {@code smtp.drain_timeout}: time open sessions get to finish on shutdown.
 * @param proxyProtocol     {@code smtp.proxy_protocol}: connections on {@code smtp.listen} start with a PROXY header.
 * @param proxyNetworks     {@code smtp.proxy_networks}: the peers allowed to send a PROXY header.
 * @param proxyTimeout      {@code smtp.proxy_timeout}: the whole PROXY header's deadline.
 */
public record InboundSettings(
    List<InetSocketAddress> smtpListen,
    List<InetSocketAddress> submissionListen,
    List<InetSocketAddress> submissionsListen,
    int ioThreads,
    boolean singleAcceptor,
    int bufferSize,
    Duration drainTimeout,
    boolean proxyProtocol,
    NetworkList proxyNetworks,
    Duration proxyTimeout)
{
    static InboundSettings from(final ConfigValues values)
    {
        return new InboundSettings(
            values.get(ConfigKey.SMTP_LISTEN),
            values.get(ConfigKey.SUBMISSION_LISTEN),
            values.get(ConfigKey.SUBMISSIONS_LISTEN),
            values.get(ConfigKey.SMTP_IO_THREADS),
            "acceptor".equals(values.get(ConfigKey.SMTP_ACCEPT)),
            values.get(ConfigKey.SMTP_BUFFER_SIZE),
            values.get(ConfigKey.SMTP_DRAIN_TIMEOUT),
            values.get(ConfigKey.SMTP_PROXY_PROTOCOL),
            values.get(ConfigKey.SMTP_PROXY_NETWORKS),
            values.get(ConfigKey.SMTP_PROXY_TIMEOUT));
    }
}
