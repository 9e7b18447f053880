package dev.relay.net;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads the PEM files TLS is configured with, as OpenSSL writes them: certificate chains (leaf first) and
 * unencrypted PKCS#8 private keys ({@code BEGIN PRIVATE KEY}, RSA or EC). Other key formats are refused with the
 * command that converts them. Start-up and reload path only: allocates freely; any thread.
 */
public final class PemFiles
{
    private static final Pattern BLOCK =
        Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \\1-----", Pattern.DOTALL);

    private PemFiles()
    {
    }

    /**
     * @return the certificates of {@code file} in their order (a chain starts with its leaf).
     * @throws IOException when the file cannot be read or holds no certificate.
     * @throws GeneralSecurityException when a certificate does not parse.
     */
    public static List<X509Certificate> readCertificates(final Path file) throws IOException, GeneralSecurityException
    {
        final String text = Files.readString(file, StandardCharsets.US_ASCII);
        final CertificateFactory factory = CertificateFactory.getInstance("X.509");
        final List<X509Certificate> certificates = new ArrayList<>();
        final Matcher m = BLOCK.matcher(text);
        while (m.find())
        {
            if ("CERTIFICATE".equals(m.group(1)))
            {
                certificates.add((X509Certificate)factory.generateCertificate(
                    new ByteArrayInputStream(decode(m.group(2)))));
            }
        }
        if (certificates.isEmpty())
        {
            throw new IOException(file + ": no PEM CERTIFICATE block");
        }
        return certificates;
    }

    /**
     * @return the PKCS#8 private key of {@code file} (RSA or EC).
     * @throws IOException when the file cannot be read or holds no usable key (the message says how to convert).
     * @throws GeneralSecurityException when the key does not parse.
     */
    public static PrivateKey readPrivateKey(final Path file) throws IOException, GeneralSecurityException
    {
        final String text = Files.readString(file, StandardCharsets.US_ASCII);
        final Matcher m = BLOCK.matcher(text);
        while (m.find())
        {
            switch (m.group(1))
            {
                case "PRIVATE KEY":
                    return pkcs8(decode(m.group(2)), file);
                case "RSA PRIVATE KEY":
                case "EC PRIVATE KEY":
                    throw new IOException(file + ": the key is in the old " + m.group(1) + " format; the relay " +
                        "reads PKCS#8 (BEGIN PRIVATE KEY): openssl pkcs8 -topk8 -nocrypt -in OLD -out NEW");
                case "ENCRYPTED PRIVATE KEY":
                    throw new IOException(file + ": the key is encrypted; the relay reads unencrypted PKCS#8 " +
                        "(protect the file instead): openssl pkcs8 -topk8 -nocrypt -in OLD -out NEW");
                default:
                    break;
            }
        }
        throw new IOException(file + ": no PEM PRIVATE KEY block");
    }

    private static PrivateKey pkcs8(final byte[] der, final Path file) throws GeneralSecurityException
    {
        final PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
        GeneralSecurityException last = null;
        for (final String algorithm : new String[]{"RSA", "EC"})
        {
            try
            {
                return KeyFactory.getInstance(algorithm).generatePrivate(spec);
            }
            catch (final GeneralSecurityException ex)
            {
                last = ex;
            }
        }
        throw new GeneralSecurityException(file + ": not an RSA or EC PKCS#8 key", last);
    }

    private static byte[] decode(final String base64)
    {
        return Base64.getMimeDecoder().decode(base64);
    }
}
