package dev.relay.testing;

import dev.relay.it.ExternalTool;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Python's aiosmtpd (Debian python3-aiosmtpd, run by Debian's {@code /usr/bin/python3}, not whatever python3 comes
 * first on PATH) as a receiver: a small handler writes {@code envelope.original_content}, the message octets as
 * received with the dot-stuffing undone and CRLF kept, to {@code out/SENDER.NNNNNN} (renamed into place when
 * whole) before it answers 250. It offers SIZE, 8BITMIME and SMTPUTF8: no PIPELINING, no CHUNKING. It binds port 0
 * and prints the port it got. {@link #close()} kills it by PID.
 */
public final class AiosmtpdProcess implements FileReceiver
{
    private static final Path PYTHON = Path.of("/usr/bin/python3");
    private static final Pattern LISTENING = Pattern.compile("listening on port (\\d+)");
    private static final String HANDLER = """
        # aiosmtpd receiver for the relay's tests (see AiosmtpdProcess): one file per message, renamed when whole
        import asyncio, os, sys
        from aiosmtpd.smtp import SMTP

        class Files:
            def __init__(self, directory):
                self.directory = directory
                self.count = 0

            async def handle_DATA(self, server, session, envelope):
                self.count += 1
                path = os.path.join(self.directory, "%s.%06d" % (envelope.mail_from, self.count))
                with open(path + ".tmp", "wb") as out:
                    out.write(envelope.original_content)
                os.rename(path + ".tmp", path)
                return "250 2.0.0 Ok: kept"

        async def main():
            handler = Files(sys.argv[1])
            server = await asyncio.get_running_loop().create_server(
                lambda: SMTP(handler, hostname="aiosmtpd.test", data_size_limit=int(sys.argv[2]),
                             enable_SMTPUTF8=True, decode_data=False),
                "127.0.0.1", 0)
            print("listening on port", server.sockets[0].getsockname()[1], flush=True)
            await server.serve_forever()

        asyncio.run(main())
        """;

    private final Process process;
    private final int port;
    private final Path out;
    private final Path log;

    private AiosmtpdProcess(final Process process, final int port, final Path out, final Path log)
    {
        this.process = process;
        this.port = port;
        this.out = out;
        this.log = log;
    }

    /** Starts it with a limit of {@code dataSizeLimit} octets per message (its SIZE). */
    public static AiosmtpdProcess start(final Path workDir, final long dataSizeLimit)
        throws IOException, InterruptedException
    {
        final String missing = "python3-aiosmtpd is not installed for " + PYTHON +
            " (apt-get install python3-aiosmtpd; .ci/run does)";
        if (!Files.isExecutable(PYTHON))
        {
            ExternalTool.missing(missing);
        }
        final ExternalTool.Result probe = ExternalTool.run(List.of(PYTHON.toString(), "-c", "import aiosmtpd"),
            workDir, Duration.ofSeconds(30));
        if (probe.exitCode() != 0)
        {
            ExternalTool.missing(missing + ": " + probe.stderr().trim());
        }
        final Path script = workDir.resolve("aiosmtpd-receiver.py");
        Files.writeString(script, HANDLER, StandardCharsets.US_ASCII);
        final Path out = Files.createDirectories(workDir.resolve("aiosmtpd-out"));
        final Path log = workDir.resolve("aiosmtpd.log");
        final Process process = new ProcessBuilder(PYTHON.toString(), script.toString(), out.toString(),
            Long.toString(dataSizeLimit))
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
        final long deadline = System.nanoTime() + Receivers.START_TIMEOUT.toNanos();
        while (System.nanoTime() - deadline < 0 && process.isAlive())
        {
            final Matcher m = LISTENING.matcher(Receivers.tail(log));
            if (m.find())
            {
                final int port = Integer.parseInt(m.group(1));
                if (Receivers.awaitGreeting(port, "aiosmtpd.test", process.toHandle()))
                {
                    return new AiosmtpdProcess(process, port, out, log);
                }
                break;
            }
            Thread.sleep(20);
        }
        ExternalTool.stop(process);
        throw new IOException("aiosmtpd did not start:\n" + Receivers.tail(log));
    }

    @Override
    public String name()
    {
        return "aiosmtpd";
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
        return false;
    }

    @Override
    public boolean wantsWellFormed()
    {
        return false;
    }

    @Override
    public List<Path> files() throws IOException
    {
        return Receivers.files(out, ".tmp");
    }

    @Override
    public CapturedMail read(final Path file) throws IOException
    {
        final String name = file.getFileName().toString();
        final int dot = name.lastIndexOf('.');
        return new CapturedMail(dot < 0 ? name : name.substring(0, dot), name, Files.readAllBytes(file));
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
