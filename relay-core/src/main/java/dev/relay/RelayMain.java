package dev.relay;

import dev.relay.config.ConfigException;
import dev.relay.config.ConfigKey;
import dev.relay.config.RelayConfig;
import dev.relay.spool.SpoolCommand;
import dev.relay.transfer.TransferCommand;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Command line entry point.
 * <pre>
 * relay [--config FILE]                  run the relay in the foreground (SIGTERM drains and exits 0)
 * relay [--config FILE] spool list|show ID|shape [--sender]|flush
 * relay [--config FILE] spool hold|release|delete|requeue ID...|-|--all|[--sender ADDR] [--recipient-domain DOMAIN]
 *                                        queue surgery on the running relay (AdminClient)
 * relay [--config FILE] spool transfer --to HOST:PORT [--helo NAME] [--limit N] [--dry-run]
 *                                        a stopped relay's queued mail to another relay (TransferCommand)
 * relay [--config FILE] reload           the running relay re-reads its configuration (as SIGHUP does), through
 *                                        the admin endpoint; prints what it applied, or every error (exit 2)
 * relay [--config FILE] check-config     validate and print the effective configuration
 * relay passwd USER [--rounds N]         print a users-file line for USER (smtp.auth.users); the password is read
 *                                        from the terminal without echo, or as one line from stdin
 * </pre>
 * Exit codes: 0 done, 1 failure at run time, 2 bad configuration or unusable spool directory.
 */
public final class RelayMain
{
    public static final int EXIT_OK = 0;
    public static final int EXIT_FAILURE = 1;
    public static final int EXIT_CONFIG = 2;

    private RelayMain()
    {
    }

    public static void main(final String[] args)
    {
        System.exit(run(args));
    }

    static int run(final String[] args)
    {
        Path configFile = null;
        final List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++)
        {
            if ("--config".equals(args[i]) || "-c".equals(args[i]))
            {
                if (i + 1 >= args.length)
                {
                    System.err.println("relay: --config needs a file");
                    return EXIT_CONFIG;
                }
                configFile = Path.of(args[++i]);
            }
            else if ("-h".equals(args[i]) || "--help".equals(args[i]))
            {
                usage();
                return EXIT_OK;
            }
            else
            {
                rest.add(args[i]);
            }
        }

        if (!rest.isEmpty() && "passwd".equals(rest.get(0)))
        {
            // needs no configuration: it only hashes a password
            return passwd(rest.subList(1, rest.size()));
        }
        if (rest.size() == 1 && "reload".equals(rest.get(0)))
        {
            // not validated here: the running relay reads the file again and says what is wrong with it
            return configFile == null ?
                AdminClient.reload(RelayConfig.defaults().metrics().listen(), "", System.out, System.err) :
                AdminClient.reload(RelayConfig.metricsListenOf(configFile, System.getProperties()),
                    RelayConfig.metricsAdminTokenOf(configFile, System.getProperties()), System.out, System.err);
        }
        final RelayConfig config;
        try
        {
            if (configFile != null && !Files.isRegularFile(configFile))
            {
                System.err.println("relay: config file " + configFile + " does not exist or is not a file");
                return EXIT_CONFIG;
            }
            config = configFile == null ? RelayConfig.fromMap(systemOverrides()) :
                RelayConfig.load(configFile, System.getProperties());
        }
        catch (final ConfigException ex)
        {
            System.err.println("relay: invalid configuration:");
            System.err.println(ex.getMessage());
            return EXIT_CONFIG;
        }

        final String command = rest.isEmpty() ? "run" : rest.get(0);
        switch (command)
        {
            case "run":
                final Path file = configFile;
                return RelayProcess.runUntilStopped(config, file == null ?
                    () -> RelayConfig.fromMap(systemOverrides()) :
                    () -> RelayConfig.load(file, System.getProperties()));
            case "spool":
                if (rest.size() > 1 && "flush".equals(rest.get(1)))
                {
                    return AdminClient.flush(config, System.out, System.err);
                }
                if (rest.size() > 1 && AdminClient.QUEUE_VERBS.contains(rest.get(1)))
                {
                    return AdminClient.queue(config, rest.get(1), rest.subList(2, rest.size()), System.in, System.out,
                        System.err);
                }
                if (rest.size() > 1 && "transfer".equals(rest.get(1)))
                {
                    return TransferCommand.run(config, rest.subList(2, rest.size()).toArray(new String[0]),
                        System.out, System.err);
                }
                return SpoolCommand.run(config.spool().dir(), rest.subList(1, rest.size()).toArray(new String[0]),
                    System.out);
            case "check-config":
                for (final Map.Entry<String, String> entry : config.effective().entrySet())
                {
                    System.out.println(entry.getKey() + "=" + entry.getValue());
                }
                return EXIT_OK;
            default:
                System.err.println("relay: unknown command " + Arrays.toString(rest.toArray()));
                usage();
                return EXIT_CONFIG;
        }
    }

    /**
     * {@code passwd USER [--rounds N]}: prints {@code USER:{PBKDF2-SHA256}...} for the users file. The password comes
     * from the terminal (asked twice, not echoed) or, when stdin is not a terminal, as its first line.
     */
    static int passwd(final List<String> args)
    {
        String user = null;
        int rounds = dev.relay.auth.PasswordHashes.DEFAULT_ROUNDS;
        for (int i = 0; i < args.size(); i++)
        {
            if ("--rounds".equals(args.get(i)) && i + 1 < args.size())
            {
                try
                {
                    rounds = Integer.parseInt(args.get(++i));
                }
                catch (final NumberFormatException ex)
                {
                    rounds = 0;
                }
                if (rounds < 1)
                {
                    System.err.println("relay: --rounds must be a positive integer");
                    return EXIT_CONFIG;
                }
            }
            else if (user == null)
            {
                user = args.get(i);
            }
            else
            {
                System.err.println("usage: relay passwd USER [--rounds N]");
                return EXIT_CONFIG;
            }
        }
        if (user == null || user.isEmpty() || user.chars().anyMatch(c -> c == ':' || c <= ' ' || c == 0x7f))
        {
            System.err.println("usage: relay passwd USER [--rounds N]  (USER without ':', spaces or control " +
                "characters)");
            return EXIT_CONFIG;
        }
        final byte[] password;
        final java.io.Console console = System.console();
        if (console != null)
        {
            final char[] first = console.readPassword("Password for %s: ", user);
            final char[] again = console.readPassword("Again: ");
            if (first == null || again == null || !java.util.Arrays.equals(first, again))
            {
                System.err.println("relay: the passwords differ");
                return EXIT_FAILURE;
            }
            password = new String(first).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            java.util.Arrays.fill(first, '\0');
            java.util.Arrays.fill(again, '\0');
        }
        else
        {
            try
            {
                final String line = new java.io.BufferedReader(new java.io.InputStreamReader(System.in,
                    java.nio.charset.StandardCharsets.UTF_8)).readLine();
                if (line == null)
                {
                    System.err.println("relay: no password on stdin");
                    return EXIT_FAILURE;
                }
                password = line.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            }
            catch (final java.io.IOException ex)
            {
                System.err.println("relay: cannot read the password: " + ex.getMessage());
                return EXIT_FAILURE;
            }
        }
        if (password.length == 0)
        {
            System.err.println("relay: empty password");
            return EXIT_FAILURE;
        }
        System.out.println(user + ":" + dev.relay.auth.PasswordHashes.hash(password, rounds));
        java.util.Arrays.fill(password, (byte)0);
        return EXIT_OK;
    }

    /** Without a file: defaults plus the relay's keys given as JVM system properties. */
    private static Map<String, String> systemOverrides()
    {
        final Map<String, String> values = new java.util.TreeMap<>();
        for (final String name : System.getProperties().stringPropertyNames())
        {
            if (ConfigKey.hasKnownPrefix(name))
            {
                values.put(name, System.getProperty(name));
            }
        }
        return values;
    }

    private static void usage()
    {
        System.out.println("usage: relay [--config FILE] [run | spool list | spool show ID | spool shape [--sender] " +
            "| spool flush | spool hold|release|delete|requeue ID...|-|--all|[--sender ADDR] " +
            "[--recipient-domain DOMAIN] | spool transfer --to HOST:PORT [--helo NAME] [--limit N] [--dry-run] " +
            "| check-config | reload]\n" +
            "       relay passwd USER [--rounds N]");
    }
}
