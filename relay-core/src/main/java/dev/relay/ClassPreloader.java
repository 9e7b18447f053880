package dev.relay;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.Enumeration;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * Loads every class of the relay ({@code dev.relay.*}) before it starts serving, without initialising them.
 * <p>
 * Why: the JVM loads a class when it is first used, and loading may need a file descriptor (a class file in a
 * directory, a jar the class loader has to reopen). A path first taken while the process is out of descriptors
 * (EMFILE under a connection flood; a backlog's first checkpoint, a first DSN) then fails with
 * {@code NoClassDefFoundError}, and the JVM remembers a failed resolution for good: the stage that hit it dies.
 * Loaded at start, the classes need no file later. It also takes class loading off the first message's latency.
 * A few hundred classes: tens of milliseconds.
 * <p>
 * Control thread, once, at start.
 */
final class ClassPreloader
{
    private static final Logger LOG = LoggerFactory.getLogger(ClassPreloader.class);
    private static final String PREFIX = "dev/relay/";
    private static final String SUFFIX = ".class";

    private ClassPreloader()
    {
    }

    /** @return how many classes were loaded (0 when the code source could not be read: nothing is lost). */
    static int loadAll()
    {
        final CodeSource source = ClassPreloader.class.getProtectionDomain().getCodeSource();
        if (source == null)
        {
            return 0;
        }
        final ClassLoader loader = ClassPreloader.class.getClassLoader();
        int loaded = 0;
        try
        {
            final Path location = Path.of(source.getLocation().toURI());
            if (Files.isDirectory(location))
            {
                try (Stream<Path> files = Files.walk(location))
                {
                    for (final Path file : (Iterable<Path>)files::iterator)
                    {
                        final String name = location.relativize(file).toString().replace('\\', '/');
                        loaded += load(name, loader);
                    }
                }
            }
            else
            {
                try (JarFile jar = new JarFile(location.toFile()))
                {
                    for (final Enumeration<JarEntry> entries = jar.entries(); entries.hasMoreElements(); )
                    {
                        loaded += load(entries.nextElement().getName(), loader);
                    }
                }
            }
        }
        catch (final IOException | URISyntaxException | RuntimeException ex)
        {
            LOG.warn("could not preload the relay's classes ({}): they load when first used", ex.toString());
        }
        return loaded;
    }

    private static int load(final String entry, final ClassLoader loader)
    {
        if (!entry.startsWith(PREFIX) || !entry.endsWith(SUFFIX) || entry.endsWith("module-info.class"))
        {
            return 0;
        }
        final String className = entry.substring(0, entry.length() - SUFFIX.length()).replace('/', '.');
        try
        {
            Class.forName(className, false, loader);
            return 1;
        }
        catch (final ClassNotFoundException | LinkageError ex)
        {
            // a class whose optional dependency is missing (e.g. a provider) fails here and would later too
            LOG.debug("preloading {}: {}", className, ex.toString());
            return 0;
        }
    }
}
