package dev.relay.it;

import dev.relay.config.RelayConfig;
import dev.relay.testing.Await;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The release tarball ({@code relay-core/target/relay-<version>.tar.gz}, built by {@code package}) as an operator
 * uses it: unpacked in a temp directory, run as {@code bin/relay --config conf/relay.properties} with a PATH that
 * holds bash and a Java runtime without the compiler module (a jlink image of the modules eclipse-temurin:17-jre
 * ships), no Maven, and the working directory outside the checkout. It relays a message, answers every subcommand
 * the launcher offers, passes the container image's health check, and drains on SIGTERM (exit 0). The Dockerfile
 * it carries is checked against its own layout and configuration (no Docker engine here to build it).
 */
@Timeout(180)
class ReleaseTarballIT
{
    /** The modules of eclipse-temurin:17-jre's runtime: java.se and the JDK's service modules, no tools. */
    private static final List<String> JRE_MODULES = List.of("java.se", "jdk.accessibility", "jdk.charsets",
        "jdk.crypto.cryptoki", "jdk.crypto.ec", "jdk.dynalink", "jdk.httpserver", "jdk.jdwp.agent", "jdk.jfr",
        "jdk.jsobject", "jdk.localedata", "jdk.management", "jdk.management.agent", "jdk.management.jfr",
        "jdk.naming.dns", "jdk.naming.rmi", "jdk.net", "jdk.nio.mapmode", "jdk.sctp", "jdk.security.auth",
        "jdk.security.jgss", "jdk.unsupported", "jdk.xml.dom", "jdk.zipfs");
    private static final Pattern SED_SET = Pattern.compile("s\\|\\^([a-z_.]+)=\\.\\*\\|\\1=([^|]*)\\|");

    @TempDir
    static Path tmp;
    private static Path root;
    private static Path release;
    private static Path javaHome;
    private static Path shellDir;
    private final List<Process> started = new ArrayList<>();

    @BeforeAll
    static void unpack() throws Exception
    {
        root = Deployment.repositoryRoot();
        final Path target = root.resolve("relay-core/target");
        final List<Path> tarballs;
        try (Stream<Path> files = Files.list(target))
        {
            tarballs = files.filter(p -> p.getFileName().toString().matches("relay-.*\\.tar\\.gz")).collect(
                Collectors.toList());
        }
        assertEquals(1, tarballs.size(), () -> "one release tarball in " + target + ": " + tarballs);
        final Path opt = Files.createDirectories(tmp.resolve("opt"));
        final ExternalTool.Result untar = ExternalTool.run(
            List.of("tar", "xzf", tarballs.get(0).toString(), "-C", opt.toString()), tmp, Duration.ofSeconds(60));
        assertEquals(0, untar.exitCode(), untar::toString);
        try (Stream<Path> dirs = Files.list(opt))
        {
            final List<Path> top = dirs.collect(Collectors.toList());
            assertEquals(1, top.size(), () -> "one top directory in the tarball: " + top);
            release = top.get(0);
        }
        assertEquals(tarballs.get(0).getFileName().toString().replace(".tar.gz", ""),
            release.getFileName().toString());
        javaHome = jre(target.resolve("it-jre"));
        shellDir = Files.createDirectories(tmp.resolve("path"));
        Files.copy(Path.of("/bin/bash"), shellDir.resolve("bash"), StandardCopyOption.COPY_ATTRIBUTES);
    }

    /**
     * A runtime without jdk.compiler, as eclipse-temurin:17-jre is: made once with jlink from this JDK's jmods and
     * kept under target/. Where this JDK cannot link one (no jmods), its own home, with a note.
     */
    private static Path jre(final Path dir) throws Exception
    {
        final Path jdk = Path.of(System.getProperty("java.home"));
        if (Files.isExecutable(dir.resolve("bin/java")) && Files.isRegularFile(dir.resolve("release")))
        {
            return dir;
        }
        final Path jlink = jdk.resolve("bin/jlink");
        if (!Files.isExecutable(jlink) || !Files.isDirectory(jdk.resolve("jmods")))
        {
            System.err.println("ReleaseTarballIT: no jlink/jmods in " + jdk + ": running the release on the JDK");
            return jdk;
        }
        final Set<String> available = ModuleFinder.ofSystem().findAll().stream()
            .map(ModuleReference::descriptor).map(d -> d.name()).collect(Collectors.toSet());
        final String modules = JRE_MODULES.stream().filter(available::contains).collect(Collectors.joining(","));
        final ExternalTool.Result linked = ExternalTool.run(List.of(jlink.toString(), "--add-modules", modules,
            "--no-header-files", "--no-man-pages", "--strip-debug", "--output", dir.toString()), tmp,
            Duration.ofSeconds(120));
        assertEquals(0, linked.exitCode(), linked::toString);
        return dir;
    }

    @Test
    void layoutHoldsLauncherJarsAndConfiguration() throws Exception
    {
        final Path launcher = release.resolve("bin/relay");
        assertTrue(Files.isExecutable(launcher), "bin/relay is executable");
        assertEquals(Files.readString(root.resolve("ops/relay")), Files.readString(launcher), "bin/relay is ops/relay");
        for (final String name : List.of("relay.properties", "jvm.options", "logback.xml"))
        {
            assertEquals(Files.readString(root.resolve("ops").resolve(name)),
                Files.readString(release.resolve("conf").resolve(name)), "conf/" + name + " is ops/" + name);
        }
        final List<String> jars;
        try (Stream<Path> files = Files.list(release.resolve("lib")))
        {
            jars = files.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
        }
        assertTrue(jars.stream().allMatch(n -> n.endsWith(".jar")), jars::toString);
        assertTrue(jars.stream().anyMatch(n -> n.startsWith("relay-core-")), jars::toString);
        assertTrue(jars.stream().anyMatch(n -> n.startsWith("chronicle-queue-")), jars::toString);
        assertFalse(jars.contains("relay.jar"), "lib/ holds the published jars, not the shaded one: " + jars);
        for (final String dir : List.of("systemd", "k8s", "monitoring"))
        {
            assertEquals(listing(root.resolve("ops").resolve(dir)), listing(release.resolve(dir)), dir + "/");
        }
        assertEquals(Files.readString(root.resolve("ops/Dockerfile")), Files.readString(release.resolve("Dockerfile")));
    }

    @Test
    void runsWithOnlyAJreAndAnswersEverySubcommand() throws Exception
    {
        if (javaHome.startsWith(root))
        {
            final List<String> modules = Files.readAllLines(javaHome.resolve("release")).stream()
                .filter(l -> l.startsWith("MODULES=")).collect(Collectors.toList());
            assertFalse(modules.toString().contains("jdk.compiler"), "a JRE: " + modules);
            assertFalse(Files.exists(javaHome.resolve("bin/javac")), "a JRE: no javac");
        }
        try (TestSmtpSink sink = TestSmtpSink.start())
        {
            final int metricsPort = freePort();
            final Map<String, String> env = environment(String.join(" ",
                "-Dsmtp.listen=127.0.0.1:0",
                "-Dsmtp.hostname=relay.test",
                "-Dsmtp.io_threads=1",
                "-Dmetrics.listen=127.0.0.1:" + metricsPort,
                "-Dqueue.min_free_bytes=0",
                "-Ddelivery.routes=sink.test=[127.0.0.1]:" + sink.port() + ",*=[127.0.0.1]:1",
                "-Ddelivery.retry.schedule=1h",
                "-Xms32m", "-Xmx256m"));
            for (final String dir : env.get("PATH").split(File.pathSeparator))
            {
                assertFalse(Files.exists(Path.of(dir, "mvn")), "no mvn on PATH " + env.get("PATH"));
            }
            assertFalse(release.startsWith(root), "cwd outside the checkout");

            final Path out = tmp.resolve("relay.out");
            final Path err = tmp.resolve("relay.err");
            final Process relay = start(env, out, err, "--config", "conf/relay.properties");
            final int smtpPort = ChildRelay.awaitPort(relay, () -> read(out), () -> output(out, err),
                Duration.ofSeconds(60));

            final String delivered;
            final String waiting;
            try (SmtpTestClient client = SmtpTestClient.connectEhlo(smtpPort))
            {
                delivered = client.sendMessage("ops@example.test", List.of("rcpt@sink.test"),
                    "Subject: from the release\r\n\r\nhello\r\n".getBytes(StandardCharsets.US_ASCII));
                waiting = client.sendMessage("ops@example.test", List.of("later@wait.test"),
                    "Subject: waits\r\n\r\nretry me\r\n".getBytes(StandardCharsets.US_ASCII));
                client.command("QUIT").expect(221);
            }
            final TestSmtpSink.Received received = sink.awaitMessages(1, Duration.ofSeconds(30)).get(0);
            assertEquals(List.of("rcpt@sink.test"), received.recipients());
            assertTrue(received.text().contains("hello"), received::text);
            final String deferredLine = waiting + ": to=<later@wait.test>";
            Await.until(() -> deferrals(read(out), deferredLine) >= 1, Duration.ofSeconds(30),
                () -> "a deferral of " + waiting + "\n" + output(out, err));
            Await.until(() -> read(out).contains(delivered + ": removed"), Duration.ofSeconds(30),
                () -> delivered + " removed\n" + output(out, err));

            final ExternalTool.Result list = run(env, "--config", "conf/relay.properties", "spool", "list");
            assertEquals(0, list.exitCode(), list::toString);
            assertTrue(list.stdout().contains(waiting) && list.stdout().contains("later@wait.test") &&
                list.stdout().contains("deferred until"), list::toString);
            assertFalse(list.stdout().contains("rcpt@sink.test"), list::toString);
            assertTrue(list.stdout().contains("-- 1 message, "), list::toString);

            final ExternalTool.Result show = run(env, "--config", "conf/relay.properties", "spool", "show", waiting);
            assertEquals(0, show.exitCode(), show::toString);
            assertTrue(show.stdout().contains("<later@wait.test>") && show.stdout().contains("retry me"),
                show::toString);

            final ExternalTool.Result flush = run(env, "--config", "conf/relay.properties", "spool", "flush");
            assertEquals(0, flush.exitCode(), flush::toString);
            assertTrue(flush.stdout().contains("deferred mail flushed"), flush::toString);
            // flushed: the relay tries the waiting message again at once instead of in an hour
            Await.until(() -> deferrals(read(out), deferredLine) >= 2, Duration.ofSeconds(30),
                () -> "a second attempt of " + waiting + " after spool flush\n" + output(out, err));

            // queue surgery through the tarball's launcher and the admin endpoint
            final ExternalTool.Result hold = run(env, "--config", "conf/relay.properties", "spool", "hold", waiting);
            assertEquals(0, hold.exitCode(), hold::toString);
            assertTrue(hold.stdout().contains("Placed on hold: 1 message"), hold::toString);
            final ExternalTool.Result release = run(env, "--config", "conf/relay.properties", "spool", "release",
                "--all");
            assertEquals(0, release.exitCode(), release::toString);
            assertTrue(release.stdout().contains("Released from hold: 1 message"), release::toString);
            Await.until(() -> read(out).contains(waiting + ": released from hold ("), Duration.ofSeconds(30),
                () -> "the release logged\n" + output(out, err));

            final ExternalTool.Result check = run(env, "--config", "conf/relay.properties", "check-config");
            assertEquals(0, check.exitCode(), check::toString);
            assertTrue(check.stdout().contains("smtp.listen=127.0.0.1:0\n") &&
                check.stdout().contains("queue.dir=data/spool\n"), check::toString);

            final ExternalTool.Result help = run(env, "--help");
            assertEquals(0, help.exitCode(), help::toString);
            assertTrue(help.stdout().startsWith("usage: relay"), help::toString);

            // the container image's health check, as Docker would run it, against this relay's metrics port
            final ExternalTool.Result health = runHealthCheck(env, metricsPort);
            assertEquals(0, health.exitCode(), health::toString);

            relay.destroy();
            assertTrue(relay.waitFor(60, TimeUnit.SECONDS), () -> "no exit 60 s after SIGTERM\n" + output(out, err));
            assertEquals(0, relay.exitValue(), () -> output(out, err));
            assertTrue(read(out).contains("relay stopped"), () -> output(out, err));
            final String stderr = read(err);
            assertFalse(stderr.contains("WARNING") || stderr.contains("Exception"), stderr);
        }
        finally
        {
            for (final Process process : started)
            {
                ExternalTool.stop(process);
            }
        }
    }

    @Test
    void dockerfileBuildsFromTheReleaseLayout() throws Exception
    {
        final List<String[]> instructions = dockerInstructions(release.resolve("Dockerfile"));
        assertEquals("eclipse-temurin:17-jre", single(instructions, "FROM"));

        // every COPY source is in the tarball, the build context
        final Map<String, String> copied = new LinkedHashMap<>();
        for (final String[] copy : all(instructions, "COPY"))
        {
            final String[] words = copy[1].trim().split("\\s+");
            assertTrue(words.length >= 2 && !words[0].startsWith("--"), () -> "COPY " + copy[1]);
            for (int i = 0; i < words.length - 1; i++)
            {
                final Path source = release.resolve(words[i]);
                assertTrue(Files.exists(source), "COPY source " + words[i] + " is not in the release: " + source);
                copied.put(words[i], words[words.length - 1]);
            }
        }
        assertEquals("/opt/relay/bin/", copied.get("bin/"));
        assertEquals("/opt/relay/lib/", copied.get("lib/"));
        assertEquals("/opt/relay/conf/", copied.get("conf/"));

        // not root: a numeric uid (Kubernetes' runAsNonRoot can check only that), created by a RUN
        final String user = single(instructions, "USER");
        final String uid = user.split(":")[0];
        assertTrue(uid.matches("[0-9]+") && Integer.parseInt(uid) > 0, "USER " + user);
        final String runs = all(instructions, "RUN").stream().map(r -> r[1]).collect(Collectors.joining("\n"));
        assertTrue(runs.contains("--uid " + uid), runs);

        // the image's configuration: the shipped file with the RUN's sed edits applied, as the relay reads it
        final RelayConfig image = Deployment.relayConfig(imageProperties(runs), "the image's relay.properties");
        assertEquals(Set.of("/opt/relay/bin/relay"), Set.of(jsonArray(single(instructions, "ENTRYPOINT"))));
        final List<String> cmd = Arrays.asList(jsonArray(single(instructions, "CMD")));
        assertEquals(List.of("--config", "/opt/relay/conf/relay.properties"), cmd);
        final TreeSet<Integer> exposed = Arrays.stream(single(instructions, "EXPOSE").trim().split("\\s+"))
            .map(Integer::valueOf).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(Deployment.listenPorts(image), exposed, "EXPOSE = the ports of smtp.listen and metrics.listen");
        assertTrue(image.metrics().listen().getAddress().isAnyLocalAddress(), "metrics reachable from outside");
        assertEquals(image.spool().dir().toString(), single(instructions, "VOLUME").trim(), "VOLUME = queue.dir");
        assertTrue(image.spool().dir().isAbsolute());

        final String healthcheck = single(instructions, "HEALTHCHECK");
        assertTrue(healthcheck.contains("/dev/tcp/127.0.0.1/" + image.metrics().listen().getPort()) &&
            healthcheck.contains("GET /health "), healthcheck);
    }

    /** conf/relay.properties with the Dockerfile's {@code sed -e 's|^KEY=.*|KEY=VALUE|'} edits applied. */
    private static String imageProperties(final String runs) throws IOException
    {
        String text = Files.readString(release.resolve("conf/relay.properties"));
        final Matcher sed = SED_SET.matcher(runs);
        int edits = 0;
        while (sed.find())
        {
            final Pattern line = Pattern.compile("^" + Pattern.quote(sed.group(1)) + "=.*$", Pattern.MULTILINE);
            final Matcher m = line.matcher(text);
            assertTrue(m.find(), "the Dockerfile sets " + sed.group(1) + " but conf/relay.properties has no such line");
            text = m.replaceAll(Matcher.quoteReplacement(sed.group(1) + "=" + sed.group(2)));
            edits++;
        }
        assertTrue(edits >= 2, "the Dockerfile sets metrics.listen and queue.dir: " + runs);
        return text;
    }

    /** The Dockerfile's instructions as {keyword, arguments}, continuation lines joined, comments left out. */
    static List<String[]> dockerInstructions(final Path dockerfile) throws IOException
    {
        final List<String[]> instructions = new ArrayList<>();
        final StringBuilder current = new StringBuilder();
        for (final String raw : Files.readAllLines(dockerfile))
        {
            final String line = raw.strip();
            if (line.startsWith("#") || (line.isEmpty() && current.length() == 0))
            {
                continue;
            }
            if (line.endsWith("\\"))
            {
                current.append(line, 0, line.length() - 1).append(' ');
                continue;
            }
            current.append(line);
            final String text = current.toString().strip();
            current.setLength(0);
            if (!text.isEmpty())
            {
                final int space = text.indexOf(' ');
                instructions.add(new String[] {text.substring(0, space).toUpperCase(), text.substring(space + 1)});
            }
        }
        return instructions;
    }

    private static List<String[]> all(final List<String[]> instructions, final String keyword)
    {
        return instructions.stream().filter(i -> i[0].equals(keyword)).collect(Collectors.toList());
    }

    private static String single(final List<String[]> instructions, final String keyword)
    {
        final List<String[]> found = all(instructions, keyword);
        assertEquals(1, found.size(), "one " + keyword + " instruction");
        return found.get(0)[1];
    }

    /** {@code ["a", "b"]} (the exec form) to its strings; escapes are not needed by ours. */
    private static String[] jsonArray(final String text)
    {
        final String trimmed = text.trim();
        assertTrue(trimmed.startsWith("[") && trimmed.endsWith("]"), "exec form: " + text);
        final List<String> items = new ArrayList<>();
        final Matcher m = Pattern.compile("\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(trimmed);
        while (m.find())
        {
            items.add(m.group(1));
        }
        return items.toArray(new String[0]);
    }

    /** The HEALTHCHECK's command (exec form, run by bash here as in the image) against {@code port}. */
    private ExternalTool.Result runHealthCheck(final Map<String, String> env, final int port) throws Exception
    {
        final String healthcheck = single(dockerInstructions(release.resolve("Dockerfile")), "HEALTHCHECK");
        final String[] command = jsonArray(healthcheck.substring(healthcheck.indexOf("CMD") + 3));
        final List<String> args = new ArrayList<>();
        for (final String arg : command)
        {
            // JSON escapes in the exec form: \\ is one backslash
            args.add(arg.replace("\\\\", "\\").replace("/dev/tcp/127.0.0.1/9025", "/dev/tcp/127.0.0.1/" + port));
        }
        return exec(env, args);
    }

    private static int deferrals(final String log, final String line)
    {
        int count = 0;
        for (final String l : log.split("\n"))
        {
            if (l.contains(line) && l.contains("status=deferred"))
            {
                count++;
            }
        }
        return count;
    }

    /** The environment an operator's shell would give bin/relay: bash and the runtime on PATH, nothing else. */
    private static Map<String, String> environment(final String relayJavaOpts)
    {
        final Map<String, String> env = new LinkedHashMap<>();
        env.put("PATH", shellDir + File.pathSeparator + javaHome.resolve("bin"));
        env.put("HOME", tmp.toString());
        env.put("RELAY_JAVA_OPTS", relayJavaOpts);
        return env;
    }

    private Process start(final Map<String, String> env, final Path out, final Path err, final String... args)
        throws IOException
    {
        final List<String> command = new ArrayList<>();
        command.add(release.resolve("bin/relay").toString());
        command.addAll(List.of(args));
        final ProcessBuilder builder = new ProcessBuilder(command)
            .directory(release.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(out.toFile())
            .redirectError(err.toFile());
        builder.environment().clear();
        builder.environment().putAll(env);
        final Process process = builder.start();
        started.add(process);
        return process;
    }

    /** {@code bin/relay ARGS} to its end, in the release directory. */
    private ExternalTool.Result run(final Map<String, String> env, final String... args) throws Exception
    {
        final List<String> command = new ArrayList<>();
        command.add(release.resolve("bin/relay").toString());
        command.addAll(List.of(args));
        final ExternalTool.Result result = exec(env, command);
        // e.g. "WARNING: Unknown module: jdk.compiler": the launcher leaves out options the runtime cannot take
        assertFalse(result.stderr().contains("WARNING"), result::toString);
        return result;
    }

    private ExternalTool.Result exec(final Map<String, String> env, final List<String> command) throws Exception
    {
        final Path out = tmp.resolve("run.out");
        final Path err = tmp.resolve("run.err");
        final ProcessBuilder builder = new ProcessBuilder(command)
            .directory(release.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(out.toFile())
            .redirectError(err.toFile());
        builder.environment().clear();
        builder.environment().putAll(env);
        final Process run = builder.start();
        started.add(run);
        if (!run.waitFor(60, TimeUnit.SECONDS))
        {
            fail("timed out: " + command + "\n" + output(out, err));
        }
        return new ExternalTool.Result(run.exitValue(), read(out), read(err));
    }

    private static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress()))
        {
            return socket.getLocalPort();
        }
    }

    private static List<String> listing(final Path dir) throws IOException
    {
        try (Stream<Path> files = Files.list(dir))
        {
            return files.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
        }
    }

    private static String read(final Path file)
    {
        try
        {
            return Files.readString(file, StandardCharsets.ISO_8859_1);
        }
        catch (final IOException ex)
        {
            return "(cannot read " + file + ": " + ex + ")";
        }
    }

    private static String output(final Path out, final Path err)
    {
        return "--- stdout:\n" + read(out) + "\n--- stderr:\n" + read(err);
    }
}
