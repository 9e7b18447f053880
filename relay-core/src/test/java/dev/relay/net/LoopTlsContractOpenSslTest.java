package dev.relay.net;

import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.Timeout;

import javax.net.ssl.SSLEngine;

/**
 * {@link LoopTlsContractTest}'s scenarios with BoringSSL's engine (Netty's tcnative, {@code smtp.tls.provider=openssl})
 * on the loop's side, against the JDK's at the far end: the loops drive any {@link SSLEngine} the same way.
 */
@Timeout(120)
class LoopTlsContractOpenSslTest extends LoopTlsContractTest
{
    @Override
    SSLEngine loopEngine(final LoopContractTest.Direction direction)
    {
        return direction == LoopContractTest.Direction.INBOUND ?
            TestCertificates.get().openSslServerEngine(TestCertificates.KeyType.EC) :
            TestCertificates.get().openSslClientEngine();
    }
}
