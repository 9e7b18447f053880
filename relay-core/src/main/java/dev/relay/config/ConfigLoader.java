package dev.relay.config;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;

/**
 * Turns a properties file (or a map) and the JVM's system properties into the parsed value of every
 * {@link ConfigKey}: unknown keys (with a guess at the one meant), duplicates, bad values and the rules between keys
 * ({@link CrossKeyRules}) are collected and reported together in one {@link ConfigException}, each naming source,
 * line, key and value. The values then become a {@link RelayConfig}.
 * <p>
 * Stateless; start-up and reload only (it allocates freely).
 */
final class ConfigLoader
{
    private static final String SYSTEM_SOURCE = "system property";
    private static final String MAP_SOURCE = "map";

    private ConfigLoader()
    {
    }

    /** {@link RelayConfig#load}. */
    static RelayConfig load(final Path file, final Properties systemOverrides) throws ConfigException
    {
        final String source = file.toString();
        final String text;
        try
        {
            text = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(java.nio.ByteBuffer.wrap(Files.readAllBytes(file)))
                .toString();
        }
        catch (final CharacterCodingException ex)
        {
            throw new ConfigException(List.of(source + ": is not valid UTF-8"));
        }
        catch (final IOException ex)
        {
            throw new ConfigException(List.of(source + ": cannot read the configuration file: " + describe(ex)));
        }

        final List<String> problems = new ArrayList<>();
        final List<PropertiesReader.Entry> entries = PropertiesReader.read(text, source, problems);

        return build(source, entries, systemOverrides, problems);
    }

    /** {@link RelayConfig#metricsListenOf}. */
    static InetSocketAddress metricsListenOf(final Path file, final Properties systemOverrides)
    {
        final String text = leniently(ConfigKey.METRICS_LISTEN, file, systemOverrides);
        try
        {
            return (InetSocketAddress)ConfigKey.METRICS_LISTEN.parse(text);
        }
        catch (final IllegalArgumentException ex)
        {
            return (InetSocketAddress)ConfigKey.METRICS_LISTEN.parse(ConfigKey.METRICS_LISTEN.defaultText());
        }
    }

    /** {@link RelayConfig#metricsAdminTokenOf}. */
    static String metricsAdminTokenOf(final Path file, final Properties systemOverrides)
    {
        final String text = leniently(ConfigKey.METRICS_ADMIN_TOKEN, file, systemOverrides);
        try
        {
            return (String)ConfigKey.METRICS_ADMIN_TOKEN.parse(text);
        }
        catch (final IllegalArgumentException ex)
        {
            return "";
        }
    }

    /** The last value of {@code key} in {@code file} (a system property wins), its default if none or unreadable. */
    private static String leniently(final ConfigKey key, final Path file, final Properties systemOverrides)
    {
        String text = key.defaultText();
        try
        {
            for (final PropertiesReader.Entry entry : PropertiesReader.read(Files.readString(file,
                StandardCharsets.UTF_8), file.toString(), new ArrayList<>()))
            {
                if (key.key().equals(entry.key()))
                {
                    text = entry.value();
                }
            }
        }
        catch (final IOException | RuntimeException ex)
        {
            // the default, as a start without this key would have it
        }
        return systemOverrides.getProperty(key.key(), text).strip();
    }

    /** {@link RelayConfig#fromMap}. */
    static RelayConfig fromMap(final Map<String, String> values) throws ConfigException
    {
        final List<PropertiesReader.Entry> entries = new ArrayList<>();
        for (final String key : new TreeSet<>(values.keySet()))
        {
            entries.add(new PropertiesReader.Entry(key, values.get(key).strip(), 0));
        }

        return build(MAP_SOURCE, entries, new Properties(), new ArrayList<>());
    }

    /** {@link RelayConfig#defaults}. */
    static RelayConfig defaults()
    {
        try
        {
            return fromMap(Map.of());
        }
        catch (final ConfigException ex)
        {
            throw new IllegalStateException("the built-in defaults do not validate:\n" + ex.getMessage(), ex);
        }
    }

    private static RelayConfig build(
        final String source,
        final List<PropertiesReader.Entry> entries,
        final Properties systemOverrides,
        final List<String> problems) throws ConfigException
    {
        final Map<ConfigKey, Object> values = new EnumMap<>(ConfigKey.class);
        final Map<ConfigKey, String> texts = new EnumMap<>(ConfigKey.class);
        final Map<String, Integer> firstLine = new HashMap<>();

        for (final PropertiesReader.Entry entry : entries)
        {
            final String where = source + ":" + entry.line() + ": " + entry.key();
            final Integer previous = firstLine.putIfAbsent(entry.key(), entry.line());
            if (null != previous)
            {
                problems.add(where + ": duplicate key (first set at line " + previous + ")");
                continue;
            }
            apply(where, entry.key(), entry.value(), values, texts, problems);
        }

        for (final String name : new TreeSet<>(systemOverrides.stringPropertyNames()))
        {
            if (ConfigKey.hasKnownPrefix(name))
            {
                final String where = SYSTEM_SOURCE + " " + name;
                apply(where, name, systemOverrides.getProperty(name).strip(), values, texts, problems);
            }
        }

        if (!problems.isEmpty())
        {
            throw new ConfigException(problems);
        }

        for (final ConfigKey key : ConfigKey.values())
        {
            if (!values.containsKey(key))
            {
                values.put(key, key.parse(key.defaultText()));
                texts.put(key, key.defaultText());
            }
        }
        CrossKeyRules.check(source, firstLine, values, problems);
        if (!problems.isEmpty())
        {
            throw new ConfigException(problems);
        }

        return new RelayConfig(values, texts);
    }

    private static void apply(
        final String where,
        final String name,
        final String text,
        final Map<ConfigKey, Object> values,
        final Map<ConfigKey, String> texts,
        final List<String> problems)
    {
        final ConfigKey key = ConfigKey.of(name);
        if (null == key)
        {
            problems.add(where + ": unknown key" + suggestion(name));
            return;
        }
        try
        {
            values.put(key, key.parse(text));
            texts.put(key, text);
        }
        catch (final IllegalArgumentException ex)
        {
            problems.add(where + ": \"" + text + "\" " + ex.getMessage());
        }
    }

    private static String suggestion(final String name)
    {
        ConfigKey best = null;
        int bestDistance = 4;
        for (final ConfigKey key : ConfigKey.values())
        {
            final int distance = editDistance(name, key.key());
            if (distance < bestDistance)
            {
                best = key;
                bestDistance = distance;
            }
        }

        return null == best ? "" : " (did you mean " + best.key() + "?)";
    }

    private static int editDistance(final String a, final String b)
    {
        final int[] previous = new int[b.length() + 1];
        final int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++)
        {
            previous[j] = j;
        }
        for (int i = 1; i <= a.length(); i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++)
            {
                final int substitute = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                current[j] = Math.min(substitute, Math.min(previous[j], current[j - 1]) + 1);
            }
            System.arraycopy(current, 0, previous, 0, current.length);
        }

        return previous[b.length()];
    }

    private static String describe(final IOException ex)
    {
        return ex instanceof java.nio.file.NoSuchFileException ? "no such file" : ex.toString();
    }
}
