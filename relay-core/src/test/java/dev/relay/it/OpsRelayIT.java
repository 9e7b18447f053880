package dev.relay.it;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@code ops/relay}, the launcher operators use, against the packaged {@code relay.jar} (its exit codes, its
 * {@code reload} against a running relay). An integration test
 * (failsafe, after {@code package}), so the jar exists and the script never has to build it mid-test. Its
 * rebuild rule (the jar is rebuilt when a file under relay-core/src or a pom.xml it is built from is newer) runs
 * in a copy of the checkout's shape in a temp dir, with a stand-in {@code mvn} that records its calls, so the real
 * jar is never rebuilt under a running build.
 */
@Timeout(120)
class OpsRelayIT
{
    @TempDir
    Path tmp;

    @Test
    void opsRelayWithImpossibleQueueDirExitsTwo() throws Exception
    {
        final Path root = repositoryRoot();
        final Path plainFile = tmp.resolve("not-a-directory");
        Files.writeString(plainFile, "a regular file\n");
        final Path spoolUnderFile = plainFile.resolve("spool");
        final Path file = ChildRelay.writeConfig(tmp, InProcessRelay.config(spoolUnderFile));
        final ExternalTool.Result result = ExternalTool.run(
            List.of("bash", root.resolve("ops/relay").toString(), "--config", file.toString()), tmp,
            Duration.ofSeconds(110));
        assertEquals(2, result.exitCode(), result::toString);
        assertTrue(result.stderr().contains("queue.dir") || result.stderr().contains(spoolUnderFile.toString()),
            result::toString);
        assertTrue(result.stderr().lines().filter(l -> l.startsWith("relay:") || l.contains("queue.dir")).count() > 0,
            result::toString);
    }

    @Test
    void opsRelayReloadPrintsWhatTheRunningRelayDidAndExitsTwoOnABadFile() throws Exception
    {
        final Path root = repositoryRoot();
        final Map<String, String> values = new LinkedHashMap<>(InProcessRelay.config(tmp.resolve("spool"),
            "metrics.listen", "127.0.0.1:" + freePort()));
        final Path file = tmp.resolve("relay.properties");
        writeProperties(file, values, "");
        final dev.relay.Relay relay = dev.relay.Relay.start(dev.relay.config.RelayConfig.load(file,
            new java.util.Properties()));
        final List<String> reload = List.of("bash", root.resolve("ops/relay").toString(), "--config", file.toString(),
            "reload");
        try
        {
            relay.configSource(() -> dev.relay.config.RelayConfig.load(file, new java.util.Properties()));
            values.put("relay.domains", "ours.test");
            writeProperties(file, values, "");
            final ExternalTool.Result good = ExternalTool.run(reload, tmp, Duration.ofSeconds(110));
            assertEquals(0, good.exitCode(), good::toString);
            assertTrue(good.stdout().contains("applied: relay.domains=ours.test"), good::toString);

            writeProperties(file, values, "smtp.max_errors=abc\nsmtp.bogus=1\n");
            final ExternalTool.Result bad = ExternalTool.run(reload, tmp, Duration.ofSeconds(110));
            assertEquals(2, bad.exitCode(), bad::toString);
            assertTrue(bad.stderr().contains("smtp.max_errors: \"abc\"") &&
                bad.stderr().contains("smtp.bogus: unknown key"), bad::toString);
        }
        finally
        {
            relay.close();
        }
        final ExternalTool.Result nobody = ExternalTool.run(reload, tmp, Duration.ofSeconds(110));
        assertEquals(1, nobody.exitCode(), nobody::toString);
        assertTrue(nobody.stderr().contains("no running relay answers"), nobody::toString);
    }

    private static void writeProperties(final Path file, final Map<String, String> values, final String more)
        throws java.io.IOException
    {
        final StringBuilder text = new StringBuilder();
        values.forEach((key, value) -> text.append(key).append('=').append(value).append('\n'));
        Files.writeString(file, text + more, StandardCharsets.UTF_8);
    }

    private static int freePort() throws java.io.IOException
    {
        try (java.net.ServerSocket socket =
                 new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress()))
        {
            return socket.getLocalPort();
        }
    }

    @Test
    void opsRelayRebuildsTheJarWhenSourcesOrPomsAreNewer() throws Exception
    {
        final Path checkout = fakeCheckout();
        final Path jar = checkout.resolve("relay-core/target/relay.jar");
        final Path source = checkout.resolve("relay-core/src/main/java/dev/relay/Changed.java");
        final Path mvnLog = tmp.resolve("mvn.log");
        final Map<String, String> env = launcherEnvironment(fakeMaven(mvnLog), mvnLog);

        // up to date: no build, the relay runs
        runCheckConfig(checkout, env, 0);
        assertEquals(0, mvnCalls(mvnLog), "no build while the jar is newer than every source");

        // a source newer than the jar (what a git pull leaves): one build in the checkout, then the relay runs
        changed(source);
        final ExternalTool.Result rebuilt = runCheckConfig(checkout, env, 1);
        assertTrue(rebuilt.stderr().contains(source + " is newer than " + jar), rebuilt::toString);
        final String call = Files.readAllLines(mvnLog).get(0);
        assertTrue(call.startsWith(checkout + ": ") && call.contains("-pl relay-core") && call.endsWith(" package"),
            call);
        assertTrue(Files.getLastModifiedTime(jar).compareTo(Files.getLastModifiedTime(source)) >= 0,
            "after a build the jar counts as built from these sources (Maven leaves an unchanged jar's time)");
        runCheckConfig(checkout, env, 1);  // and the next start does not build again

        // either pom.xml the jar is built from
        rewind(checkout);
        changed(checkout.resolve("pom.xml"));
        runCheckConfig(checkout, env, 2);
        rewind(checkout);
        changed(checkout.resolve("relay-core/pom.xml"));
        runCheckConfig(checkout, env, 3);
        // a test resource is under relay-core/src too
        rewind(checkout);
        changed(checkout.resolve("relay-core/src/test/resources/data.txt"));
        runCheckConfig(checkout, env, 4);

        // no jar at all: built first
        Files.delete(jar);
        runCheckConfig(checkout, env, 5);
        assertTrue(Files.isRegularFile(jar));
    }

    @Test
    void opsRelayWithStaleJarAndNoMavenSaysSoAndExitsOne() throws Exception
    {
        final Path checkout = fakeCheckout();
        final Path jar = checkout.resolve("relay-core/target/relay.jar");
        changed(checkout.resolve("relay-core/src/main/java/dev/relay/Changed.java"));
        final Path tools = Files.createDirectories(tmp.resolve("tools-without-mvn"));
        for (final String tool : List.of("bash", "find", "touch", "readlink"))
        {
            Files.copy(ExternalTool.require(tool), tools.resolve(tool), StandardCopyOption.COPY_ATTRIBUTES);
        }
        final Map<String, String> env = new LinkedHashMap<>();
        env.put("PATH", tools + File.pathSeparator + Path.of(System.getProperty("java.home"), "bin"));
        final ExternalTool.Result result = launch(checkout, env, "check-config");
        assertEquals(1, result.exitCode(), result::toString);
        assertTrue(result.stderr().contains("is newer than " + jar) && result.stderr().contains("mvn is not on PATH"),
            result::toString);
        assertTrue(result.stdout().isEmpty(), "the old jar did not run: " + result);
    }

    /**
     * ops/ (the real launcher and files) with pom.xml, relay-core/pom.xml, sources and a copy of the built jar, the
     * jar built a minute ago, the sources a minute older.
     */
    private Path fakeCheckout() throws Exception
    {
        final Path root = repositoryRoot();
        final Path checkout = Files.createDirectories(tmp.resolve("checkout"));
        final Path ops = Files.createDirectories(checkout.resolve("ops"));
        for (final String name : List.of("relay", "relay.properties", "jvm.options", "logback.xml"))
        {
            Files.copy(root.resolve("ops").resolve(name), ops.resolve(name), StandardCopyOption.COPY_ATTRIBUTES);
        }
        final Path jar = Files.createDirectories(checkout.resolve("relay-core/target")).resolve("relay.jar");
        Files.copy(root.resolve("relay-core/target/relay.jar"), jar);
        Files.writeString(checkout.resolve("pom.xml"), "<project/>\n");
        Files.writeString(checkout.resolve("relay-core/pom.xml"), "<project/>\n");
        final Path main = Files.createDirectories(checkout.resolve("relay-core/src/main/java/dev/relay"));
        Files.writeString(main.resolve("Changed.java"), "class Changed {}\n");
        Files.writeString(main.resolve("Unchanged.java"), "class Unchanged {}\n");
        final Path resources = Files.createDirectories(checkout.resolve("relay-core/src/test/resources"));
        Files.writeString(resources.resolve("data.txt"), "data\n");
        rewind(checkout);
        return checkout;
    }

    /**
     * A stand-in for Maven: appends "CWD: ARGS" to {@code log}; creates the jar (a copy of the real one) only when it
     * is missing, and otherwise leaves it untouched, as Maven does with a jar whose content did not change.
     */
    private Path fakeMaven(final Path log) throws Exception
    {
        final Path bin = Files.createDirectories(tmp.resolve("fake-maven"));
        final Path mvn = bin.resolve("mvn");
        Files.writeString(mvn, String.join("\n",
            "#!/bin/bash",
            "echo \"$PWD: $*\" >> \"$MVN_LOG\"",
            "[ -f relay-core/target/relay.jar ] || cp \"$REAL_JAR\" relay-core/target/relay.jar",
            ""), StandardCharsets.UTF_8);
        Files.setPosixFilePermissions(mvn, PosixFilePermissions.fromString("rwxr-xr-x"));
        return bin;
    }

    private static Map<String, String> launcherEnvironment(final Path fakeMavenDir, final Path mvnLog)
    {
        final Map<String, String> env = new LinkedHashMap<>();
        env.put("PATH", fakeMavenDir + File.pathSeparator + Path.of(System.getProperty("java.home"), "bin") +
            File.pathSeparator + "/usr/bin:/bin");
        env.put("MVN_LOG", mvnLog.toString());
        env.put("REAL_JAR", repositoryRoot().resolve("relay-core/target/relay.jar").toString());
        return env;
    }

    /** ops/relay check-config in {@code checkout}: exit 0, and Maven called {@code expectedMvnCalls} times so far. */
    private ExternalTool.Result runCheckConfig(final Path checkout, final Map<String, String> env,
        final int expectedMvnCalls) throws Exception
    {
        final ExternalTool.Result result = launch(checkout, env, "check-config");
        assertEquals(0, result.exitCode(), result::toString);
        assertTrue(result.stdout().contains("smtp.listen="), result::toString);
        assertEquals(expectedMvnCalls, mvnCalls(Path.of(env.get("MVN_LOG"))), result::toString);
        return result;
    }

    private ExternalTool.Result launch(final Path checkout, final Map<String, String> env, final String... args)
        throws Exception
    {
        final Path out = Files.createTempFile(tmp, "launch", ".out");
        final Path err = Files.createTempFile(tmp, "launch", ".err");
        final List<String> command = new java.util.ArrayList<>(List.of(checkout.resolve("ops/relay").toString()));
        command.addAll(List.of(args));
        final ProcessBuilder builder = new ProcessBuilder(command)
            .directory(tmp.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(out.toFile())
            .redirectError(err.toFile());
        builder.environment().clear();
        builder.environment().putAll(env);
        final Process process = builder.start();
        try
        {
            if (!process.waitFor(60, TimeUnit.SECONDS))
            {
                fail("ops/relay " + List.of(args) + " did not finish within 60 s\n" + Files.readString(err));
            }
            return new ExternalTool.Result(process.exitValue(), Files.readString(out), Files.readString(err));
        }
        finally
        {
            ExternalTool.stop(process);
        }
    }

    private static int mvnCalls(final Path log) throws Exception
    {
        return Files.exists(log) ? Files.readAllLines(log).size() : 0;
    }

    /** The jar built a minute ago, every source two minutes old (in the fake checkout's shape). */
    private static void rewind(final Path checkout) throws Exception
    {
        final FileTime twoMinutesAgo = FileTime.from(Instant.now().minusSeconds(120));
        for (final String file : List.of("pom.xml", "relay-core/pom.xml", "relay-core/src/main/java/dev/relay/Changed.java",
            "relay-core/src/main/java/dev/relay/Unchanged.java", "relay-core/src/test/resources/data.txt"))
        {
            Files.setLastModifiedTime(checkout.resolve(file), twoMinutesAgo);
        }
        Files.setLastModifiedTime(checkout.resolve("relay-core/target/relay.jar"),
            FileTime.from(Instant.now().minusSeconds(60)));
    }

    /** {@code file} changed after the last build (what a {@code git pull} since leaves): 30 s ago. */
    private static void changed(final Path file) throws Exception
    {
        Files.setLastModifiedTime(file, FileTime.from(Instant.now().minusSeconds(30)));
    }

    private static Path repositoryRoot()
    {
        Path dir = Path.of(System.getProperty("basedir", System.getProperty("user.dir"))).toAbsolutePath();
        while (dir != null)
        {
            if (Files.isRegularFile(dir.resolve("ops/relay")) && Files.isRegularFile(dir.resolve("ops/jvm.options")))
            {
                return dir;
            }
            dir = dir.getParent();
        }
        return fail("ops/relay not found above " + System.getProperty("user.dir"));
    }
}
