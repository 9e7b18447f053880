package dev.relay.it;

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
import java.util.List;
import java.util.Map;
import java.util.Set;
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
    private final KillNineLoad load = new KillNineLoad();

    @AfterEach
    void cleanUp() throws InterruptedException
    {
        load.close();
        for (final ChildRelay child : children)
        {
            child.close();
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

        // half the connections implicit TLS with AUTH, half STARTTLS
        final KillNineLoad.Result result = load.run(relay, spool, CONNECTIONS, KILL_AFTER_ACKS, MAX_LOAD, 1024,
            connection -> connection % 2 == 1 ? submitter(submissions) : startTls(relay.port()));
        final Set<String> acked = result.acked();
        final Set<String> spooled = result.spooled();
        System.out.printf("TLS load: acked %d in %d ms over %d TLS connections, spooled %d, lost %d%n",
            acked.size(), result.loadTime().toMillis(), CONNECTIONS, spooled.size(), result.lost().size());
        assertEquals(Set.of(), result.lost(), "acknowledged messages missing from the spool after kill -9");

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
        final Set<String> after = KillNineLoad.spooledIds(spool);
        assertTrue(after.containsAll(acked), "spool after restart lost messages");
        assertEquals(spooled.size() + 2, after.size());
        assertTrue(restarted.stdout().contains("sasl_method=PLAIN, sasl_username=alice"), restarted.stdout());
    }

    /** Implicit TLS on the submissions port, EHLO and AUTH PLAIN as alice: ready for MAIL. */
    private static SmtpTestClient submitter(final int submissionsPort) throws IOException
    {
        final SmtpTestClient client = SmtpTestClient.connectTls(submissionsPort, TestCertificates.get().clientContext());
        client.greeting().expect(220);
        client.command("EHLO load.test").expect(250);
        client.command("AUTH PLAIN " + Base64.getEncoder().encodeToString(("\0" + TlsRelay.ALICE + "\0" +
            TlsRelay.ALICE_PASSWORD).getBytes(StandardCharsets.UTF_8))).expect(235);
        return client;
    }

    /** The plain port, STARTTLS and EHLO again: ready for MAIL. */
    private static SmtpTestClient startTls(final int smtpPort) throws IOException
    {
        final SmtpTestClient client = SmtpTestClient.connectEhlo(smtpPort);
        client.command("STARTTLS").expect(220);
        client.startTls(TestCertificates.get().clientContext());
        client.command("EHLO load.test").expect(250);
        return client;
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
