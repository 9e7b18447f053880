package dev.relay.testing;

import dev.relay.it.ExternalTool;

import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Debian's HAProxy in the foreground ({@code haproxy -f CFG -db}) with a configuration the test writes into a
 * temporary directory: checked first ({@code haproxy -c}), then started and waited for until every port it binds
 * answers. {@link #DEFAULTS} is the shared head of such a configuration (TCP mode, logs to stderr, a stats page on
 * {@code statsPort} that {@link #serverStates} reads). {@link #close()} kills it by its PID.
 */
public final class HaproxyProcess implements AutoCloseable
{
    /**
     * The head of a test configuration: {@code %1$d} is the stats port. Short timeouts, so a dead server is noticed
     * and a connection to it is sent elsewhere ({@code option redispatch}) within the test's seconds.
     */
    public static final String DEFAULTS = """
        global
            log stderr format raw local0 info
            maxconn 4096

        defaults
            mode tcp
            log global
            option tcplog
            option redispatch
            retries 3
            timeout connect 1s
            timeout client 60s
            timeout server 60s
            timeout check 1s

        frontend stats
            bind 127.0.0.1:%1$d
            mode http
            stats enable
            stats uri /stats
            stats refresh 1s

        """;

    private final Process process;
    private final Path log;
    private final int statsPort;

    private HaproxyProcess(final Process process, final Path log, final int statsPort)
    {
        this.process = process;
        this.log = log;
        this.statsPort = statsPort;
    }

    /**
     * Writes {@code config} to {@code dir}/haproxy.cfg, checks it and starts HAProxy with it.
     *
     * @param ports every port the configuration binds (the stats port among them), waited for.
     */
    public static HaproxyProcess start(final Path dir, final String config, final int statsPort, final int... ports)
        throws IOException, InterruptedException
    {
        final Path haproxy = ExternalTool.require("haproxy");
        Files.createDirectories(dir);
        final Path file = dir.resolve("haproxy.cfg");
        Files.writeString(file, config, StandardCharsets.UTF_8);
        final ExternalTool.Result check = ExternalTool.run(List.of(haproxy.toString(), "-c", "-f", file.toString()),
            dir, Duration.ofSeconds(20));
        if (check.exitCode() != 0)
        {
            throw new IOException("haproxy -c refused the configuration:\n" + config + "\n" + check);
        }
        final Path log = dir.resolve("haproxy.log");
        final Process process = new ProcessBuilder(haproxy.toString(), "-f", file.toString(), "-db")
            .directory(dir.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
        final HaproxyProcess started = new HaproxyProcess(process, log, statsPort);
        try
        {
            final long deadline = System.nanoTime() + Receivers.START_TIMEOUT.toNanos();
            for (final int port : ports)
            {
                while (!listening(port))
                {
                    if (!process.isAlive() || System.nanoTime() - deadline > 0)
                    {
                        throw new IOException("haproxy does not listen on " + port + ":\n" + started.log());
                    }
                    Thread.sleep(20);
                }
            }
            return started;
        }
        catch (final IOException | RuntimeException | InterruptedException ex)
        {
            started.close();
            throw ex;
        }
    }

    private static boolean listening(final int port)
    {
        try (Socket socket = new Socket())
        {
            socket.connect(new InetSocketAddress("127.0.0.1", port), 1_000);
            return true;
        }
        catch (final IOException ex)
        {
            return false;
        }
    }

    /** The status of each server of {@code backend} on the stats page: "UP", "DOWN", "UP 1/2", "DOWN 1/2"... */
    public Map<String, String> serverStates(final String backend) throws IOException, InterruptedException
    {
        final HttpResponse<String> response = HttpClient.newHttpClient().send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + statsPort + "/stats;csv"))
                .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
        final String[] lines = response.body().split("\n");
        final List<String> columns = Arrays.asList(lines[0].replaceFirst("^# ", "").split(","));
        final int name = columns.indexOf("svname");
        final int status = columns.indexOf("status");
        final Map<String, String> states = new LinkedHashMap<>();
        for (int i = 1; i < lines.length; i++)
        {
            final String[] fields = lines[i].split(",", -1);
            if (fields.length > status && fields[0].equals(backend) && !"BACKEND".equals(fields[name]))
            {
                states.put(fields[name], fields[status]);
            }
        }
        return states;
    }

    public long pid()
    {
        return process.pid();
    }

    /** What HAProxy wrote (its log lines and warnings). */
    public String log()
    {
        try
        {
            return Files.readString(log, StandardCharsets.ISO_8859_1);
        }
        catch (final IOException ex)
        {
            return "(no log: " + ex + ")";
        }
    }

    @Override
    public void close() throws InterruptedException
    {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }
}
