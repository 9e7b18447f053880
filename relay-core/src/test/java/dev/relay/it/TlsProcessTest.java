package dev.relay.it;

import dev.relay.testing.Await;
import dev.relay.testing.TestCertificates;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The relay with TLS and AUTH as a child JVM ({@code RelayMain}): killed with SIGKILL under load from 8 TLS
 * connections (half STARTTLS on smtp.listen, half implicit TLS with AUTH on submissions.listen), every message that
 * got its 250 is in the spool (lost = 0); restarted on that spool, it serves swaks --tls and Python's SMTP_SSL.
 * A certificate that does not load stops the process with exit code 2. About 20 s.
 */
@Tag("slow")
@Timeout(120)
class TlsProcessTest
{
    private static final int CONNECTIONS = 8;
    private static final int KILL_AFTER_ACKS = 1500;
    private static final Duration MAX_LOAD = Duration.ofSeconds(20);
    private static final Pattern SUBMISSIONS = Pattern.compile("submissions on \\[[^\\]]*?:(\\d+)[,\\]]");
    private static final Pattern QUEUED = Pattern.compile("250 2\\.0\\.0 Ok: queued as ([0-9A-Za-z]+)");

    @TempDir
    Path tmp;
    private final List<ChildRelay> children = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private final AtomicBoolean stopLoad = new AtomicBoolean();

    @AfterEach
    void cleanUp() throws InterruptedException
    {
        stopLoad.set(true);
        for (final ChildRelay child : children)
        {
            child.close();
        }
        for (final Thread thread : threads)
        {
            thread.join(10_000);
        }
    }

    private static int submissionsPort(final ChildRelay relay)
    {
        final Matcher m = SUBMISSIONS.matcher(relay.stdout());
        assertTrue(m.find(), relay.output());
        return Integer.parseInt(m.group(1));
    }

    @Test
    void killNineUnderTlsLoadLosesNoAcknowledgedMessageAndTheRestartServesTlsClients() throws Exception
    {
        final TlsRelay tls = new TlsRelay(tmp, TestCertificates.KeyType.RSA);
        final Path spool = tmp.resolve("spool");
        final Map<String, String> config = InProcessRelay.config(spool, tls.overrides());
        final ChildRelay relay = ChildRelay.start(tmp, config);
        children.add(relay);
        final int submissions = submissionsPort(relay);

        final Set<String> acked = ConcurrentHashMap.newKeySet();
        final ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
        for (int i = 0; i < CONNECTIONS; i++)
        {
            final int connection = i;
            final Thread thread = new Thread(() -> load(relay.port(), submissions, connection, acked, problems),
                "tls-load-" + i);
            thread.setDaemon(true);
            threads.add(thread);
            thread.start();
        }
        final long startNs = System.nanoTime();
        final long deadline = startNs + MAX_LOAD.toNanos();
        while (acked.size() < KILL_AFTER_ACKS && System.nanoTime() < deadline && problems.isEmpty())
        {
            Await.pause();
        }
        relay.kill9();
        final int ackedAtKill = acked.size();
        final Duration loadTime = Duration.ofNanos(System.nanoTime() - startNs);
        for (final Thread thread : threads)
        {
            thread.join(10_000);
            assertTrue(!thread.isAlive(), thread.getName() + " still running after the kill");
        }
        assertTrue(problems.isEmpty(), () -> "load failed before the kill: " + problems + "\n" + relay.output());
        assertTrue(ackedAtKill > 100, "only " + ackedAtKill + " acks in " + loadTime + "\n" + relay.output());

        final Set<String> spooled = new HashSet<>();
        for (final SpoolContents.Stored stored : SpoolContents.read(spool))
        {
            spooled.add(stored.queueId());
        }
        final Set<String> lost = new HashSet<>(acked);
        lost.removeAll(spooled);
        System.out.printf("TLS load: acked %d in %d ms over %d TLS connections, spooled %d, lost %d%n",
            acked.size(), loadTime.toMillis(), CONNECTIONS, spooled.size(), lost.size());
        assertEquals(Set.of(), lost, "acknowledged messages missing from the spool after kill -9");

        // restarted on the same spool: real TLS clients
        final ChildRelay restarted = ChildRelay.start(tmp, config);
        children.add(restarted);
        final Path swaks = ExternalTool.require("swaks");
        final ExternalTool.Result swaksResult = ExternalTool.run(List.of(swaks.toString(),
            "--server", "127.0.0.1", "--port", String.valueOf(restarted.port()), "--tls",
            "--helo", "swaks.test", "--from", "sw@client.test", "--to", "dest@ours.test"), tmp, Duration.ofSeconds(30));
        assertEquals(0, swaksResult.exitCode(), swaksResult.toString());
        assertTrue(QUEUED.matcher(swaksResult.stdout()).find(), swaksResult.toString());
        final Path python = ExternalTool.require("python3");
        final String script = String.join("\n",
            "import smtplib, ssl, sys",
            "ctx = ssl.create_default_context(cafile=sys.argv[1])",
            "t = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[2]), local_hostname='py.test', context=ctx, timeout=20)",
            "t.login(sys.argv[3], sys.argv[4])",
            "t.sendmail('alice@client.test', ['x@far-away.test'], b'Subject: child\\r\\n\\r\\nvia SMTP_SSL\\r\\n')",
            "t.quit()",
            "print('sent')",
            "");
        final ExternalTool.Result pythonResult = ExternalTool.run(List.of(python.toString(), "-c", script,
            tls.ca.toString(), String.valueOf(submissionsPort(restarted)), TlsRelay.ALICE, TlsRelay.ALICE_PASSWORD),
            tmp, Duration.ofSeconds(30));
        assertEquals(0, pythonResult.exitCode(), pythonResult.toString());
        restarted.sigterm();
        assertEquals(0, restarted.awaitExit(Duration.ofSeconds(15)), restarted::output);
        final Set<String> after = new HashSet<>();
        for (final SpoolContents.Stored stored : SpoolContents.read(spool))
        {
            after.add(stored.queueId());
        }
        assertTrue(after.containsAll(acked), "spool after restart lost messages");
        assertEquals(spooled.size() + 2, after.size());
        assertTrue(restarted.stdout().contains("sasl_method=PLAIN, sasl_username=alice"), restarted.stdout());
    }

    /** One TLS connection sending back to back until the relay dies; records the id of every 250. */
    private void load(final int smtpPort, final int submissionsPort, final int connection, final Set<String> acked,
        final ConcurrentLinkedQueue<String> problems)
    {
        final byte[] body = ("Subject: tls load " + connection + "\r\n\r\n" + "0123456789abcdef".repeat(64) +
            "\r\n.\r\n").getBytes(StandardCharsets.US_ASCII);
        final byte[] envelope = ("MAIL FROM:<load" + connection + "@client.test>\r\nRCPT TO:<r@ours.test>\r\nDATA\r\n")
            .getBytes(StandardCharsets.US_ASCII);
        final boolean implicit = connection % 2 == 1;
        try (SmtpTestClient client = implicit ?
            SmtpTestClient.connectTls(submissionsPort, TestCertificates.get().clientContext()) :
            SmtpTestClient.connectEhlo(smtpPort))
        {
            if (implicit)
            {
                client.greeting().expect(220);
                client.command("EHLO load.test").expect(250);
                client.command("AUTH PLAIN " + Base64.getEncoder().encodeToString(("\0" + TlsRelay.ALICE + "\0" +
                    TlsRelay.ALICE_PASSWORD).getBytes(StandardCharsets.UTF_8))).expect(235);
            }
            else
            {
                client.command("STARTTLS").expect(220);
                client.startTls(TestCertificates.get().clientContext());
                client.command("EHLO load.test").expect(250);
            }
            final String problem = client.sendUntil(stopLoad, envelope, body, acked);
            if (problem != null)
            {
                problems.add("connection " + connection + ": " + problem);
            }
        }
        catch (final IOException killed)
        {
            // the relay was killed: the message in flight got no 250, so it is not counted
        }
        catch (final RuntimeException | AssertionError ex)
        {
            problems.add("connection " + connection + ": " + ex);
        }
    }

    @Test
    void aCertificateThatDoesNotLoadIsAConfigurationError() throws Exception
    {
        final TlsRelay tls = new TlsRelay(tmp, TestCertificates.KeyType.RSA);
        // the EC key under the RSA certificate: the pair does not match
        Files.writeString(tls.pair.key(), TestCertificates.pem("PRIVATE KEY",
            TestCertificates.get().privateKey(TestCertificates.KeyType.EC).getEncoded()));
        final Map<String, String> config = InProcessRelay.config(tmp.resolve("spool"), tls.overrides());
        final ChildRelay relay = ChildRelay.launch(tmp, List.of("--config",
            ChildRelay.writeConfig(tmp, config).toString()));
        children.add(relay);
        assertEquals(2, relay.awaitExit(Duration.ofSeconds(30)), relay::output);
        assertTrue(relay.stderr().contains("smtp.tls.cert / smtp.tls.key:"), relay.output());
    }
}
