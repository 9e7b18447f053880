package dev.relay.delivery.client;

import dev.relay.net.PemFiles;
import dev.relay.net.ServerTlsContext;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSession;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import java.io.IOException;
import java.net.Socket;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.List;

/**
 * The relay's TLS as a client (STARTTLS to next hops): client-mode {@link SSLEngine}s from one of two contexts, on
 * the JDK's engine or BoringSSL's (Netty's tcnative, driven by our loop like any {@link SSLEngine}), as
 * {@code smtp.tls.provider} says.
 * <ul>
 * <li>verifying ({@code verify}): the chain must lead to a CA of {@code delivery.tls.ca_file} (a PEM bundle) or of
 * the JDK's trust store, and the certificate must name the peer (RFC 6125 through the JDK's "HTTPS" endpoint
 * identification: DNS names with a leftmost wildcard, an IP literal against its IP addresses); the handshake fails
 * otherwise;</li>
 * <li>opportunistic ({@code may}, {@code encrypt}): any certificate is taken, as Postfix does below
 * {@code verify}; whether its chain was trusted is still found out, for the log ("Trusted" or "Untrusted TLS
 * connection established").</li>
 * </ul>
 * Each context keeps its own session cache (keyed by the peer's name and port), so connections to a hop resume
 * the session of the one before instead of a full handshake, and a session made without checks is never resumed
 * where checks are due. TLS 1.3 and 1.2.
 * <p>
 * Thread safe: {@link #newEngine} runs on the delivery loops (it allocates an engine); the trust checks run on the
 * handshake's delegated-task threads.
 */
public final class ClientTlsContext
{
    private static final Logger LOG = LoggerFactory.getLogger(ClientTlsContext.class);
    private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};
    /** Sessions kept for resumption, per context: a relay talks to a bounded set of busy next hops. */
    private static final int SESSION_CACHE_SIZE = 4096;
    /** Where the opportunistic trust check leaves its answer, in the session it checked. */
    private static final String TRUSTED = "dev.relay.tls.trusted";

    /** Postfix's words for a client TLS connection: the certificate matched the name and chained to a CA. */
    public static final String VERIFIED = "Verified";
    /** The chain leads to a trusted CA; the name was not checked. */
    public static final String TRUSTED_PEER = "Trusted";
    /** The chain was not checked or did not lead to a trusted CA. */
    public static final String UNTRUSTED = "Untrusted";

    private final X509ExtendedTrustManager trust;
    private final SSLContext jdkVerifying;
    private final SSLContext jdkOpportunistic;
    private final io.netty.handler.ssl.SslContext opensslVerifying;
    private final io.netty.handler.ssl.SslContext opensslOpportunistic;

    private ClientTlsContext(
        final X509ExtendedTrustManager trust, final SSLContext jdkVerifying, final SSLContext jdkOpportunistic,
        final io.netty.handler.ssl.SslContext opensslVerifying,
        final io.netty.handler.ssl.SslContext opensslOpportunistic)
    {
        this.trust = trust;
        this.jdkVerifying = jdkVerifying;
        this.jdkOpportunistic = jdkOpportunistic;
        this.opensslVerifying = opensslVerifying;
        this.opensslOpportunistic = opensslOpportunistic;
    }

    /**
     * @param caFile   PEM bundle of trusted CA certificates, or null for the JDK's trust store.
     * @param provider whose engines ({@code AUTO}: BoringSSL where it loads).
     * @throws IOException              when {@code caFile} cannot be read or holds no certificate.
     * @throws GeneralSecurityException when a certificate does not parse, or {@code OPENSSL} does not load.
     */
    public static ClientTlsContext load(final Path caFile, final ServerTlsContext.Provider provider)
        throws IOException, GeneralSecurityException
    {
        final boolean openssl = provider.usesOpenSsl();
        final TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        if (caFile == null)
        {
            factory.init((KeyStore)null);
        }
        else
        {
            final List<X509Certificate> cas = PemFiles.readCertificates(caFile);
            final KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            for (int i = 0; i < cas.size(); i++)
            {
                store.setCertificateEntry("ca" + i, cas.get(i));
            }
            factory.init(store);
        }
        X509ExtendedTrustManager trust = null;
        for (final TrustManager manager : factory.getTrustManagers())
        {
            if (manager instanceof X509ExtendedTrustManager)
            {
                trust = (X509ExtendedTrustManager)manager;
            }
        }
        if (trust == null)
        {
            throw new GeneralSecurityException("no X.509 trust manager");
        }
        final TrustManager recording = new RecordingTrustManager(trust);
        final ClientTlsContext context;
        if (openssl)
        {
            try
            {
                context = new ClientTlsContext(trust, null, null,
                    SslContextBuilder.forClient().sslProvider(SslProvider.OPENSSL).protocols(PROTOCOLS)
                        .trustManager(trust).endpointIdentificationAlgorithm("HTTPS")
                        .sessionCacheSize(SESSION_CACHE_SIZE).build(),
                    SslContextBuilder.forClient().sslProvider(SslProvider.OPENSSL).protocols(PROTOCOLS)
                        .trustManager(recording).endpointIdentificationAlgorithm(null)
                        .sessionCacheSize(SESSION_CACHE_SIZE).build());
            }
            catch (final SSLException ex)
            {
                throw new GeneralSecurityException("BoringSSL refused the client context: " + ex.getMessage(), ex);
            }
        }
        else
        {
            context = new ClientTlsContext(trust, jdkContext(trust), jdkContext(recording), null, null);
        }
        LOG.info("outbound TLS: CAs from {}; engine {}", caFile == null ? "the JDK's trust store" : caFile,
            openssl ? OpenSsl.versionString() + " (netty-tcnative)" : "JDK " + System.getProperty("java.version"));
        return context;
    }

    private static SSLContext jdkContext(final TrustManager trust) throws GeneralSecurityException
    {
        final SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, new TrustManager[]{trust}, null);
        context.getClientSessionContext().setSessionCacheSize(SESSION_CACHE_SIZE);
        return context;
    }

    /** Whether engines are BoringSSL's (else the JDK's). */
    public boolean isOpenSsl()
    {
        return opensslVerifying != null;
    }

    /**
     * A client engine for one STARTTLS to {@code peerName}:{@code port} (the name also keys the session cache and
     * is sent as SNI when it is a host name).
     *
     * @param verify check the chain and that the certificate names {@code peerName}.
     */
    public SSLEngine newEngine(final String peerName, final int port, final boolean verify)
    {
        if (opensslVerifying != null)
        {
            // OPENSSL, not OPENSSL_REFCNT: the native state goes when TlsLayer closes the engine both ways
            return (verify ? opensslVerifying : opensslOpportunistic)
                .newEngine(UnpooledByteBufAllocator.DEFAULT, peerName, port);
        }
        final SSLEngine engine = (verify ? jdkVerifying : jdkOpportunistic).createSSLEngine(peerName, port);
        engine.setUseClientMode(true);
        final SSLParameters parameters = engine.getSSLParameters();
        parameters.setProtocols(PROTOCOLS);
        if (verify)
        {
            parameters.setEndpointIdentificationAlgorithm("HTTPS");
        }
        engine.setSSLParameters(parameters);
        return engine;
    }

    /**
     * How far the peer of an established {@code engine} was checked, in Postfix's words: {@link #VERIFIED} (made
     * with {@code verify}), {@link #TRUSTED_PEER} or {@link #UNTRUSTED}. A resumed session may not carry the
     * answer of the handshake that made it: the chain is checked again then (on the caller's thread).
     */
    public String trustOf(final SSLEngine engine, final boolean verified)
    {
        if (verified)
        {
            return VERIFIED;
        }
        final SSLSession session = engine.getSession();
        final Object known = session.getValue(TRUSTED);
        if (known instanceof Boolean)
        {
            return (Boolean)known ? TRUSTED_PEER : UNTRUSTED;
        }
        boolean trusted;
        try
        {
            final java.security.cert.Certificate[] peer = session.getPeerCertificates();
            final X509Certificate[] chain = new X509Certificate[peer.length];
            for (int i = 0; i < peer.length; i++)
            {
                chain[i] = (X509Certificate)peer[i];
            }
            trust.checkServerTrusted(chain, "UNKNOWN");
            trusted = true;
        }
        catch (final CertificateException | SSLException | ClassCastException | IllegalArgumentException ex)
        {
            trusted = false;
        }
        remember(session, trusted);
        return trusted ? TRUSTED_PEER : UNTRUSTED;
    }

    private static void remember(final SSLSession session, final boolean trusted)
    {
        if (session == null)
        {
            return;
        }
        try
        {
            session.putValue(TRUSTED, trusted);
        }
        catch (final RuntimeException ignored)
        {
            // an engine whose sessions take no values: trustOf checks again
        }
    }

    /**
     * For {@code may} and {@code encrypt}: takes any server certificate, and notes in the handshake's session
     * whether the real check would have passed (the chain only: no name is expected at these levels).
     */
    private static final class RecordingTrustManager extends X509ExtendedTrustManager
    {
        private final X509ExtendedTrustManager delegate;

        RecordingTrustManager(final X509ExtendedTrustManager delegate)
        {
            this.delegate = delegate;
        }

        @Override
        public void checkServerTrusted(final X509Certificate[] chain, final String authType, final SSLEngine engine)
        {
            boolean trusted;
            try
            {
                // the engine asks for no endpoint identification at these levels: the chain alone is checked
                delegate.checkServerTrusted(chain, authType, engine);
                trusted = true;
            }
            catch (final CertificateException | RuntimeException ex)
            {
                trusted = false;
            }
            remember(engine.getHandshakeSession(), trusted);
        }

        @Override
        public void checkServerTrusted(final X509Certificate[] chain, final String authType, final Socket socket)
        {
            // engines only
        }

        @Override
        public void checkServerTrusted(final X509Certificate[] chain, final String authType)
        {
            // engines only
        }

        @Override
        public void checkClientTrusted(final X509Certificate[] chain, final String authType, final SSLEngine engine)
            throws CertificateException
        {
            throw new CertificateException("a client context checks no clients");
        }

        @Override
        public void checkClientTrusted(final X509Certificate[] chain, final String authType, final Socket socket)
            throws CertificateException
        {
            throw new CertificateException("a client context checks no clients");
        }

        @Override
        public void checkClientTrusted(final X509Certificate[] chain, final String authType)
            throws CertificateException
        {
            throw new CertificateException("a client context checks no clients");
        }

        @Override
        public X509Certificate[] getAcceptedIssuers()
        {
            return delegate.getAcceptedIssuers();
        }
    }
}
