package dev.relay;

import dev.relay.auth.UsersFile;
import dev.relay.config.ConfigException;
import dev.relay.config.ConfigKey;
import dev.relay.config.RelayConfig;
import dev.relay.config.ReloadScope;
import dev.relay.net.ServerTlsContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;

/**
 * One reload (SIGHUP, {@code POST /admin/reload}, {@code ops/relay reload}) as a procedure: read the configuration
 * again, check it in full as a start would (every key, the rules between keys, the certificate pair and the users
 * file it names, with the same messages), and only when all of it is good, say what changes. A key whose
 * {@link ReloadScope} is {@link ReloadScope#RESTART}, or a file key naming another path, keeps its running value and
 * is named as needing a restart; the others make the configuration in force ({@link RelayConfig#reloadedWith}),
 * which {@link Relay} hands to its stages before it logs what it applied. A configuration that fails leaves
 * everything as it is, and every problem
 * is logged (ERROR) and returned.
 * <p>
 * Runs on whichever thread asked (the signal's, the metrics server's); {@link Relay} serialises reloads.
 */
public final class ConfigReload
{
    private static final Logger LOG = LoggerFactory.getLogger(ConfigReload.class);

    /** Where the configuration is read again from: the file the relay started with, and the system properties. */
    @FunctionalInterface
    public interface Source
    {
        RelayConfig load() throws ConfigException;
    }

    private ConfigReload()
    {
    }

    /**
     * The outcome of a reload.
     *
     * @param errors   why the new configuration was refused (nothing changed); empty when it was taken.
     * @param applied  the keys put in force, as {@code key=value}.
     * @param restart  the changed keys that keep their running value until a restart, as {@code key=value}.
     * @param inForce  the configuration in force after the reload (the running one when refused).
     */
    public record Result(List<String> errors, List<String> applied, List<String> restart, RelayConfig inForce)
    {
        public boolean accepted()
        {
            return errors.isEmpty();
        }

        /** What the admin endpoint answers and {@code ops/relay reload} prints: one line per fact. */
        public String report()
        {
            final StringBuilder text = new StringBuilder();
            if (!accepted())
            {
                text.append("reload refused; the running configuration stays:\n");
                errors.forEach(error -> text.append(error).append('\n'));
                return text.toString();
            }
            text.append(applied.isEmpty() ? "reloaded: no change in force\n" : "reloaded\n");
            applied.forEach(key -> text.append("applied: ").append(key).append('\n'));
            restart.forEach(key -> text.append("needs a restart: ").append(key).append('\n'));
            return text.toString();
        }
    }

    /** Reads {@code source} and compares it with {@code running}; logs the outcome. Changes nothing itself. */
    static Result prepare(final RelayConfig running, final Source source)
    {
        final RelayConfig next;
        try
        {
            next = source.load();
        }
        catch (final ConfigException ex)
        {
            return refused(running, ex.problems());
        }
        catch (final RuntimeException ex)
        {
            return refused(running, List.of("cannot read the configuration: " + ex));
        }
        final List<String> errors = checkFiles(next);
        if (!errors.isEmpty())
        {
            return refused(running, errors);
        }
        final List<String> applied = new ArrayList<>();
        final List<String> restart = new ArrayList<>();
        for (final ConfigKey key : running.changedIn(next))
        {
            final String value = key.key() + "=" + next.effective().get(key.key());
            final ReloadScope scope = key.reloadScope();
            if (scope == ReloadScope.RESTART || scope == ReloadScope.FILE)
            {
                restart.add(value);
                LOG.warn("reload: {} changed: needs a restart; {}={} stays in force", value, key.key(),
                    running.effective().get(key.key()));
            }
            else
            {
                applied.add(value);
            }
        }
        final RelayConfig inForce;
        try
        {
            inForce = running.reloadedWith(next);
        }
        catch (final ConfigException ex)
        {
            return refused(running, ex.problems());
        }
        return new Result(List.of(), List.copyOf(applied), List.copyOf(restart), inForce);
    }

    /** Once every stage has the configuration in force: the log says what changed. */
    static void logApplied(final Result result)
    {
        LOG.info("reload: {}", result.applied().isEmpty() ? "no change in force" :
            "applied " + String.join(", ", result.applied()));
    }

    /** The files a start would load, checked as it checks them (same messages); none is kept. */
    private static List<String> checkFiles(final RelayConfig next)
    {
        final List<String> errors = new ArrayList<>();
        if (next.serverTls().enabled())
        {
            try
            {
                ServerTlsContext.check(next.serverTls().cert(), next.serverTls().key());
            }
            catch (final IOException | GeneralSecurityException ex)
            {
                errors.add("smtp.tls.cert / smtp.tls.key: " + ex.getMessage());
            }
        }
        if (next.auth().users() != null)
        {
            try
            {
                UsersFile.check(next.auth().users());
            }
            catch (final IOException ex)
            {
                for (final String line : String.valueOf(ex.getMessage()).split("\n"))
                {
                    errors.add("smtp.auth.users: " + line);
                }
            }
        }
        return errors;
    }

    /** A reload refused before it read anything, for {@code why}; logged. */
    static Result prepareRefused(final RelayConfig running, final String why)
    {
        return refused(running, List.of(why));
    }

    private static Result refused(final RelayConfig running, final List<String> errors)
    {
        for (final String error : errors)
        {
            LOG.error("reload refused, the running configuration stays: {}", error);
        }
        return new Result(List.copyOf(errors), List.of(), List.of(), running);
    }
}
