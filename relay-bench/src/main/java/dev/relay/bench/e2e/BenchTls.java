package dev.relay.bench.e2e;

import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.concurrent.atomic.LongAdder;

import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * The TLS side of the bench tools: one {@link SSLContext} per tool and run, and a count of its full handshakes.
 *
 * <ul>
 * <li>{@link #client}: trusts any certificate (a benchmark measures cost, not trust). With {@code resume} each
 * connection slot of the generator offers the session its previous connection got (TLS 1.3 PSK, RFC 8446 §2.2; TLS
 * 1.2 session ID or ticket), as many distinct clients each resuming with the server would: the JDK's client cache
 * keeps one session per host:port and uses a TLS 1.3 ticket once (RFC 8446 §C.4), so with one key for all the slots
 * concurrent connections would mostly find it used. The slot number stands in for the port in the cache key (the
 * engine's peer port is only that key; the connection goes where the channel goes, and an IP literal sends no SNI).
 * Without {@code resume} engines have no peer, so no session is offered and every handshake is full.</li>
 * <li>{@link #server}: the chain and PKCS#8 key of two PEM files (what {@code openssl req -x509 -nodes} writes).</li>
 * </ul>
 * A handshake is full when the server sends its certificate, so the trust manager (client) and the key manager's
 * choice of a server key (server) count exactly the full ones; a resumed handshake skips both. The handshakes
 * themselves are counted by the loops ({@link ClientLoop}, {@link BenchSink}); resumed = all − full.
 *
 * <p>Thread-safe: engines are made on the loop threads, counters are read by any thread.
 */
public final class BenchTls
{
    private final SSLContext context;
    private final boolean resume;
    private final LongAdder fullHandshakes = new LongAdder();

    private BenchTls(final SSLContext context, final boolean resume)
    {
        this.context = context;
        this.resume = resume;
    }

    /** A client context that trusts any server; {@code resume}: offer the cached session of the same host:port. */
    public static BenchTls client(final boolean resume)
    {
        try
        {
            final SSLContext context = SSLContext.getInstance("TLS");
            final BenchTls tls = new BenchTls(context, resume);
            context.init(null, new javax.net.ssl.TrustManager[] {tls.new TrustAll()}, null);
            return tls;
        }
        catch (final GeneralSecurityException ex)
        {
            throw new IllegalStateException("no TLS client context: " + ex, ex);
        }
    }

    /** A server context with the certificate chain in {@code certPem} and the PKCS#8 private key in {@code keyPem}. */
    public static BenchTls server(final Path certPem, final Path keyPem) throws IOException
    {
        try
        {
            final Certificate[] chain;
            try (InputStream in = Files.newInputStream(certPem))
            {
                chain = CertificateFactory.getInstance("X.509").generateCertificates(in).toArray(new Certificate[0]);
            }
            if (chain.length == 0)
            {
                throw new IOException("no certificate in " + certPem);
            }
            final char[] password = "bench".toCharArray();
            final KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setKeyEntry("bench", privateKey(keyPem), password, chain);
            final KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(store, password);
            final SSLContext context = SSLContext.getInstance("TLS");
            final BenchTls tls = new BenchTls(context, false);
            context.init(new KeyManager[] {tls.new CountingKeyManager((X509ExtendedKeyManager)kmf.getKeyManagers()[0])},
                null, null);
            return tls;
        }
        catch (final GeneralSecurityException ex)
        {
            throw new IOException("cannot load " + certPem + " / " + keyPem + ": " + ex, ex);
        }
    }

    /** A client engine for one connection of connection slot {@code slot} to {@code host}. */
    SSLEngine clientEngine(final String host, final int slot)
    {
        final SSLEngine engine = resume ? context.createSSLEngine(host, 1 + slot) : context.createSSLEngine();
        engine.setUseClientMode(true);
        return engine;
    }

    /** A server engine for one connection. */
    SSLEngine serverEngine()
    {
        final SSLEngine engine = context.createSSLEngine();
        engine.setUseClientMode(false);
        return engine;
    }

    /** Handshakes in which the server sent its certificate (not resumed), since the context was made. */
    public long fullHandshakes()
    {
        return fullHandshakes.sum();
    }

    public boolean resume()
    {
        return resume;
    }

    private static PrivateKey privateKey(final Path pem) throws IOException, GeneralSecurityException
    {
        final String text = Files.readString(pem, StandardCharsets.US_ASCII);
        final int begin = text.indexOf("-----BEGIN PRIVATE KEY-----");
        final int end = text.indexOf("-----END PRIVATE KEY-----");
        if (begin < 0 || end < begin)
        {
            throw new IOException(pem + ": no PKCS#8 \"BEGIN PRIVATE KEY\" block (openssl pkcs8 -topk8 -nocrypt)");
        }
        final byte[] der = Base64.getMimeDecoder().decode(text.substring(begin + 27, end));
        for (final String algorithm : new String[] {"RSA", "EC", "Ed25519"})
        {
            try
            {
                return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
            }
            catch (final InvalidKeySpecException ex)
            {
                // next algorithm
            }
        }
        throw new IOException(pem + ": not an RSA, EC or Ed25519 key");
    }

    /** Accepts every server; counts the calls, one per full handshake. */
    private final class TrustAll extends X509ExtendedTrustManager
    {
        @Override
        public void checkServerTrusted(final X509Certificate[] chain, final String authType, final SSLEngine engine)
        {
            fullHandshakes.increment();
        }

        @Override
        public void checkServerTrusted(final X509Certificate[] chain, final String authType, final Socket socket)
        {
            fullHandshakes.increment();
        }

        @Override
        public void checkServerTrusted(final X509Certificate[] chain, final String authType)
        {
            fullHandshakes.increment();
        }

        @Override
        public void checkClientTrusted(final X509Certificate[] chain, final String authType, final SSLEngine engine)
        {
        }

        @Override
        public void checkClientTrusted(final X509Certificate[] chain, final String authType, final Socket socket)
        {
        }

        @Override
        public void checkClientTrusted(final X509Certificate[] chain, final String authType)
        {
        }

        @Override
        public X509Certificate[] getAcceptedIssuers()
        {
            return new X509Certificate[0];
        }
    }

    /** The JDK's key manager; a chosen server key is a full handshake (a resumed one chooses none). */
    private final class CountingKeyManager extends X509ExtendedKeyManager
    {
        private final X509ExtendedKeyManager delegate;

        CountingKeyManager(final X509ExtendedKeyManager delegate)
        {
            this.delegate = delegate;
        }

        @Override
        public String chooseEngineServerAlias(final String keyType, final Principal[] issuers, final SSLEngine engine)
        {
            return counted(delegate.chooseEngineServerAlias(keyType, issuers, engine));
        }

        @Override
        public String chooseServerAlias(final String keyType, final Principal[] issuers, final Socket socket)
        {
            return counted(delegate.chooseServerAlias(keyType, issuers, socket));
        }

        private String counted(final String alias)
        {
            if (alias != null)
            {
                fullHandshakes.increment();
            }
            return alias;
        }

        @Override
        public String[] getClientAliases(final String keyType, final Principal[] issuers)
        {
            return delegate.getClientAliases(keyType, issuers);
        }

        @Override
        public String chooseClientAlias(final String[] keyType, final Principal[] issuers, final Socket socket)
        {
            return delegate.chooseClientAlias(keyType, issuers, socket);
        }

        @Override
        public String[] getServerAliases(final String keyType, final Principal[] issuers)
        {
            return delegate.getServerAliases(keyType, issuers);
        }

        @Override
        public X509Certificate[] getCertificateChain(final String alias)
        {
            return delegate.getCertificateChain(alias);
        }

        @Override
        public PrivateKey getPrivateKey(final String alias)
        {
            return delegate.getPrivateKey(alias);
        }
    }
}
