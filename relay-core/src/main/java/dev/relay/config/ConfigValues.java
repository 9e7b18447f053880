package dev.relay.config;

import java.util.EnumMap;
import java.util.Map;

/**
 * The parsed value of every key, handed to the settings records as they are built; each key is read exactly once
 * (by the one record that owns it, or by {@link RelayConfig} when two records share it), and
 * {@link #checkEachReadOnce()} says so after the build: a key nobody reads, or one read twice, is a bug.
 * <p>
 * Start-up (and reload) only; the thread that loads the configuration.
 */
final class ConfigValues
{
    private final Map<ConfigKey, Object> values;
    private final int[] reads = new int[ConfigKey.values().length];

    ConfigValues(final Map<ConfigKey, Object> values)
    {
        this.values = new EnumMap<>(values);
    }

    /**
     * The value {@code key}'s parser produced (or its default's), checked against {@link ConfigKey#type()} and
     * typed as the caller's target: a wrong one fails at start-up, which every configuration test would see.
     */
    @SuppressWarnings("unchecked")
    <T> T get(final ConfigKey key)
    {
        reads[key.ordinal()]++;
        final Object value = values.get(key);
        if (value != null && !key.type().isInstance(value))
        {
            throw new IllegalStateException(key.key() + " parsed to a " + value.getClass().getName() + ", not the " +
                key.type().getName() + " its ConfigKey entry says");
        }
        return (T)value;
    }

    /**
     * @throws IllegalStateException naming the keys not read exactly once.
     */
    void checkEachReadOnce()
    {
        final StringBuilder wrong = new StringBuilder();
        for (final ConfigKey key : ConfigKey.values())
        {
            if (reads[key.ordinal()] != 1)
            {
                wrong.append(' ').append(key.key()).append(" (read ").append(reads[key.ordinal()]).append(')');
            }
        }
        if (wrong.length() > 0)
        {
            throw new IllegalStateException("configuration keys not read exactly once:" + wrong);
        }
    }
}
