package dev.relay.e2e;

import dev.relay.Relay;
import dev.relay.testing.Await;
import dev.relay.testing.BlockingSmtpClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A real peer as the destination: Postfix's {@code smtp-sink} ({@code -c} prints a running count of messages).
 * Without it the test is skipped, except in CI ({@code CI=true}), where it fails.
 */
class DeliveryPostfixSinkTest
{
    private static final Path SMTP_SINK = Path.of("/usr/sbin/smtp-sink");
    private static final Pattern COUNT = Pattern.compile("mesg=(\\d+)");
    private static final int MESSAGES = 500;

    @TempDir
    Path dir;

    private Process smtpSink;
    private Relay relay;

    @AfterEach
    void closeAll() throws Exception
    {
        try
        {
            Await.closeQuietly(relay);
        }
        finally
        {
            if (smtpSink != null && smtpSink.isAlive())
            {
                smtpSink.destroyForcibly();
                smtpSink.waitFor(5, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    @Timeout(60)
    void fiveHundredMessagesToPostfixSmtpSink() throws Exception
    {
        if (!Files.isExecutable(SMTP_SINK))
        {
            if ("true".equalsIgnoreCase(System.getenv("CI")))
            {
                fail(SMTP_SINK + " is missing (install postfix; .ci/run does)");
            }
            Assumptions.abort(SMTP_SINK + " is missing: install postfix to run this test (it fails when CI=true)");
        }
        final int port = freePort();
        final Path out = dir.resolve("smtp-sink.out");
        final List<String> command = new ArrayList<>(List.of(SMTP_SINK.toString(), "-c"));
        if ("root".equals(System.getProperty("user.name")))
        {
            command.addAll(List.of("-u", "nobody")); // it drops privileges, and only root may
        }
        command.addAll(List.of("127.0.0.1:" + port, "100"));
        smtpSink = new ProcessBuilder(command).redirectErrorStream(true)
            .redirectOutput(out.toFile()).start();
        Await.until("smtp-sink to listen", Duration.ofSeconds(10), () -> listening(port),
            () -> "smtp-sink alive " + smtpSink.isAlive() + ", output " + read(out));

        relay = E2e.start(E2e.config(dir.resolve("spool"), "delivery.routes", "*=127.0.0.1:" + port));
        final String sender = "postfix@client.test";
        try (BlockingSmtpClient client = new BlockingSmtpClient(E2e.smtp(relay)))
        {
            for (int i = 0; i < MESSAGES; i++)
            {
                client.send(sender, List.of("r" + (i % 3) + "@example.test"),
                    E2e.message(sender, "r@example.test", "pf-" + i));
            }
        }
        Await.until("all delivered to smtp-sink", Duration.ofSeconds(30),
            () -> relay.metrics().messagesDelivered() >= MESSAGES && relay.queuedMessages() == 0,
            () -> "delivered " + relay.metrics().messagesDelivered() + ", deferred " +
                relay.metrics().messagesDeferred() + ", bounced " + relay.metrics().messagesBounced());
        assertEquals(MESSAGES, relay.metrics().messagesDelivered());
        assertEquals(0, relay.metrics().messagesBounced());

        // smtp-sink's own counter, written when it exits (SIGTERM)
        Await.closeQuietly(relay);
        relay = null;
        smtpSink.destroy();
        smtpSink.waitFor(5, TimeUnit.SECONDS);
        final Matcher counts = COUNT.matcher(read(out));
        int counted = -1;
        while (counts.find())
        {
            counted = Integer.parseInt(counts.group(1));
        }
        System.out.println("smtp-sink counted " + counted + " messages");
        if (counted >= 0)
        {
            assertEquals(MESSAGES, counted, "smtp-sink's -c counter");
        }
    }

    private static boolean listening(final int port)
    {
        try (Socket probe = new Socket("127.0.0.1", port))
        {
            return true;
        }
        catch (final IOException notYet)
        {
            return false;
        }
    }

    private static String read(final Path file)
    {
        try
        {
            return Files.exists(file) ? Files.readString(file, StandardCharsets.ISO_8859_1) : "";
        }
        catch (final IOException ex)
        {
            return ex.toString();
        }
    }

    private static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1")))
        {
            return socket.getLocalPort();
        }
    }
}
