package dev.relay.net;

import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Arrays;
import java.util.Date;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The inbound TLS identity: the certificate chain and private key of {@code smtp.tls.cert} / {@code smtp.tls.key}
 * (PEM, PKCS#8, RSA or EC) as an {@link SSLContext}, and a server-mode {@link SSLEngine} from it for each
 * handshake ({@link #newEngine()}), TLS 1.3 and 1.2 only.
 * <p>
 * Provider ({@code smtp.tls.provider}): the JDK's engine, or BoringSSL through Netty's tcnative
 * ({@code OpenSslEngine}: the same {@link SSLEngine} interface, driven by our loop exactly like the JDK's, no Netty
 * pipeline); {@code auto} takes BoringSSL where its native library loads (linux-x86_64 here), the JDK's elsewhere.
 * <p>
 * The files are checked for changes every few seconds on a thread of their own ({@link #watch}); a changed pair
 * that loads (chain parses, key matches the leaf's public key) replaces the context for new handshakes, while
 * established connections keep their engines, so a renewal drops no connection. A pair that does not load is
 * logged and the previous one stays in force. {@link #newEngine()} is called on the loops: it reads one volatile
 * field and makes an engine (allocates).
 */
public final class ServerTlsContext implements Supplier<SSLEngine>, AutoCloseable
{
    private static final Logger LOG = LoggerFactory.getLogger(ServerTlsContext.class);
    private static final List<String> PROTOCOLS = List.of("TLSv1.3", "TLSv1.2");
    /**
     * Sessions kept for resumption (the JDK's default is 20,480, each holding the peer's and our chains): clients of
     * a relay reconnect rarely enough that a small cache does, and it keeps memory per handshake bounded.
     */
    private static final int SESSION_CACHE_SIZE = 1024;
    /**
     * BoringSSL's suites: TLS 1.3's, then TLS 1.2 with forward secrecy only (the JDK's defaults leave out static RSA
     * key exchange too).
     */
    private static final List<String> OPENSSL_CIPHERS = List.of(
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA");

    /** Which engine makes the handshakes. */
    public enum Provider
    {
        /** BoringSSL where it loads, else the JDK's. */
        AUTO,
        JDK,
        OPENSSL;

        /**
         * Whether engines come from BoringSSL: {@code AUTO} where it loads, {@code OPENSSL} always (and it must
         * load), {@code JDK} never.
         *
         * @throws GeneralSecurityException when {@code OPENSSL} is asked for and its native library does not load.
         */
        public boolean usesOpenSsl() throws GeneralSecurityException
        {
            switch (this)
            {
                case OPENSSL:
                    if (!OpenSsl.isAvailable())
                    {
                        throw new GeneralSecurityException("smtp.tls.provider=openssl but BoringSSL (netty-tcnative) " +
                            "does not load here: " + OpenSsl.unavailabilityCause());
                    }
                    return true;
                case AUTO:
                    return OpenSsl.isAvailable();
                default:
                    return false;
            }
        }
    }

    private final Path certFile;
    private final Path keyFile;
    private final boolean openssl;
    private volatile Loaded current;
    private Object certStamp;
    private Object keyStamp;
    private ScheduledExecutorService watcher;

    /** One loaded pair: a JDK context or a BoringSSL one. */
    private record Loaded(SSLContext context, io.netty.handler.ssl.SslContext openssl, X509Certificate leaf)
    {
    }

    private ServerTlsContext(final Path certFile, final Path keyFile, final boolean openssl, final Loaded loaded,
        final Object certStamp, final Object keyStamp)
    {
        this.openssl = openssl;
        this.certFile = certFile;
        this.keyFile = keyFile;
        this.current = loaded;
        this.certStamp = certStamp;
        this.keyStamp = keyStamp;
    }

    /**
     * Loads the pair.
     *
     * @throws IOException              when a file cannot be read or holds no usable certificate or key.
     * @throws GeneralSecurityException when they do not parse or the key is not the certificate's.
     */
    public static ServerTlsContext load(final Path certFile, final Path keyFile)
        throws IOException, GeneralSecurityException
    {
        return load(certFile, keyFile, Provider.JDK);
    }

    /**
     * Loads the pair for {@code provider}.
     *
     * @throws GeneralSecurityException also when {@code OPENSSL} is asked for and its native library does not load.
     */
    public static ServerTlsContext load(final Path certFile, final Path keyFile, final Provider provider)
        throws IOException, GeneralSecurityException
    {
        final boolean openssl = provider.usesOpenSsl();
        final Object certStamp = stamp(certFile);
        final Object keyStamp = stamp(keyFile);
        final Loaded loaded = loadPair(certFile, keyFile, openssl);
        final ServerTlsContext context =
            new ServerTlsContext(certFile, keyFile, openssl, loaded, certStamp, keyStamp);
        LOG.info("TLS certificate {}; engine {}", describe(loaded.leaf()),
            openssl ? OpenSsl.versionString() + " (netty-tcnative)" : "JDK " + System.getProperty("java.version"));
        warnIfNotValidNow(loaded.leaf());
        return context;
    }

    /**
     * Whether the pair loads (the chain parses, the key is the leaf's), as {@link #load} would find it, without
     * logging: a reload checks the files before it changes anything.
     */
    public static void check(final Path certFile, final Path keyFile) throws IOException, GeneralSecurityException
    {
        loadPair(certFile, keyFile, false);
    }

    /** Whether handshakes run on BoringSSL (else the JDK's engine). */
    public boolean isOpenSsl()
    {
        return openssl;
    }

    private static Loaded loadPair(final Path certFile, final Path keyFile, final boolean openssl)
        throws IOException, GeneralSecurityException
    {
        final List<X509Certificate> chain = PemFiles.readCertificates(certFile);
        final PrivateKey key = PemFiles.readPrivateKey(keyFile);
        checkKeyMatches(key, chain.get(0), certFile, keyFile);
        if (openssl)
        {
            try
            {
                return new Loaded(null, SslContextBuilder.forServer(key, chain.toArray(new X509Certificate[0]))
                    .sslProvider(SslProvider.OPENSSL)
                    .protocols(PROTOCOLS)
                    .ciphers(OPENSSL_CIPHERS)
                    .sessionCacheSize(SESSION_CACHE_SIZE)
                    .build(), chain.get(0));
            }
            catch (final javax.net.ssl.SSLException ex)
            {
                throw new GeneralSecurityException("BoringSSL refused the pair: " + ex.getMessage(), ex);
            }
        }
        final KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        final char[] password = new char[0];
        store.setKeyEntry("server", key, password, chain.toArray(new Certificate[0]));
        final KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        keys.init(store, password);
        final SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys.getKeyManagers(), null, null);
        context.getServerSessionContext().setSessionCacheSize(SESSION_CACHE_SIZE);
        return new Loaded(context, null, chain.get(0));
    }

    /** The key must be the one the leaf certificate was issued for: sign with it, verify with the certificate. */
    private static void checkKeyMatches(
        final PrivateKey key, final X509Certificate leaf, final Path certFile, final Path keyFile)
        throws GeneralSecurityException
    {
        final String algorithm = "EC".equals(key.getAlgorithm()) ? "SHA256withECDSA" : "SHA256withRSA";
        if (!key.getAlgorithm().equals(leaf.getPublicKey().getAlgorithm()))
        {
            throw new GeneralSecurityException(keyFile + " is an " + key.getAlgorithm() + " key but the first " +
                "certificate of " + certFile + " has an " + leaf.getPublicKey().getAlgorithm() + " key");
        }
        final byte[] probe = new byte[32];
        new SecureRandom().nextBytes(probe);
        final Signature signer = Signature.getInstance(algorithm);
        signer.initSign(key);
        signer.update(probe);
        final byte[] signature = signer.sign();
        final Signature verifier = Signature.getInstance(algorithm);
        verifier.initVerify(leaf.getPublicKey());
        verifier.update(probe);
        if (!verifier.verify(signature))
        {
            throw new GeneralSecurityException(keyFile + " is not the private key of the first certificate of " +
                certFile + " (" + leaf.getSubjectX500Principal().getName() + ")");
        }
    }

    private static void warnIfNotValidNow(final X509Certificate leaf)
    {
        final Date now = new Date();
        if (now.after(leaf.getNotAfter()) || now.before(leaf.getNotBefore()))
        {
            LOG.warn("TLS certificate is not valid now: {}", describe(leaf));
        }
    }

    private static String describe(final X509Certificate leaf)
    {
        return leaf.getSubjectX500Principal().getName() + ", serial " + leaf.getSerialNumber().toString(16) +
            ", " + leaf.getPublicKey().getAlgorithm() + ", valid until " + leaf.getNotAfter().toInstant();
    }

    /** What identifies a version of a file: its modification time, size and inode (a renewal replaces them). */
    private static Object stamp(final Path file) throws IOException
    {
        final BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
        return Arrays.asList(attributes.lastModifiedTime(), attributes.size(), attributes.fileKey(),
            Arrays.hashCode(Files.readString(file, StandardCharsets.ISO_8859_1).getBytes(StandardCharsets.ISO_8859_1)));
    }

    /** A server engine for one handshake, from the pair now in force; loop threads. */
    public SSLEngine newEngine()
    {
        final Loaded loaded = current;
        if (loaded.openssl() != null)
        {
            // OPENSSL (not OPENSSL_REFCNT): the native state is freed when the engine is closed both ways (TlsLayer
            // does at close), or at the latest by its cleaner
            return loaded.openssl().newEngine(UnpooledByteBufAllocator.DEFAULT);
        }
        final SSLEngine engine = loaded.context().createSSLEngine();
        engine.setUseClientMode(false);
        final SSLParameters parameters = engine.getSSLParameters();
        parameters.setProtocols(PROTOCOLS.toArray(new String[0]));
        parameters.setUseCipherSuitesOrder(true);
        engine.setSSLParameters(parameters);
        return engine;
    }

    @Override
    public SSLEngine get()
    {
        return newEngine();
    }

    /** The leaf certificate now in force. */
    public X509Certificate certificate()
    {
        return current.leaf();
    }

    /**
     * Loads the files again if either changed since the last look; a pair that does not load is logged and the one
     * in force stays. Called by the watcher thread (or a test).
     *
     * @return whether a new pair is in force.
     */
    public synchronized boolean reloadIfChanged()
    {
        final Object newCertStamp;
        final Object newKeyStamp;
        try
        {
            newCertStamp = stamp(certFile);
            newKeyStamp = stamp(keyFile);
        }
        catch (final IOException ex)
        {
            // a renewal in progress (a file replaced by rename) may be missing for a moment: look again later
            return false;
        }
        if (Objects.equals(newCertStamp, certStamp) && Objects.equals(newKeyStamp, keyStamp))
        {
            return false;
        }
        certStamp = newCertStamp;
        keyStamp = newKeyStamp;
        try
        {
            final Loaded loaded = loadPair(certFile, keyFile, openssl);
            current = loaded;
            LOG.info("TLS certificate reloaded: {}; new handshakes use it", describe(loaded.leaf()));
            warnIfNotValidNow(loaded.leaf());
            return true;
        }
        catch (final IOException | GeneralSecurityException | RuntimeException ex)
        {
            LOG.warn("TLS certificate files changed but do not load, keeping {}: {}", describe(current.leaf()),
                ex.getMessage());
            return false;
        }
    }

    /** Checks the files every {@code interval} on a daemon thread ({@code tls-reload}) until {@link #close()}. */
    public synchronized void watch(final Duration interval)
    {
        if (watcher != null || interval.isZero())
        {
            return;
        }
        watcher = Executors.newSingleThreadScheduledExecutor(task ->
        {
            final Thread thread = new Thread(task, "tls-reload");
            thread.setDaemon(true);
            return thread;
        });
        final long ms = interval.toMillis();
        watcher.scheduleWithFixedDelay(() ->
        {
            try
            {
                reloadIfChanged();
            }
            catch (final RuntimeException ex)
            {
                LOG.warn("TLS certificate check failed", ex);
            }
        }, ms, ms, TimeUnit.MILLISECONDS);
    }

    @Override
    public synchronized void close()
    {
        if (watcher != null)
        {
            watcher.shutdownNow();
            watcher = null;
        }
    }
}
