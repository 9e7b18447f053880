package dev.relay;

import dev.relay.auth.PasswordHashes;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code relay passwd USER}: the password from stdin (no terminal here), a users-file line on stdout. */
@Timeout(60)
class PasswdCommandTest
{
    @Test
    void printsAUsersFileLineThatVerifies()
    {
        final InputStream in = System.in;
        final PrintStream out = System.out;
        final ByteArrayOutputStream printed = new ByteArrayOutputStream();
        try
        {
            System.setIn(new ByteArrayInputStream("s3cret pass\n".getBytes(StandardCharsets.UTF_8)));
            System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
            assertEquals(RelayMain.EXIT_OK, RelayMain.passwd(List.of("carol", "--rounds", "2000")));
        }
        finally
        {
            System.setIn(in);
            System.setOut(out);
        }
        final String line = printed.toString(StandardCharsets.UTF_8).strip();
        assertTrue(line.startsWith("carol:{PBKDF2-SHA256}$2000$"), line);
        assertTrue(PasswordHashes.verify("s3cret pass".getBytes(StandardCharsets.UTF_8),
            line.substring("carol:".length())));
        assertEquals(RelayMain.EXIT_CONFIG, RelayMain.passwd(List.of("bad:name")));
    }
}
