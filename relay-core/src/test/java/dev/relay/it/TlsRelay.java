package dev.relay.it;

import dev.relay.auth.PasswordHashes;
import dev.relay.testing.TestCertificates;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What the TLS and AUTH integration tests configure a relay with: a certificate pair and the CA in a directory
 * (BouncyCastle, at test time), a users file (alice with a cheap {PBKDF2-SHA256} hash, bob with {PLAIN}), and the
 * keys that turn on STARTTLS, submission (587) and submissions (465) on ephemeral loopback ports.
 */
final class TlsRelay
{
    static final String ALICE = "alice";
    static final String ALICE_PASSWORD = "correct horse battery";
    static final String BOB = "bob";
    static final String BOB_PASSWORD = "hunter2";

    final Path dir;
    final TestCertificates.PemPair pair;
    final Path ca;
    final Path users;

    TlsRelay(final Path dir, final TestCertificates.KeyType type) throws IOException
    {
        this.dir = dir;
        this.pair = TestCertificates.get().writeServer(dir.resolve("tls"), type);
        this.ca = TestCertificates.get().writeCa(dir.resolve("tls"));
        this.users = dir.resolve("users");
        Files.writeString(users, "# test users\n" +
            ALICE + ":" + PasswordHashes.hash(ALICE_PASSWORD.getBytes(StandardCharsets.UTF_8), 1_000) + "\n" +
            BOB + ":{PLAIN}" + BOB_PASSWORD + "\n", StandardCharsets.UTF_8);
    }

    /** smtp.tls.provider for {@link #overrides}: auto unless a test sets jdk or openssl. */
    String provider = "auto";

    /** Key, value pairs: TLS on smtp.listen, a submission and a submissions listener, AUTH; then {@code more}. */
    String[] overrides(final String... more)
    {
        final List<String> all = new ArrayList<>(List.of(
            "smtp.tls.provider", provider,
            "smtp.tls.cert", pair.cert().toString(),
            "smtp.tls.key", pair.key().toString(),
            "smtp.auth.users", users.toString(),
            "submission.listen", "127.0.0.1:0",
            "submissions.listen", "127.0.0.1:0"));
        all.addAll(Arrays.asList(more));
        return all.toArray(new String[0]);
    }
}
