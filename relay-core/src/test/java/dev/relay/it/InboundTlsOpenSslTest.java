package dev.relay.it;

import org.junit.jupiter.api.Timeout;

/** {@link InboundTlsTest} with {@code smtp.tls.provider=openssl}: BoringSSL's engine behind the same loop. */
@Timeout(120)
class InboundTlsOpenSslTest extends InboundTlsTest
{
    @Override
    String provider()
    {
        return "openssl";
    }
}
