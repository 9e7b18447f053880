package dev.relay.config;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** DESIGN.md's fine print for the TLS, AUTH and submission keys: what goes together, and files that must exist. */
class ConfigTlsTest
{
    @TempDir
    Path dir;

    private Map<String, String> files() throws IOException
    {
        final Map<String, String> config = new HashMap<>();
        config.put("smtp.tls.cert", Files.writeString(dir.resolve("c.pem"), "x").toString());
        config.put("smtp.tls.key", Files.writeString(dir.resolve("k.pem"), "x").toString());
        config.put("smtp.auth.users", Files.writeString(dir.resolve("users"), "").toString());
        return config;
    }

    private static List<String> problems(final Map<String, String> config)
    {
        return assertThrows(ConfigException.class, () -> RelayConfig.fromMap(config)).problems();
    }

    @Test
    void everythingTogetherLoads() throws Exception
    {
        final Map<String, String> config = files();
        config.put("submission.listen", "127.0.0.1:0");
        config.put("submissions.listen", "127.0.0.1:0,[::1]:0");
        config.put("smtp.tls.required", "true");
        final RelayConfig c = RelayConfig.fromMap(config);
        assertTrue(c.serverTls().enabled());
        assertEquals(2, c.inbound().submissionsListen().size());
        assertEquals(10, c.admission().authFailuresPerMinute());
    }

    @Test
    void aCertificateWithoutAKeyAndRequiredWithoutTls() throws Exception
    {
        final Map<String, String> config = files();
        config.remove("smtp.tls.key");
        config.put("smtp.tls.required", "true");
        assertEquals(List.of("map:0: smtp.tls.cert: set without smtp.tls.key: TLS needs both",
            "map:0: smtp.tls.required: true needs smtp.tls.cert and smtp.tls.key"), problems(config));
    }

    @Test
    void submissionListenersNeedTlsAndUsers() throws Exception
    {
        final Map<String, String> config = new HashMap<>();
        config.put("submission.listen", "127.0.0.1:0");
        config.put("submissions.listen", "127.0.0.1:0");
        assertEquals(List.of(
            "map:0: submission.listen: a TLS listener needs smtp.tls.cert and smtp.tls.key",
            "map:0: submission.listen: requires AUTH: set smtp.auth.users",
            "map:0: submissions.listen: a TLS listener needs smtp.tls.cert and smtp.tls.key",
            "map:0: submissions.listen: requires AUTH: set smtp.auth.users"), problems(config));
    }

    @Test
    void missingFilesAndSmallBuffersAndSharedPortsAreRefused() throws Exception
    {
        final Map<String, String> config = files();
        config.put("smtp.auth.users", dir.resolve("missing").toString());
        config.put("smtp.tls.cert", dir.toString());
        final List<String> missing = problems(config);
        assertEquals(2, missing.size(), missing.toString());
        assertTrue(missing.get(0).contains("smtp.auth.users") && missing.get(0).contains("is not a file"), missing.get(0));

        final Map<String, String> small = files();
        small.put("smtp.buffer_size", "16k");
        small.put("smtp.listen", "127.0.0.1:2587");
        small.put("submission.listen", "127.0.0.1:2587");
        assertEquals(List.of("map:0: smtp.buffer_size: must be at least 32k with TLS (a TLS record's plaintext is " +
                "up to 16k and a little)",
            "map:0: submission.listen: /127.0.0.1:2587 is listed by another listener too"), problems(small));
    }

    @Test
    void outboundTlsLevelsFollowThePolicyLikeRoutesThenTheDefault() throws Exception
    {
        final RelayConfig defaults = RelayConfig.fromMap(Map.of());
        assertEquals(TlsLevel.MAY, defaults.queue().routing().defaultTls());
        assertEquals(TlsLevel.MAY, defaults.queue().routing().tlsLevelFor("example.com"));
        assertEquals(null, defaults.clientTls().caFile());

        final Path ca = Files.writeString(dir.resolve("ca.pem"), "x");
        final RelayConfig c = RelayConfig.fromMap(Map.of(
            "delivery.tls", "none",
            "delivery.tls.policy", "bank.example=verify, .corp.example=ENCRYPT,deep.corp.example=may",
            "delivery.tls.ca_file", ca.toString()));
        assertEquals(TlsLevel.VERIFY, c.queue().routing().tlsLevelFor("bank.example"));
        assertEquals(TlsLevel.NONE, c.queue().routing().tlsLevelFor("www.bank.example"),
            "an exact entry is not a suffix");
        assertEquals(TlsLevel.ENCRYPT, c.queue().routing().tlsLevelFor("a.corp.example"));
        assertEquals(TlsLevel.NONE, c.queue().routing().tlsLevelFor("corp.example"),
            ".corp.example is its subdomains only");
        assertEquals(TlsLevel.MAY, c.queue().routing().tlsLevelFor("deep.corp.example"));
        assertEquals(TlsLevel.ENCRYPT, c.queue().routing().tlsLevelFor("x.deep.corp.example"));
        assertEquals(TlsLevel.NONE, c.queue().routing().tlsLevelFor("other.example"));
        assertEquals(ca, c.clientTls().caFile());

        final RelayConfig star = RelayConfig.fromMap(Map.of("delivery.tls.policy", "*=encrypt,example.com=may"));
        assertEquals(TlsLevel.ENCRYPT, star.queue().routing().tlsLevelFor("other.example"), "* wins over delivery.tls");
        assertEquals(TlsLevel.MAY, star.queue().routing().tlsLevelFor("example.com"));
    }

    @Test
    void badOutboundTlsValuesNameTheKey()
    {
        final List<String> found = problems(Map.of(
            "delivery.tls", "dane",
            "delivery.tls.policy", "a.example=verify,a.example=may",
            "delivery.tls.ca_file", dir.resolve("missing.pem").toString()));
        assertEquals(3, found.size(), found.toString());
        final String all = String.join("\n", found);
        assertTrue(all.contains("delivery.tls: \"dane\" is not one of none, may, encrypt, verify"), all);
        assertTrue(all.contains("delivery.tls.policy: ") && all.contains("\"a.example\" is listed twice"), all);
        assertTrue(all.contains("delivery.tls.ca_file: ") && all.contains("is not a file"), all);
        final List<String> level = problems(Map.of("delivery.tls.policy", "a.example=secure"));
        assertTrue(level.get(0).contains("the level is not one of none, may, encrypt, verify"), level.toString());
        final List<String> domain = problems(Map.of("delivery.tls.policy", "[1.2.3.4]=verify"));
        assertTrue(domain.get(0).contains("bad domain"), domain.toString());
        final List<String> shape = problems(Map.of("delivery.tls.policy", "verify"));
        assertTrue(shape.get(0).contains("is not domain=level"), shape.toString());
    }
}
