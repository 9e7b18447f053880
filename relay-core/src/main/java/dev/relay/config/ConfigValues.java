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
     * The value {@code key}'s parser produced (or its default's), typed as the caller's target: a wrong target is
     * a {@link ClassCastException} at start-up, which every configuration test would see.
     */
    @SuppressWarnings("unchecked")
    <T> T get(final ConfigKey key)
    {
        reads[key.ordinal()]++;
        return (T)values.get(key);
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
