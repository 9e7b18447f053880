package dev.relay.testing;

import dev.relay.it.ExternalTool;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Postfix's {@code smtp-sink} on a loopback port, dumping every message to a file of its own ({@code -d}, see
 * smtp-sink(1), DUMP FILE FORMAT). It offers PIPELINING and 8BITMIME, not CHUNKING or SIZE. A dump file holds, with
 * LF line ends: smtp-sink's own headers ({@code X-Client-Addr}, {@code X-Client-Proto}, {@code X-Helo-Args},
 * {@code X-Mail-Args}, {@code X-Rcpt-Args}...) closed by its three-line {@code Received:} header, then the message
 * as received with the dot-stuffing undone, then one empty line. {@link #read} returns the message alone.
 * <p>
 * Run as root it switches to {@code nobody} ({@code -u}; it refuses to run as root), so its dump directory is open
 * to all. {@link #close()} kills it by PID.
 */
public final class SmtpSinkProcess implements FileReceiver
{
    private static final String X_MAIL_ARGS = "X-Mail-Args: ";

    private final Process process;
    private final int port;
    private final Path dumps;
    private final Path log;

    private SmtpSinkProcess(final Process process, final int port, final Path dumps, final Path log)
    {
        this.process = process;
        this.port = port;
        this.dumps = dumps;
        this.log = log;
    }

    /** Starts smtp-sink on a free loopback port (another one when that is taken by the time it binds). */
    public static SmtpSinkProcess start(final Path workDir) throws IOException, InterruptedException
    {
        final Path binary = ExternalTool.require("smtp-sink");
        Receivers.traversable(workDir);
        final Path dumps = Receivers.openDirectory(workDir.resolve("smtp-sink-dumps"));
        final Path log = workDir.resolve("smtp-sink.log");
        String failure = "";
        for (int attempt = 0; attempt < Receivers.BIND_ATTEMPTS; attempt++)
        {
            final int port = Receivers.freePort();
            final List<String> command = new ArrayList<>(List.of(binary.toString()));
            if (Receivers.isRoot())
            {
                command.addAll(List.of("-u", "nobody"));
            }
            // -d: one dump file per message, named m.<random hex>; 256 sessions at most (the default)
            command.addAll(List.of("-d", dumps + "/m.", "127.0.0.1:" + port, "64"));
            final Process process = new ProcessBuilder(command)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
            if (Receivers.awaitGreeting(port, "smtp-sink", process.toHandle()))
            {
                return new SmtpSinkProcess(process, port, dumps, log);
            }
            ExternalTool.stop(process);
            failure = Receivers.tail(log);
        }
        throw new IOException("smtp-sink did not start after " + Receivers.BIND_ATTEMPTS + " ports:\n" + failure);
    }

    @Override
    public String name()
    {
        return "smtp-sink";
    }

    @Override
    public int port()
    {
        return port;
    }

    @Override
    public boolean chunking()
    {
        return false;
    }

    @Override
    public boolean lfLineEnds()
    {
        return true;
    }

    @Override
    public boolean wantsWellFormed()
    {
        return false;
    }

    @Override
    public List<Path> files() throws IOException
    {
        return Receivers.files(dumps, null);
    }

    /**
     * The message in a dump: what follows smtp-sink's Received: header, without the empty line it appends; null
     * while the dump does not yet end with a line.
     */
    @Override
    public CapturedMail read(final Path file) throws IOException
    {
        final byte[] dump = Files.readAllBytes(file);
        String mailFrom = null;
        int at = 0;
        while (at < dump.length)
        {
            final int next = CapturedMail.skipField(dump, at, "Received");
            if (next >= 0)
            {
                at = next;
                break;
            }
            int end = at;
            while (end < dump.length && dump[end] != '\n')
            {
                end++;
            }
            if (end == dump.length)
            {
                return null;
            }
            final String line = new String(dump, at, end - at, StandardCharsets.ISO_8859_1);
            if (line.startsWith(X_MAIL_ARGS))
            {
                final int open = line.indexOf('<');
                final int close = line.indexOf('>', open + 1);
                mailFrom = open < 0 || close < 0 ? line.substring(X_MAIL_ARGS.length()) : line.substring(open + 1, close);
            }
            at = end + 1;
        }
        if (mailFrom == null || at >= dump.length || dump[dump.length - 1] != '\n')
        {
            return null;
        }
        final byte[] message = new byte[dump.length - at - 1];
        System.arraycopy(dump, at, message, 0, message.length);
        return new CapturedMail(mailFrom, file.getFileName().toString(), message);
    }

    @Override
    public String log()
    {
        return Receivers.tail(log);
    }

    @Override
    public void close()
    {
        try
        {
            ExternalTool.stop(process);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
    }
}
