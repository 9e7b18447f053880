package dev.relay.testing;

import dev.relay.testing.TestSmtpSink.Fault;
import dev.relay.testing.TestSmtpSink.Received;
import dev.relay.testing.TestSmtpSink.Step;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(30)
class TestSmtpSinkTest
{
    private static final Duration WAIT = Duration.ofSeconds(10);

    @AfterEach
    void noSinkThreadOutlivesClose()
    {
        for (final Thread thread : Thread.getAllStackTraces().keySet())
        {
            assertFalse(thread.isAlive() && thread.getName().startsWith("test-smtp-sink-"), thread.getName());
        }
    }

    @Test
    void pipelinedTransactionIsRecordedWithEnvelopeParamsAndCommands() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            assertTrue(client.reply().startsWith("220 "));
            client.send("EHLO relay.test\r\n");
            assertEquals(List.of("250-sink.test Hello relay.test", "250-PIPELINING", "250-SIZE 52428800",
                "250-8BITMIME", "250-SMTPUTF8", "250-CHUNKING", "250 ENHANCEDSTATUSCODES"), client.replyLines());

            client.send("MAIL FROM:<a@x.test> BODY=8BITMIME SIZE=20\r\nRCPT TO:<b@y.test>\r\n" +
                "RCPT TO:<c@y.test>\r\nDATA\r\n");
            assertEquals("250 2.1.0 Ok", client.reply());
            assertEquals("250 2.1.5 Ok", client.reply());
            assertEquals("250 2.1.5 Ok", client.reply());
            assertTrue(client.reply().startsWith("354 "));
            client.send("Subject: hi\r\n\r\nbody\r\n.\r\n");
            assertTrue(client.reply().startsWith("250 2.0.0 "));
            client.send("QUIT\r\n");
            assertEquals("221 2.0.0 Bye", client.reply());
            assertNull(client.readLine());

            final Received message = sink.awaitMessages(1, WAIT).get(0);
            assertEquals("a@x.test", message.mailFrom());
            assertEquals(List.of("b@y.test", "c@y.test"), message.recipients());
            assertEquals("Subject: hi\r\n\r\nbody\r\n", message.text());
            assertTrue(message.eightBitMime());
            assertFalse(message.smtpUtf8());
            assertEquals(20, message.declaredSize());
            assertFalse(message.bdat());
            assertEquals(1, message.connectionId());
            assertEquals(0, message.transactionIndex());
            assertEquals(Map.of(1, List.of("EHLO relay.test", "MAIL FROM:<a@x.test> BODY=8BITMIME SIZE=20",
                "RCPT TO:<b@y.test>", "RCPT TO:<c@y.test>", "DATA", "QUIT")), sink.commands());
            assertEquals(Map.of(1, 1), sink.transactionsPerConnection());
        }
    }

    @Test
    void dataKeepsRawBytesAndUnstuffsLeadingDots() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            client.hello();
            client.envelope("<>", "b@y.test");
            final String raw = "..one\r\n.two\r\n...\r\nbare\nlf .\r\n.\n.x\r\n\r\n";
            client.send(raw + ".\r\n");
            assertTrue(client.reply().startsWith("250 "));
            client.envelope("<s@x.test>", "b@y.test");
            client.send(".\r\n");
            assertTrue(client.reply().startsWith("250 "));

            final List<Received> messages = sink.awaitMessages(2, WAIT);
            assertEquals("", messages.get(0).mailFrom());
            assertArrayEquals(raw.getBytes(StandardCharsets.US_ASCII), messages.get(0).raw());
            assertEquals(".one\r\ntwo\r\n..\r\nbare\nlf .\r\n\n.x\r\n\r\n", messages.get(0).text());
            assertEquals(0, messages.get(1).content().length);
            assertEquals(1, messages.get(1).transactionIndex());
        }
    }

    @Test
    void bdatChunksAreConcatenatedUntilLast() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            client.hello();
            client.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 7\r\nhello\r\nBDAT 8 LAST\r\n.world\r\n");
            assertEquals("250 2.1.0 Ok", client.reply());
            assertEquals("250 2.1.5 Ok", client.reply());
            assertEquals("250 2.0.0 7 octets received", client.reply());
            assertTrue(client.reply().startsWith("250 2.0.0 Ok"));
            client.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 0 LAST\r\n");
            client.reply();
            client.reply();
            assertTrue(client.reply().startsWith("250 2.0.0 Ok"));

            final List<Received> messages = sink.awaitMessages(2, WAIT);
            assertEquals("hello\r\n.world\r\n", messages.get(0).text());
            assertArrayEquals(messages.get(0).raw(), messages.get(0).content());
            assertTrue(messages.get(0).bdat());
            assertEquals(0, messages.get(1).content().length);
        }
    }

    @Test
    void scriptedRecipientRepliesAndLimitKeepOnlyAcceptedRecipients() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            sink.rcptReply(address -> address.startsWith("unknown") ? "550 5.1.1 user unknown" : null).maxRecipients(2);
            client.hello();
            client.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<unknown@y.test>\r\nRCPT TO:<b@y.test>\r\n" +
                "RCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n");
            assertEquals("250 2.1.0 Ok", client.reply());
            assertEquals("550 5.1.1 user unknown", client.reply());
            assertEquals("250 2.1.5 Ok", client.reply());
            assertEquals("250 2.1.5 Ok", client.reply());
            assertEquals("452 4.5.3 Too many recipients", client.reply());
            assertTrue(client.reply().startsWith("354 "));
            client.send("x\r\n.\r\n");
            client.reply();

            assertEquals(List.of("b@y.test", "c@y.test"), sink.awaitMessages(1, WAIT).get(0).recipients());
        }
    }

    @Test
    void queuedDataRepliesAreUsedInOrderThenTheDefault() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            sink.queueDataReplies("451 4.3.0 try later", "451 4.3.0 try later");
            client.hello();
            for (int attempt = 0; attempt < 3; attempt++)
            {
                client.envelope("<a@x.test>", "b@y.test");
                client.send("attempt " + attempt + "\r\n.\r\n");
                assertEquals(attempt < 2, client.reply().equals("451 4.3.0 try later"));
                client.send("RSET\r\n");
                assertEquals("250 2.0.0 Ok", client.reply());
            }

            final List<Received> messages = sink.awaitMessages(1, WAIT);
            assertEquals(1, messages.size());
            assertEquals("attempt 2\r\n", messages.get(0).text());
            assertEquals(2, messages.get(0).transactionIndex());
            assertEquals(Map.of(1, 3), sink.transactionsPerConnection());
            assertEquals(3, sink.commands().get(1).stream().filter("RSET"::equals).count());
        }
    }

    @Test
    void queuedMailReplyRefusesTheTransaction() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            sink.queueMailReplies("451 4.7.1 greylisted");
            client.hello();
            client.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nMAIL FROM:<a@x.test>\r\n");
            assertEquals("451 4.7.1 greylisted", client.reply());
            assertEquals("503 5.5.1 Need MAIL before RCPT", client.reply());
            assertEquals("250 2.1.0 Ok", client.reply());
            assertEquals(Map.of(1, 1), sink.transactionsPerConnection());
        }
    }

    @Test
    void protocolErrorsAreReplies() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            client.reply();
            client.send("MAIL FROM:<a@x.test>\r\n");
            assertEquals("503 Send EHLO or HELO first", client.reply());
            client.send("EHLO relay.test\r\n");
            client.replyLines();
            client.send("MAIL FROM: <a@x.test>\r\nMAIL FROM:<a@x.test> RET=FULL\r\nMAIL FROM:<a@x.test> SIZE=52428801\r\n" +
                "MAIL FROM:<ü@x.test>\r\nNOOP\n" + "X".repeat(TestSmtpSink.MAX_LINE_BYTES) + "\r\nWHAT\r\nDATA\r\n");
            assertEquals("501 5.5.4 Syntax: MAIL FROM:<address>", client.reply());
            assertTrue(client.reply().startsWith("555 5.5.4 "));
            assertEquals("552 5.3.4 Message size exceeds fixed limit", client.reply());
            assertEquals("553 5.6.7 Non-ASCII address needs SMTPUTF8", client.reply());
            assertEquals("500 5.5.2 Command line must end with CRLF", client.reply());
            assertEquals("500 5.5.2 Line too long", client.reply());
            assertEquals("500 5.5.2 Command unrecognized", client.reply());
            assertEquals("503 5.5.1 Need MAIL and RCPT first", client.reply());
            client.send("MAIL FROM:<ü@x.test> SMTPUTF8\r\nRCPT TO:<ö@y.test>\r\nDATA\r\n");
            assertEquals("250 2.1.0 Ok", client.reply());
            assertEquals("250 2.1.5 Ok", client.reply());
            client.reply();
            client.send("\u00e9t\u00e9\r\n.\r\n");
            client.reply();

            final Received message = sink.awaitMessages(1, WAIT).get(0);
            assertTrue(message.smtpUtf8());
            assertEquals("ü@x.test", message.mailFrom());
            assertEquals("été\r\n", message.text());
            assertEquals(Map.of(1, 1), sink.transactionsPerConnection());
        }
    }

    @Test
    void extensionsCanBeTurnedOff() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            sink.disableExtension("CHUNKING").disableExtension("ENHANCEDSTATUSCODES").disableExtension("smtputf8");
            client.reply();
            client.send("EHLO relay.test\r\n");
            assertEquals(List.of("250-sink.test Hello relay.test", "250-PIPELINING", "250-SIZE 52428800",
                "250 8BITMIME"), client.replyLines());
            client.send("MAIL FROM:<a@x.test> SMTPUTF8\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 3 LAST\r\nabc");
            assertTrue(client.reply().startsWith("555 Unsupported"));
            assertEquals("250 Ok", client.reply());
            assertEquals("250 Ok", client.reply());
            assertEquals("502 BDAT not advertised", client.reply());

            sink.extensions();
            client.send("HELO relay.test\r\nMAIL FROM:<a@x.test> BODY=8BITMIME\r\nEHLO relay.test\r\n");
            assertEquals("250 sink.test Hello relay.test", client.reply());
            assertEquals("555 MAIL parameters not supported", client.reply());
            assertEquals(List.of("250 sink.test Hello relay.test"), client.replyLines());
        }
    }

    @Test
    void replyDelaySlowsEveryReply() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            client.hello();
            sink.replyDelay(Duration.ofMillis(200));
            final long startNs = System.nanoTime();
            client.send("NOOP\r\nNOOP\r\n");
            client.reply();
            client.reply();
            assertTrue(System.nanoTime() - startNs >= Duration.ofMillis(400).toNanos());
        }
    }

    @Test
    void closeInterruptsADelayedReply() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            client.hello();
            sink.replyDelay(Duration.ofSeconds(20));
            client.send("NOOP\r\n");
            awaitTrue(() -> sink.commands().get(1).contains("NOOP"));
            final long startNs = System.nanoTime();
            sink.close(); // and again, idempotently, by try-with-resources
            assertTrue(System.nanoTime() - startNs < Duration.ofSeconds(2).toNanos());
            assertNull(client.readLine());
        }
    }

    @Test
    void connectionsOverTheCapGet421() throws Exception
    {
        final List<Client> clients = new ArrayList<>();
        try (TestSmtpSink sink = TestSmtpSink.start())
        {
            for (int i = 0; i < TestSmtpSink.MAX_CONNECTIONS; i++)
            {
                clients.add(new Client(sink.port()));
            }
            for (final Client client : clients)
            {
                assertTrue(client.reply().startsWith("220 "));
            }
            try (Client extra = new Client(sink.port()))
            {
                assertEquals("421 4.7.0 Too many connections", extra.reply());
                assertNull(extra.readLine());
            }
            assertEquals(TestSmtpSink.MAX_CONNECTIONS, sink.maxConcurrentConnections());
            assertEquals(TestSmtpSink.MAX_CONNECTIONS + 1, sink.connectionsAccepted());
        }
        finally
        {
            for (final Client client : clients)
            {
                client.close();
            }
        }
    }

    @Test
    void stopTakesTheDestinationDownAndRestartBringsItBackOnTheSamePort() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start())
        {
            final int port = sink.port();
            final Client before = new Client(port);
            assertTrue(before.reply().startsWith("220 "));

            sink.stop();
            assertNull(before.readLine());
            before.close();
            assertThrows(ConnectException.class, () -> new Client(port));
            assertEquals(0, sink.activeConnections());

            sink.restart();
            assertEquals(port, sink.port());
            try (Client after = new Client(port))
            {
                assertTrue(after.reply().startsWith("220 "));
            }
            assertEquals(2, sink.connectionsAccepted());
            assertThrows(IllegalStateException.class, sink::restart);
        }
    }

    @Test
    void startOnAGivenPortComesBackAfterClose() throws Exception
    {
        final int port;
        try (TestSmtpSink sink = TestSmtpSink.start(); Client client = new Client(sink.port()))
        {
            port = sink.port();
            client.hello();
        }
        try (TestSmtpSink sink = TestSmtpSink.start(port); Client client = new Client(port))
        {
            assertTrue(client.reply().startsWith("220 "));
            assertEquals(port, sink.port());
        }
    }

    @Test
    void neverGreetKeepsTheConnectionOpenAndSilent() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start().fault(Step.CONNECT, Fault.SILENT);
             Client client = new Client(sink.port()))
        {
            client.socket.setSoTimeout(300);
            client.send("EHLO relay.test\r\n");
            assertThrows(SocketTimeoutException.class, client::readLine);
            assertEquals(1, sink.activeConnections());
        }
    }

    @Test
    void rejectingGreetingIsSentThenTheConnectionClosed() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start().greeting("554 5.3.2 not accepting mail");
             Client client = new Client(sink.port()))
        {
            assertEquals("554 5.3.2 not accepting mail", client.reply());
            assertNull(client.readLine());
        }
    }

    @Test
    void dropAfterDataClosesWithoutReplyAndRecordsNothing() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start().faultOnce(Step.DATA_END, Fault.DROP))
        {
            try (Client client = new Client(sink.port()))
            {
                client.hello();
                client.envelope("<a@x.test>", "b@y.test");
                client.send("first\r\n.\r\n");
                assertNull(client.readLine());
            }
            try (Client client = new Client(sink.port()))
            {
                client.hello();
                client.envelope("<a@x.test>", "b@y.test");
                client.send("second\r\n.\r\n");
                assertTrue(client.reply().startsWith("250 "));
            }
            assertEquals("second\r\n", sink.awaitMessages(1, WAIT).get(0).text());
            assertEquals(1, sink.messageCount());
            assertEquals(2, sink.messages().get(0).connectionId());
        }
    }

    @Test
    void close421AtAGivenCommand() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start().fault(Step.RCPT, Fault.CLOSE_421);
             Client client = new Client(sink.port()))
        {
            client.hello();
            client.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
            assertEquals("250 2.1.0 Ok", client.reply());
            assertEquals("421 4.4.2 sink.test closing connection", client.reply());
            assertNull(client.readLine());
        }
    }

    @Test
    void garbageAndHugeLineReplaceReplies() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start().faultOnce(Step.MAIL, Fault.GARBAGE);
             Client client = new Client(sink.port()))
        {
            client.hello();
            client.send("MAIL FROM:<a@x.test>\r\n");
            assertArrayEquals("\u0000\u00ff*** not an SMTP reply ***".getBytes(StandardCharsets.ISO_8859_1),
                client.readRawLine());
            sink.faultOnce(Step.NOOP, Fault.HUGE_LINE);
            client.send("NOOP\r\nNOOP\r\n");
            final String huge = client.readLine();
            assertEquals((1 << 20) + 4, huge.length());
            assertTrue(huge.startsWith("250 xxx"));
            assertEquals("250 2.0.0 Ok", client.reply());
        }
    }

    @Test
    void concurrentConnectionsAreCounted() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start())
        {
            final List<Client> clients = new ArrayList<>();
            for (int i = 0; i < 20; i++)
            {
                clients.add(new Client(sink.port()));
            }
            for (final Client client : clients)
            {
                assertTrue(client.reply().startsWith("220 "));
            }
            assertEquals(20, sink.activeConnections());
            for (final Client client : clients)
            {
                client.send("QUIT\r\n");
                client.reply();
                client.close();
            }
            awaitTrue(() -> sink.activeConnections() == 0);
            try (Client client = new Client(sink.port()))
            {
                client.reply();
            }
            assertEquals(20, sink.maxConcurrentConnections());
            assertEquals(21, sink.connectionsAccepted());
            assertEquals(21, sink.commands().size());
        }
    }

    @Test
    void awaitMessagesFailsAtTheDeadline() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start())
        {
            final AssertionError error = assertThrows(AssertionError.class,
                () -> sink.awaitMessages(1, Duration.ofMillis(50)));
            assertTrue(error.getMessage().contains("got 0"));
        }
    }

    private static void awaitTrue(final BooleanSupplier condition) throws InterruptedException
    {
        final long deadlineNs = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean())
        {
            assertTrue(System.nanoTime() < deadlineNs, "condition not met within " + WAIT);
            Thread.sleep(5);
        }
    }

    /** A plain blocking SMTP client: bytes out, reply lines in. */
    private static final class Client implements AutoCloseable
    {
        final Socket socket = new Socket();
        final InputStream in;
        final OutputStream out;

        Client(final int port) throws IOException
        {
            try
            {
                socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
                socket.setSoTimeout(10_000);
                in = new BufferedInputStream(socket.getInputStream());
                out = socket.getOutputStream();
            }
            catch (final IOException ex)
            {
                socket.close();
                throw ex;
            }
        }

        void send(final String text) throws IOException
        {
            out.write(text.getBytes(StandardCharsets.UTF_8));
            out.flush();
        }

        /** One line without CRLF, or null at end of stream. */
        String readLine() throws IOException
        {
            final byte[] line = readRawLine();
            return line == null ? null : new String(line, StandardCharsets.UTF_8);
        }

        byte[] readRawLine() throws IOException
        {
            final ByteArrayOutputStream line = new ByteArrayOutputStream();
            int previous = -1;
            while (true)
            {
                final int b = in.read();
                if (b < 0)
                {
                    return line.size() == 0 ? null : line.toByteArray();
                }
                if (b == '\n' && previous == '\r')
                {
                    final byte[] bytes = line.toByteArray();
                    return Arrays.copyOf(bytes, bytes.length - 1);
                }
                line.write(b);
                previous = b;
            }
        }

        List<String> replyLines() throws IOException
        {
            final List<String> lines = new ArrayList<>();
            while (true)
            {
                final String line = readLine();
                assertTrue(line != null, "connection closed mid-reply after " + lines);
                lines.add(line);
                if (line.length() < 4 || line.charAt(3) != '-')
                {
                    return lines;
                }
            }
        }

        /** The last line of the next reply. */
        String reply() throws IOException
        {
            final List<String> lines = replyLines();
            return lines.get(lines.size() - 1);
        }

        void hello() throws IOException
        {
            assertTrue(reply().startsWith("220 "));
            send("EHLO relay.test\r\n");
            assertTrue(reply().startsWith("250 "));
        }

        /** MAIL, one RCPT and DATA, up to the 354. */
        void envelope(final String from, final String to) throws IOException
        {
            send("MAIL FROM:" + from + "\r\nRCPT TO:<" + to + ">\r\nDATA\r\n");
            assertTrue(reply().startsWith("250 "));
            assertTrue(reply().startsWith("250 "));
            assertTrue(reply().startsWith("354 "));
        }

        @Override
        public void close() throws IOException
        {
            socket.close();
        }
    }
}
