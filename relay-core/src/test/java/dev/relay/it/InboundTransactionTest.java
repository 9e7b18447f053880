package dev.relay.it;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One full transaction each from a JDK socket, Python smtplib, swaks and curl against an in-process relay, then
 * the envelope and the wire-form body checked in the spool.
 */
@Timeout(60)
class InboundTransactionTest
{
    private static final Pattern QUEUED = Pattern.compile("250 2\\.0\\.0 Ok: queued as ([0-9A-Za-z]+)");

    @TempDir
    Path tmp;
    private InProcessRelay relay;

    @BeforeEach
    void start() throws Exception
    {
        relay = InProcessRelay.start(tmp.resolve("spool"));
    }

    @AfterEach
    void stop() throws Exception
    {
        if (relay != null)
        {
            relay.close();
        }
    }

    @Test
    void jdkSocketTransaction() throws Exception
    {
        final String body = "From: a@client.test\r\nTo: b@ours.test\r\nSubject: jdk\r\n\r\nhello\r\n";
        final String id;
        try (SmtpTestClient client = relay.connect())
        {
            client.greeting().expect(220);
            assertTrue(client.greeting().last().startsWith("220 relay.test "), client.greeting().toString());
            final SmtpTestClient.Reply ehlo = client.command("EHLO client.test").expect(250);
            assertTrue(ehlo.lines().contains("250-PIPELINING"), ehlo.toString());
            assertTrue(ehlo.lines().contains("250-CHUNKING"), ehlo.toString());
            client.command("MAIL FROM:<a@client.test>").expect(250, "2.1.0");
            client.command("RCPT TO:<b@ours.test>").expect(250, "2.1.5");
            client.command("DATA").expect(354);
            client.write(body + ".\r\n");
            id = client.read().queueId();
            client.command("QUIT").expect(221);
            assertTrue(client.awaitClosedByServer(Duration.ofSeconds(5)), "closed after QUIT");
        }
        final SpoolContents.Stored stored = SpoolContents.find(relay.spoolDir(), id);
        assertEquals("a@client.test", stored.from());
        assertEquals(List.of("b@ours.test"), stored.recipients());
        assertEquals(body, stored.bodyText());
        assertTrue(stored.receivedHeader().startsWith("Received: from client.test"), stored.receivedHeader());
        assertEquals(1, relay.spooled().size());
    }

    @Test
    void pythonSmtplibThreeRecipients() throws Exception
    {
        final Path python = ExternalTool.require("python3");
        final String script = String.join("\n",
            "import smtplib, sys",
            "s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='py.test', timeout=20)",
            "s.ehlo('py.test')",
            "s.mail('py@client.test')",
            "for r in ['r1@ours.test', 'r2@ours.test', 'r3@elsewhere.test']:",
            "    code, text = s.rcpt(r)",
            "    assert code == 250, (code, text)",
            "code, text = s.data(b'Subject: python\\r\\n\\r\\nline one\\r\\n.leading dot\\r\\nlast\\r\\n')",
            "print(code, text.decode())",
            "s.quit()",
            "");
        final ExternalTool.Result result = ExternalTool.run(
            List.of(python.toString(), "-c", script, String.valueOf(relay.port())), tmp, Duration.ofSeconds(30));
        assertEquals(0, result.exitCode(), result.toString());
        final Matcher m = Pattern.compile("^250 2\\.0\\.0 Ok: queued as ([0-9A-Za-z]+)", Pattern.MULTILINE)
            .matcher(result.stdout());
        assertTrue(m.find(), result.toString());
        final SpoolContents.Stored stored = SpoolContents.find(relay.spoolDir(), m.group(1));
        assertEquals("py@client.test", stored.from());
        assertEquals(List.of("r1@ours.test", "r2@ours.test", "r3@elsewhere.test"), stored.recipients());
        // smtplib dot-stuffs; the spool keeps the wire form
        assertEquals("Subject: python\r\n\r\nline one\r\n..leading dot\r\nlast\r\n", stored.bodyText());
    }

    /** Python's smtplib sends DSN parameters as Thunderbird and Outlook do; they are kept with the envelope. */
    @Test
    void pythonSmtplibDsnParametersAreKeptInTheSpool() throws Exception
    {
        final Path python = ExternalTool.require("python3");
        final String script = String.join("\n",
            "import smtplib, sys",
            "s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), local_hostname='py.test', timeout=20)",
            "s.ehlo('py.test')",
            "assert s.has_extn('dsn'), s.esmtp_features",
            "code, text = s.mail('py@client.test', ['RET=HDRS', 'ENVID=py+2B1'])",
            "assert code == 250, (code, text)",
            "code, text = s.rcpt('r1@ours.test', ['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;r1@ours.test'])",
            "assert code == 250, (code, text)",
            "code, text = s.rcpt('r2@ours.test', ['NOTIFY=NEVER,SUCCESS'])",
            "print('bad notify', code, text.decode())",
            "code, text = s.rcpt('r3@ours.test', ['NOTIFY=NEVER'])",
            "assert code == 250, (code, text)",
            "code, text = s.data(b'Subject: dsn\\r\\n\\r\\nhello\\r\\n')",
            "print(code, text.decode())",
            "s.sendmail('py@client.test', ['r4@ours.test'], b'Subject: sendmail\\r\\n\\r\\nhi\\r\\n',",
            "    mail_options=['RET=FULL'], rcpt_options=['NOTIFY=DELAY'])",
            "s.quit()",
            "");
        final ExternalTool.Result result = ExternalTool.run(
            List.of(python.toString(), "-c", script, String.valueOf(relay.port())), tmp, Duration.ofSeconds(30));
        assertEquals(0, result.exitCode(), result.toString());
        assertTrue(result.stdout().contains("bad notify 501 5.5.4"), result.toString());
        final Matcher m = Pattern.compile("^250 2\\.0\\.0 Ok: queued as ([0-9A-Za-z]+)", Pattern.MULTILINE)
            .matcher(result.stdout());
        assertTrue(m.find(), result.toString());

        final java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        assertEquals(0, dev.relay.spool.SpoolCommand.run(relay.spoolDir(), new String[] {"show", m.group(1)},
            new java.io.PrintStream(bytes, true, StandardCharsets.UTF_8)));
        final String show = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(show.contains("sender:      <py@client.test> RET=HDRS ENVID=py+2B1"), show);
        assertTrue(show.contains("recipients:  r1@ours.test(NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;r1@ours.test) " +
            "r3@ours.test(NOTIFY=NEVER)"), show);

        final java.io.ByteArrayOutputStream listed = new java.io.ByteArrayOutputStream();
        assertEquals(0, dev.relay.spool.SpoolCommand.run(relay.spoolDir(), new String[] {"list"},
            new java.io.PrintStream(listed, true, StandardCharsets.UTF_8)));
        final String list = listed.toString(StandardCharsets.UTF_8);
        assertTrue(list.contains("<py@client.test> RET=FULL  r4@ours.test(NOTIFY=DELAY)"), list);
        assertEquals(2, relay.spooled().size());
    }

    @Test
    void swaksTransaction() throws Exception
    {
        final Path swaks = ExternalTool.require("swaks");
        final ExternalTool.Result result = ExternalTool.run(List.of(swaks.toString(),
            "--server", "127.0.0.1", "--port", String.valueOf(relay.port()),
            "--helo", "swaks.test", "--from", "sw@client.test", "--to", "dest@ours.test",
            "--header", "Subject: swaks-subject", "--body", "hello from swaks"), tmp, Duration.ofSeconds(30));
        assertEquals(0, result.exitCode(), result.toString());
        final Matcher m = QUEUED.matcher(result.stdout());
        assertTrue(m.find(), result.toString());
        final SpoolContents.Stored stored = SpoolContents.find(relay.spoolDir(), m.group(1));
        assertEquals("sw@client.test", stored.from());
        assertEquals(List.of("dest@ours.test"), stored.recipients());
        assertTrue(stored.bodyText().contains("Subject: swaks-subject\r\n"), stored.bodyText());
        assertTrue(stored.bodyText().contains("\r\n\r\nhello from swaks\r\n"), stored.bodyText());
        assertTrue(stored.bodyText().endsWith("\r\n"), stored.bodyText());
        assertTrue(stored.receivedHeader().contains("swaks.test"), stored.receivedHeader());
    }

    @Test
    void curlUploadFile() throws Exception
    {
        final Path curl = ExternalTool.require("curl");
        final String body = "From: c@client.test\r\nSubject: curl\r\n\r\nuploaded by curl\r\nsecond line\r\n";
        final Path file = tmp.resolve("mail.eml");
        Files.writeString(file, body, StandardCharsets.US_ASCII);
        final ExternalTool.Result result = ExternalTool.run(List.of(curl.toString(), "-sS", "-v",
            "--max-time", "20",
            "smtp://127.0.0.1:" + relay.port() + "/curl.test",
            "--mail-from", "c@client.test", "--mail-rcpt", "x@ours.test", "--mail-rcpt", "y@ours.test",
            "--upload-file", file.toString()), tmp, Duration.ofSeconds(30));
        assertEquals(0, result.exitCode(), result.toString());
        final Matcher m = QUEUED.matcher(result.stderr());
        assertTrue(m.find(), result.toString());
        final SpoolContents.Stored stored = SpoolContents.find(relay.spoolDir(), m.group(1));
        assertEquals("c@client.test", stored.from());
        assertEquals(List.of("x@ours.test", "y@ours.test"), stored.recipients());
        assertEquals(body, stored.bodyText());
    }
}
