package dev.relay.testing;

import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManagerFactory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Certificates for TLS tests, made at test time with BouncyCastle: one test CA (RSA) per JVM and server
 * certificates it signs, RSA or EC, for {@code relay.test}, {@code localhost} and 127.0.0.1 (plus expired and
 * wrong-host ones). Written as the relay reads them: a PEM chain (leaf then CA) and a PEM PKCS#8 key. Key pairs are
 * made once per JVM (RSA key generation is slow); every {@link #issue} signs a new certificate with a new serial.
 * Thread safe.
 */
public final class TestCertificates
{
    /** The host name the relay's test certificates are for. */
    public static final String HOST = "relay.test";

    public enum KeyType
    {
        RSA, EC
    }

    /** A certificate chain and its key, as files. */
    public record PemPair(Path cert, Path key, X509Certificate leaf)
    {
    }

    private static final AtomicLong SERIALS = new AtomicLong(System.currentTimeMillis());
    private static volatile TestCertificates instance;

    private final KeyPair caKeys;
    private final X509Certificate ca;
    private final KeyPair rsaKeys;
    private final KeyPair ecKeys;

    private TestCertificates() throws GeneralSecurityException
    {
        caKeys = rsa();
        final Instant now = Instant.now();
        final X500Name caName = new X500Name("CN=relay test CA");
        final X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(caName, serial(),
            Date.from(now.minus(Duration.ofDays(1))), Date.from(now.plus(Duration.ofDays(3650))), caName,
            caKeys.getPublic());
        try
        {
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            ca = new JcaX509CertificateConverter().getCertificate(builder.build(
                new JcaContentSignerBuilder("SHA256withRSA").build(caKeys.getPrivate())));
        }
        catch (final IOException | org.bouncycastle.operator.OperatorCreationException ex)
        {
            throw new GeneralSecurityException(ex);
        }
        rsaKeys = rsa();
        final KeyPairGenerator ec = KeyPairGenerator.getInstance("EC");
        ec.initialize(new ECGenParameterSpec("secp256r1"));
        ecKeys = ec.generateKeyPair();
    }

    /** The JVM's test CA and keys (made at the first call). */
    public static TestCertificates get()
    {
        TestCertificates certificates = instance;
        if (certificates == null)
        {
            synchronized (TestCertificates.class)
            {
                certificates = instance;
                if (certificates == null)
                {
                    try
                    {
                        certificates = new TestCertificates();
                    }
                    catch (final GeneralSecurityException ex)
                    {
                        throw new IllegalStateException("cannot make test certificates", ex);
                    }
                    instance = certificates;
                }
            }
        }
        return certificates;
    }

    private static KeyPair rsa() throws GeneralSecurityException
    {
        final KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
        generator.initialize(2048);
        return generator.generateKeyPair();
    }

    private static BigInteger serial()
    {
        return BigInteger.valueOf(SERIALS.incrementAndGet());
    }

    public X509Certificate ca()
    {
        return ca;
    }

    /** A valid server certificate for {@link #HOST}, localhost and 127.0.0.1. */
    public X509Certificate issue(final KeyType type)
    {
        return issue(type, HOST, Instant.now().minus(Duration.ofDays(1)), Instant.now().plus(Duration.ofDays(30)),
            HOST, "localhost", "127.0.0.1");
    }

    /** A server certificate for {@code names} (DNS names or IP literals), valid from {@code notBefore} to {@code notAfter}. */
    public X509Certificate issue(
        final KeyType type, final String commonName, final Instant notBefore, final Instant notAfter,
        final String... names)
    {
        final KeyPair keys = keys(type);
        try
        {
            final X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
                new X500Name(ca.getSubjectX500Principal().getName()), serial(), Date.from(notBefore),
                Date.from(notAfter), new X500Name("CN=" + commonName), keys.getPublic());
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature |
                (type == KeyType.RSA ? KeyUsage.keyEncipherment : 0)));
            builder.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(
                new KeyPurposeId[]{KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
            final List<GeneralName> alternatives = new ArrayList<>();
            for (final String name : names)
            {
                alternatives.add(new GeneralName(Character.isDigit(name.charAt(0)) || name.contains(":") ?
                    GeneralName.iPAddress : GeneralName.dNSName, name));
            }
            builder.addExtension(Extension.subjectAlternativeName, false,
                new GeneralNames(alternatives.toArray(new GeneralName[0])));
            return new JcaX509CertificateConverter().getCertificate(builder.build(
                new JcaContentSignerBuilder("SHA256withRSA").build(caKeys.getPrivate())));
        }
        catch (final GeneralSecurityException | IOException | org.bouncycastle.operator.OperatorCreationException ex)
        {
            throw new IllegalStateException("cannot issue a test certificate", ex);
        }
    }

    /** An expired server certificate (valid for the right names a year ago). */
    public X509Certificate expired(final KeyType type)
    {
        return issue(type, HOST, Instant.now().minus(Duration.ofDays(400)), Instant.now().minus(Duration.ofDays(35)),
            HOST, "localhost", "127.0.0.1");
    }

    /** A valid certificate for another host only. */
    public X509Certificate wrongHost(final KeyType type)
    {
        return issue(type, "other.test", Instant.now().minus(Duration.ofDays(1)),
            Instant.now().plus(Duration.ofDays(30)), "other.test");
    }

    public PrivateKey privateKey(final KeyType type)
    {
        return keys(type).getPrivate();
    }

    private KeyPair keys(final KeyType type)
    {
        return type == KeyType.RSA ? rsaKeys : ecKeys;
    }

    /** Writes {@code leaf} and the CA as a PEM chain, and the key of {@code type} as PEM PKCS#8, under {@code dir}. */
    public PemPair write(final Path dir, final String name, final KeyType type, final X509Certificate leaf)
    {
        try
        {
            Files.createDirectories(dir);
            final Path cert = dir.resolve(name + ".crt");
            final Path key = dir.resolve(name + ".key");
            Files.writeString(cert, pem("CERTIFICATE", leaf.getEncoded()) + pem("CERTIFICATE", ca.getEncoded()),
                StandardCharsets.US_ASCII);
            Files.writeString(key, pem("PRIVATE KEY", privateKey(type).getEncoded()), StandardCharsets.US_ASCII);
            return new PemPair(cert, key, leaf);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
        catch (final GeneralSecurityException ex)
        {
            throw new IllegalStateException(ex);
        }
    }

    /** A valid server pair of {@code type} written under {@code dir}. */
    public PemPair writeServer(final Path dir, final KeyType type)
    {
        return write(dir, "server-" + type.name().toLowerCase(java.util.Locale.ROOT), type, issue(type));
    }

    /** The CA certificate as a PEM file (for clients that verify: Python's ssl, swaks). */
    public Path writeCa(final Path dir)
    {
        try
        {
            Files.createDirectories(dir);
            final Path file = dir.resolve("ca.crt");
            Files.writeString(file, pem("CERTIFICATE", ca.getEncoded()), StandardCharsets.US_ASCII);
            return file;
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
        catch (final GeneralSecurityException ex)
        {
            throw new IllegalStateException(ex);
        }
    }

    public static String pem(final String type, final byte[] der)
    {
        return "-----BEGIN " + type + "-----\n" +
            Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der) +
            "\n-----END " + type + "-----\n";
    }

    /** A server-mode context with a fresh valid certificate of {@code type} (no files). */
    public SSLContext serverContext(final KeyType type)
    {
        try
        {
            final KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setKeyEntry("server", privateKey(type), new char[0], new Certificate[]{issue(type), ca});
            final KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            keys.init(store, new char[0]);
            final SSLContext context = SSLContext.getInstance("TLS");
            context.init(keys.getKeyManagers(), null, null);
            return context;
        }
        catch (final GeneralSecurityException | IOException ex)
        {
            throw new IllegalStateException(ex);
        }
    }

    /** A client context that trusts the test CA only. */
    public SSLContext clientContext()
    {
        try
        {
            final KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setCertificateEntry("ca", ca);
            final TrustManagerFactory trust = TrustManagerFactory.getInstance(
                TrustManagerFactory.getDefaultAlgorithm());
            trust.init(store);
            final SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, trust.getTrustManagers(), null);
            return context;
        }
        catch (final GeneralSecurityException | IOException ex)
        {
            throw new IllegalStateException(ex);
        }
    }

    /** A client engine that trusts the test CA and checks the server's name is {@link #HOST}. */
    public SSLEngine clientEngine()
    {
        final SSLEngine engine = clientContext().createSSLEngine(HOST, 25);
        engine.setUseClientMode(true);
        final javax.net.ssl.SSLParameters parameters = engine.getSSLParameters();
        parameters.setEndpointIdentificationAlgorithm("HTTPS");
        engine.setSSLParameters(parameters);
        return engine;
    }

    /** {@link #clientEngine()} limited to {@code protocols} (e.g. TLSv1.2 alone). */
    public SSLEngine clientEngine(final String... protocols)
    {
        final SSLEngine engine = clientEngine();
        engine.setEnabledProtocols(protocols);
        return engine;
    }

    /** A server engine on BoringSSL (Netty's tcnative, as smtp.tls.provider=openssl makes them). */
    public SSLEngine openSslServerEngine(final KeyType type)
    {
        try
        {
            return io.netty.handler.ssl.SslContextBuilder.forServer(privateKey(type), issue(type), ca)
                .sslProvider(io.netty.handler.ssl.SslProvider.OPENSSL)
                .protocols("TLSv1.3", "TLSv1.2")
                .build()
                .newEngine(io.netty.buffer.UnpooledByteBufAllocator.DEFAULT);
        }
        catch (final javax.net.ssl.SSLException ex)
        {
            throw new IllegalStateException(ex);
        }
    }

    /** A client engine on BoringSSL that trusts the test CA and checks the name {@link #HOST}. */
    public SSLEngine openSslClientEngine()
    {
        try
        {
            final SSLEngine engine = io.netty.handler.ssl.SslContextBuilder.forClient()
                .sslProvider(io.netty.handler.ssl.SslProvider.OPENSSL)
                .trustManager(ca)
                .endpointIdentificationAlgorithm("HTTPS")
                .build()
                .newEngine(io.netty.buffer.UnpooledByteBufAllocator.DEFAULT, HOST, 25);
            return engine;
        }
        catch (final javax.net.ssl.SSLException ex)
        {
            throw new IllegalStateException(ex);
        }
    }

    /** A server-mode context serving {@code leaf} (signed by the test CA for the key of {@code type}). */
    public SSLContext serverContext(final KeyType type, final X509Certificate leaf)
    {
        try
        {
            final KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setKeyEntry("server", privateKey(type), new char[0], new Certificate[]{leaf, ca});
            final KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            keys.init(store, new char[0]);
            final SSLContext context = SSLContext.getInstance("TLS");
            context.init(keys.getKeyManagers(), null, null);
            return context;
        }
        catch (final GeneralSecurityException | IOException ex)
        {
            throw new IllegalStateException(ex);
        }
    }

    /**
     * A server-mode context serving a valid certificate of {@code type} whose key is asked for only by full
     * handshakes: each one counts in {@code fullHandshakes}, a resumed session does not (its proof is the PSK or
     * the session's master secret, not the certificate's key).
     */
    public SSLContext countingServerContext(final KeyType type, final java.util.concurrent.atomic.AtomicInteger
        fullHandshakes)
    {
        try
        {
            final KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setKeyEntry("server", privateKey(type), new char[0], new Certificate[]{issue(type), ca});
            final KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            keys.init(store, new char[0]);
            final javax.net.ssl.X509ExtendedKeyManager real =
                (javax.net.ssl.X509ExtendedKeyManager)keys.getKeyManagers()[0];
            final javax.net.ssl.X509ExtendedKeyManager counting = new javax.net.ssl.X509ExtendedKeyManager()
            {
                @Override
                public String[] getClientAliases(final String keyType, final java.security.Principal[] issuers)
                {
                    return real.getClientAliases(keyType, issuers);
                }

                @Override
                public String chooseClientAlias(final String[] keyType, final java.security.Principal[] issuers,
                    final java.net.Socket socket)
                {
                    return real.chooseClientAlias(keyType, issuers, socket);
                }

                @Override
                public String[] getServerAliases(final String keyType, final java.security.Principal[] issuers)
                {
                    return real.getServerAliases(keyType, issuers);
                }

                @Override
                public String chooseServerAlias(final String keyType, final java.security.Principal[] issuers,
                    final java.net.Socket socket)
                {
                    return real.chooseServerAlias(keyType, issuers, socket);
                }

                @Override
                public String chooseEngineServerAlias(final String keyType, final java.security.Principal[] issuers,
                    final SSLEngine engine)
                {
                    return real.chooseEngineServerAlias(keyType, issuers, engine);
                }

                @Override
                public X509Certificate[] getCertificateChain(final String alias)
                {
                    return real.getCertificateChain(alias);
                }

                @Override
                public PrivateKey getPrivateKey(final String alias)
                {
                    fullHandshakes.incrementAndGet();
                    return real.getPrivateKey(alias);
                }
            };
            final SSLContext context = SSLContext.getInstance("TLS");
            context.init(new javax.net.ssl.KeyManager[]{counting}, null, null);
            return context;
        }
        catch (final GeneralSecurityException | IOException ex)
        {
            throw new IllegalStateException(ex);
        }
    }

    /** A server engine serving {@code leaf} (an expired or wrong-host certificate of {@code type}). */
    public SSLEngine serverEngine(final KeyType type, final X509Certificate leaf)
    {
        final SSLEngine engine = serverContext(type, leaf).createSSLEngine();
        engine.setUseClientMode(false);
        return engine;
    }

    /** A server engine with a fresh valid certificate of {@code type}. */
    public SSLEngine serverEngine(final KeyType type)
    {
        final SSLEngine engine = serverContext(type).createSSLEngine();
        engine.setUseClientMode(false);
        return engine;
    }
}
