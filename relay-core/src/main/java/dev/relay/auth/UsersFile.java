package dev.relay.auth;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The users file of {@code smtp.auth.users}, in Dovecot's passwd-file shape: one {@code user:{SCHEME}hash} per
 * line (further {@code :fields} are ignored), {@code #} comments and blank lines skipped. Read in full and checked at
 * start (a bad line is a configuration error naming the line); re-read when it changes ({@link #reloadIfChanged}),
 * keeping the users in force if the new version does not load. Lookups are thread safe (an immutable map behind a
 * volatile field).
 */
public final class UsersFile
{
    private static final Logger LOG = LoggerFactory.getLogger(UsersFile.class);

    private final Path file;
    private volatile Map<String, String> users;
    private Object stamp;

    private UsersFile(final Path file, final Map<String, String> users, final Object stamp)
    {
        this.file = file;
        this.users = users;
        this.stamp = stamp;
    }

    /**
     * @throws IOException when the file cannot be read or a line is malformed (the message names the line).
     */
    public static UsersFile load(final Path file) throws IOException
    {
        final Object stamp = stamp(file);
        final UsersFile usersFile = new UsersFile(file, parse(file), stamp);
        LOG.info("AUTH users: {} from {}", usersFile.users.size(), file);
        return usersFile;
    }

    /**
     * Whether the file loads, as {@link #load} would find it (a reload checks it before it changes anything).
     *
     * @throws IOException when it cannot be read or a line is malformed: one line per problem, each naming its line.
     */
    public static void check(final Path file) throws IOException
    {
        parse(file);
    }

    static Map<String, String> parse(final Path file) throws IOException
    {
        final List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        final Map<String, String> users = new HashMap<>();
        final List<String> problems = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++)
        {
            final String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#"))
            {
                continue;
            }
            final String where = file + ":" + (i + 1) + ": ";
            final int colon = line.indexOf(':');
            if (colon <= 0)
            {
                problems.add(where + "not user:{SCHEME}hash");
                continue;
            }
            final String user = line.substring(0, colon);
            final int end = line.indexOf(':', colon + 1);
            final String stored = end < 0 ? line.substring(colon + 1) : line.substring(colon + 1, end);
            final String scheme;
            try
            {
                scheme = PasswordHashes.checkFormat(stored);
            }
            catch (final IllegalArgumentException ex)
            {
                problems.add(where + user + ": " + ex.getMessage());
                continue;
            }
            if (users.put(user, stored) != null)
            {
                problems.add(where + user + ": listed twice");
            }
            if (PasswordHashes.PLAIN.equals(scheme))
            {
                LOG.warn("{}user {} has a {{PLAIN}} password: anyone who reads the file has it; write a hash " +
                    "with ops/relay passwd {}", where, user, user);
            }
        }
        if (!problems.isEmpty())
        {
            throw new IOException(String.join("\n", problems));
        }
        return Map.copyOf(users);
    }

    private static Object stamp(final Path file) throws IOException
    {
        final BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
        return Arrays.asList(attributes.lastModifiedTime(), attributes.size(), attributes.fileKey());
    }

    /** The stored {@code {SCHEME}hash} of {@code user}, or null. Any thread. */
    public String stored(final String user)
    {
        return users.get(user);
    }

    public int size()
    {
        return users.size();
    }

    /** Re-reads the file if it changed; a version that does not load is logged and the users in force stay. */
    public synchronized boolean reloadIfChanged()
    {
        final Object now;
        try
        {
            now = stamp(file);
        }
        catch (final IOException ex)
        {
            return false;
        }
        if (Objects.equals(now, stamp))
        {
            return false;
        }
        stamp = now;
        try
        {
            users = parse(file);
            LOG.info("AUTH users reloaded: {} from {}", users.size(), file);
            return true;
        }
        catch (final IOException | RuntimeException ex)
        {
            LOG.warn("AUTH users file changed but does not load, keeping the {} users in force: {}", users.size(),
                ex.getMessage());
            return false;
        }
    }
}
