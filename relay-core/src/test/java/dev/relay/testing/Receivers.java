package dev.relay.testing;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/** What the {@link FileReceiver} launchers share: ports, greetings, directories other users may enter. */
final class Receivers
{
    static final Duration START_TIMEOUT = Duration.ofSeconds(30);
    /** Tries at a free port: another process may take the one picked before the receiver binds it. */
    static final int BIND_ATTEMPTS = 5;

    private Receivers()
    {
    }

    static boolean isRoot()
    {
        return "root".equals(System.getProperty("user.name"));
    }

    /** A loopback port that was free a moment ago. */
    static int freePort() throws IOException
    {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress()))
        {
            return socket.getLocalPort();
        }
    }

    /** The first line the server on {@code port} sends, or null when nothing listens or it says nothing in 5 s. */
    static String greeting(final int port)
    {
        try (Socket socket = new Socket())
        {
            socket.connect(new InetSocketAddress("127.0.0.1", port), 1_000);
            socket.setSoTimeout(5_000);
            final InputStream in = socket.getInputStream();
            final StringBuilder line = new StringBuilder();
            int b;
            while ((b = in.read()) >= 0 && b != '\n')
            {
                line.append((char)b);
            }
            socket.getOutputStream().write("QUIT\r\n".getBytes(StandardCharsets.US_ASCII));
            return line.toString().trim();
        }
        catch (final IOException notYet)
        {
            return null;
        }
    }

    /**
     * Waits until the server on {@code port} greets with a line containing {@code expected}; false when
     * {@code process} exits first (it could not bind, say) or after {@link #START_TIMEOUT}.
     */
    static boolean awaitGreeting(final int port, final String expected, final ProcessHandle process)
        throws InterruptedException
    {
        final long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (System.nanoTime() - deadline < 0)
        {
            final String line = greeting(port);
            if (line != null && line.startsWith("220") && line.contains(expected))
            {
                return true;
            }
            if (process != null && !process.isAlive())
            {
                return false;
            }
            TimeUnit.MILLISECONDS.sleep(20);
        }
        return false;
    }

    /** Creates {@code dir} open to every user (a receiver that drops root privileges writes there). */
    static Path openDirectory(final Path dir) throws IOException
    {
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
        return dir;
    }

    /** Lets other users through {@code dir} (a JUnit @TempDir is private to its owner). */
    static void traversable(final Path dir) throws IOException
    {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /** Regular files in {@code dir} whose names do not end with {@code skipSuffix} (null: all), by name. */
    static List<Path> files(final Path dir, final String skipSuffix) throws IOException
    {
        final List<Path> files = new ArrayList<>();
        try (Stream<Path> listing = Files.list(dir))
        {
            listing.filter(p -> (skipSuffix == null || !p.getFileName().toString().endsWith(skipSuffix)) &&
                    Files.isRegularFile(p))
                .sorted()
                .forEach(files::add);
        }
        return files;
    }

    static String tail(final Path file)
    {
        try
        {
            final String text = Files.exists(file) ? Files.readString(file, StandardCharsets.ISO_8859_1) : "";
            return text.length() > 4000 ? text.substring(text.length() - 4000) : text;
        }
        catch (final IOException ex)
        {
            return ex.toString();
        }
    }
}
