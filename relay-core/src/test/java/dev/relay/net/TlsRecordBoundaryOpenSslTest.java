package dev.relay.net;

import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.Timeout;

/** {@link TlsRecordBoundaryTest} with BoringSSL's engine (smtp.tls.provider=openssl) on the loop's side. */
@Timeout(120)
class TlsRecordBoundaryOpenSslTest extends TlsRecordBoundaryTest
{
    @Override
    javax.net.ssl.SSLEngine serverEngine()
    {
        return TestCertificates.get().openSslServerEngine(TestCertificates.KeyType.EC);
    }
}
