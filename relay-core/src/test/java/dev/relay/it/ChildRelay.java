package dev.relay.it;

import dev.relay.testing.Await;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The relay as a child JVM ({@code java ... dev.relay.RelayMain --config FILE}) on the test's class path, with the
 * Chronicle flags this JVM was started with. Output goes to files in the work directory. {@link #close()} always
 * kills it (by its own Process handle) if it is still running.
 */
final class ChildRelay implements AutoCloseable
{
    private static final Pattern BOUND = Pattern.compile("smtp on \\[[^\\]]*?:(\\d+)[,\\]]");

    private final Process process;
    private final Path stdout;
    private final Path stderr;
    private int port = -1;

    private ChildRelay(final Process process, final Path stdout, final Path stderr)
    {
        this.process = process;
        this.stdout = stdout;
        this.stderr = stderr;
    }

    /** {@code java} with this JVM's --add-exports/--add-opens and -D flags, the test class path and RelayMain. */
    static List<String> javaCommand()
    {
        final List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (final String arg : ManagementFactory.getRuntimeMXBean().getInputArguments())
        {
            if (arg.startsWith("--add-") || arg.startsWith("-Dchronicle."))
            {
                command.add(arg);
            }
        }
        command.add("-Dchronicle.analytics.disable=true");
        command.add("-Dchronicle.announcer.disable=true");
        command.add("-Xmx256m");
        command.add("-XX:+UseSerialGC");
        // log as ops/relay does (INFO, asynchronous), not as the tests' logback-test.xml (WARN)
        command.add("-Dlogback.configurationFile=" + opsLogback());
        command.add("-cp");
        command.add(System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
        command.add("dev.relay.RelayMain");
        return command;
    }

    private static String opsLogback()
    {
        Path dir = Path.of(System.getProperty("basedir", System.getProperty("user.dir"))).toAbsolutePath();
        while (dir != null && !Files.isRegularFile(dir.resolve("ops/logback.xml")))
        {
            dir = dir.getParent();
        }
        return dir == null ? "logback.xml" : dir.resolve("ops/logback.xml").toString();
    }

    /** Writes {@code config} as a properties file in {@code workDir}. */
    static Path writeConfig(final Path workDir, final Map<String, String> config) throws IOException
    {
        final StringBuilder text = new StringBuilder("# written by " + ChildRelay.class.getName() + "\n");
        config.forEach((key, value) -> text.append(key).append('=').append(value).append('\n'));
        final Path file = Files.createTempFile(workDir, "relay", ".properties");
        Files.writeString(file, text, StandardCharsets.UTF_8);
        return file;
    }

    /** Starts RelayMain with {@code args} (no waiting). */
    static ChildRelay launch(final Path workDir, final List<String> args) throws IOException
    {
        return launch(workDir, List.of(), args, 0);
    }

    /**
     * Starts RelayMain with {@code args} (no waiting): {@code jvmFlags} go before the class path, and a positive
     * {@code fdLimit} runs it under {@code ulimit -n fdLimit} (exec'd, so the process is the JVM itself).
     */
    static ChildRelay launch(final Path workDir, final List<String> jvmFlags, final List<String> args,
        final int fdLimit) throws IOException
    {
        final List<String> command = new ArrayList<>();
        if (fdLimit > 0)
        {
            command.addAll(List.of("bash", "-c", "ulimit -n " + fdLimit + " && exec \"$@\"", "relay"));
        }
        final List<String> java = javaCommand();
        java.addAll(1, jvmFlags);
        command.addAll(java);
        command.addAll(args);
        final Path out = Files.createTempFile(workDir, "child", ".out");
        final Path err = Files.createTempFile(workDir, "child", ".err");
        final Process process = new ProcessBuilder(command)
            .directory(workDir.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(out.toFile())
            .redirectError(err.toFile())
            .start();
        return new ChildRelay(process, out, err);
    }

    /** Starts the relay with {@code config} and waits until it listens. */
    static ChildRelay start(final Path workDir, final Map<String, String> config) throws IOException
    {
        return start(workDir, writeConfig(workDir, config));
    }

    /** Starts the relay with the properties file {@code configFile} (a test may rewrite it and reload) and waits. */
    static ChildRelay start(final Path workDir, final Path configFile) throws IOException
    {
        return started(launch(workDir, List.of("--config", configFile.toString())));
    }

    /** Starts the relay with {@code config}, {@code jvmFlags} and {@code fdLimit} as in {@link #launch}, and waits. */
    static ChildRelay start(final Path workDir, final Map<String, String> config, final List<String> jvmFlags,
        final int fdLimit) throws IOException
    {
        return started(launch(workDir, jvmFlags, List.of("--config", writeConfig(workDir, config).toString()),
            fdLimit));
    }

    private static ChildRelay started(final ChildRelay child)
    {
        try
        {
            child.awaitListening(Duration.ofSeconds(30));
            return child;
        }
        catch (final RuntimeException | AssertionError ex)
        {
            child.close();
            throw ex;
        }
    }

    private void awaitListening(final Duration timeout)
    {
        port = awaitPort(process, this::stdout, this::output, timeout);
    }

    /**
     * Waits until a child relay logs its bound SMTP port ("smtp on [/127.0.0.1:PORT]") and returns it; fails when the
     * process exits first or the timeout passes, showing {@code output}.
     */
    static int awaitPort(
        final Process process, final Supplier<String> stdout, final Supplier<String> output, final Duration timeout)
    {
        final long deadline = System.nanoTime() + timeout.toNanos();
        while (true)
        {
            final Matcher m = BOUND.matcher(stdout.get());
            if (m.find())
            {
                return Integer.parseInt(m.group(1));
            }
            if (!process.isAlive())
            {
                fail("child relay exited with " + process.exitValue() + " before listening\n" + output.get());
            }
            if (System.nanoTime() - deadline > 0)
            {
                fail("child relay not listening after " + timeout + "\n" + output.get());
            }
            Await.pause();
        }
    }

    int port()
    {
        return port;
    }

    long pid()
    {
        return process.pid();
    }

    boolean isAlive()
    {
        return process.isAlive();
    }

    /** {@code kill -HUP PID}: the relay reloads its configuration. */
    void sighup() throws IOException, InterruptedException
    {
        final Process kill = new ProcessBuilder("kill", "-HUP", Long.toString(pid())).redirectErrorStream(true).start();
        if (!kill.waitFor(10, TimeUnit.SECONDS) || kill.exitValue() != 0)
        {
            fail("kill -HUP " + pid() + " failed: " + new String(kill.getInputStream().readAllBytes(),
                StandardCharsets.UTF_8));
        }
    }

    /** SIGTERM: the relay drains and exits. */
    void sigterm()
    {
        process.destroy();
    }

    /** SIGTERM and wait for the exit; SIGKILL after 20 s. */
    void stop() throws InterruptedException
    {
        process.destroy();
        if (!process.waitFor(20, TimeUnit.SECONDS))
        {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** SIGKILL ({@code kill -9}), then waits for the process to be gone. */
    void kill9() throws InterruptedException
    {
        process.destroyForcibly();
        if (!process.waitFor(10, TimeUnit.SECONDS))
        {
            fail("child relay " + pid() + " still alive 10 s after SIGKILL");
        }
    }

    /** The exit code, waiting up to {@code timeout}; fails (the process is then killed by close) if it runs on. */
    int awaitExit(final Duration timeout) throws InterruptedException, IOException
    {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS))
        {
            fail("child relay " + pid() + " did not exit within " + timeout + "\n" + output());
        }
        return process.exitValue();
    }

    String stdout()
    {
        return read(stdout);
    }

    String stderr()
    {
        return read(stderr);
    }

    private static String read(final Path file)
    {
        try
        {
            return Files.readString(file, StandardCharsets.ISO_8859_1);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    String output()
    {
        return "--- child stdout:\n" + stdout() + "\n--- child stderr:\n" + stderr();
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
