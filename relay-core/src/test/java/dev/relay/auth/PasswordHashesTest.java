package dev.relay.auth;

import dev.relay.smtp.Authenticator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The users file's password schemes against vectors made by another implementation (Python's hashlib), the file's
 * checks and reload, and the verifier's answers. A second or so (one hash at the default 600,000 rounds).
 */
@Timeout(60)
class PasswordHashesTest
{
    @TempDir
    Path tmp;

    private static byte[] utf8(final String text)
    {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void pbkdf2Sha256MatchesAnIndependentImplementation()
    {
        // hashlib.pbkdf2_hmac('sha256', 'pässword'.encode(), b'0123456789abcdef', 1000), base64 without padding
        final String stored = "{PBKDF2-SHA256}$1000$MDEyMzQ1Njc4OWFiY2RlZg$rybsuBlIHCOEKCPpDvTVloYHkPEiKOiJqqYGLCHAfF0";
        assertTrue(PasswordHashes.verify(utf8("pässword"), stored));
        assertFalse(PasswordHashes.verify(utf8("password"), stored));
        assertEquals(PasswordHashes.PBKDF2_SHA256, PasswordHashes.checkFormat(stored));
    }

    @Test
    void dovecotPbkdf2FilesWorkAsTheyAre()
    {
        // hashlib.pbkdf2_hmac('sha1', b'secret', b'SsRkBgjMuJKcSuJf', 5000).hex(), as Dovecot's {PBKDF2} writes it
        final String stored = "{PBKDF2}$1$SsRkBgjMuJKcSuJf$5000$4220f62c9ad4a3422d672743f89c2f86159b4d25";
        assertTrue(PasswordHashes.verify(utf8("secret"), stored));
        assertFalse(PasswordHashes.verify(utf8("Secret"), stored));
    }

    @Test
    void newHashesAreSaltedSlowAndVerify()
    {
        final long start = System.nanoTime();
        final String one = PasswordHashes.hash(utf8("same"), PasswordHashes.DEFAULT_ROUNDS);
        final long tookMs = (System.nanoTime() - start) / 1_000_000;
        final String two = PasswordHashes.hash(utf8("same"), 1_000);
        assertTrue(one.startsWith("{PBKDF2-SHA256}$600000$"), one);
        assertNotEquals(one.substring(one.lastIndexOf('$')), two.substring(two.lastIndexOf('$')), "no salt");
        assertTrue(PasswordHashes.verify(utf8("same"), one));
        assertTrue(PasswordHashes.verify(utf8("same"), two));
        assertFalse(PasswordHashes.verify(utf8("other"), two));
        System.out.println("PasswordHashesTest: one {PBKDF2-SHA256} hash at 600,000 rounds took " + tookMs + " ms");
    }

    @Test
    void plainAndMalformedEntries()
    {
        assertTrue(PasswordHashes.verify(utf8("hunter2"), "{PLAIN}hunter2"));
        assertTrue(PasswordHashes.verify(utf8("hunter2"), "{plain}hunter2"));
        assertFalse(PasswordHashes.verify(utf8("hunter"), "{PLAIN}hunter2"));
        assertFalse(PasswordHashes.verify(utf8("x"), "no scheme"));
        assertThrows(IllegalArgumentException.class, () -> PasswordHashes.checkFormat("{SHA512-CRYPT}$6$abc$def"));
        assertThrows(IllegalArgumentException.class, () -> PasswordHashes.checkFormat("{PBKDF2-SHA256}$x$AAAA$BBBB"));
        assertThrows(IllegalArgumentException.class, () -> PasswordHashes.checkFormat("hunter2"));
    }

    @Test
    void theUsersFileNamesItsBadLinesAndReloadsWhenItChanges() throws Exception
    {
        final Path file = tmp.resolve("users");
        Files.writeString(file, "# comment\n\nalice:{PLAIN}one:1000:1000::/home/alice\nbob:{SHA512-CRYPT}$6$x\n" +
            "nocolon\nalice:{PLAIN}two\n");
        final IOException bad = assertThrows(IOException.class, () -> UsersFile.load(file));
        assertTrue(bad.getMessage().contains(file + ":4: bob: unsupported password scheme {SHA512-CRYPT}"),
            bad.getMessage());
        assertTrue(bad.getMessage().contains(":5: not user:{SCHEME}hash"), bad.getMessage());
        assertTrue(bad.getMessage().contains(":6: alice: listed twice"), bad.getMessage());

        Files.writeString(file, "alice:{PLAIN}one:1000:1000::/home/alice\n");
        final UsersFile users = UsersFile.load(file);
        assertEquals("{PLAIN}one", users.stored("alice"));
        assertFalse(users.reloadIfChanged());
        Files.writeString(file, "alice:{PLAIN}one\nbob:{PLAIN}two\n");
        assertTrue(users.reloadIfChanged());
        assertEquals(2, users.size());
        Files.writeString(file, "alice:{PLAIN}three\nbroken line\n");
        assertFalse(users.reloadIfChanged(), "a broken file replaced the users in force");
        assertEquals("{PLAIN}two", users.stored("bob"));
    }

    @Test
    void theVerifierAnswersOnTheLoopsExecutor() throws Exception
    {
        final Path file = tmp.resolve("users");
        Files.writeString(file, "alice:" + PasswordHashes.hash(utf8("pw"), 1_000) + "\n");
        final UsersFile users = UsersFile.load(file);
        try (PasswordVerifier verifier = new PasswordVerifier(users, 1, Duration.ZERO))
        {
            final java.util.concurrent.LinkedBlockingQueue<String> answers =
                new java.util.concurrent.LinkedBlockingQueue<>();
            // one thread, as a loop is: the answers come in the order of the checks (one auth thread)
            final java.util.concurrent.ExecutorService loop =
                java.util.concurrent.Executors.newSingleThreadExecutor(command -> new Thread(command, "fake-loop"));
            final Authenticator authenticator = verifier.forLoop(loop);
            authenticator.verify("alice", utf8("pw"), result -> answers.add(result + " " +
                Thread.currentThread().getName()));
            authenticator.verify("alice", utf8("nope"), result -> answers.add(result + " " +
                Thread.currentThread().getName()));
            authenticator.verify("mallory", utf8("pw"), result -> answers.add(result + " " +
                Thread.currentThread().getName()));
            final java.util.List<String> got = new java.util.ArrayList<>();
            for (int i = 0; i < 3; i++)
            {
                got.add(answers.poll(30, java.util.concurrent.TimeUnit.SECONDS));
            }
            assertEquals(java.util.List.of(Authenticator.OK + " fake-loop", Authenticator.FAILED + " fake-loop",
                Authenticator.FAILED + " fake-loop"), got);
            // a second login with the same password is answered from the cache; another password is not
            assertTrue(verifier.cachedOk("alice", utf8("pw")));
            assertFalse(verifier.cachedOk("alice", utf8("nope")));
            assertFalse(verifier.cachedOk("mallory", utf8("pw")));
            loop.shutdownNow();
            // a changed entry (the password reset in the file) misses the cache
            Files.writeString(file, "alice:" + PasswordHashes.hash(utf8("new"), 1_000) + "\n# changed\n");
            assertTrue(users.reloadIfChanged());
            assertFalse(verifier.cachedOk("alice", utf8("pw")));
        }
    }
}
