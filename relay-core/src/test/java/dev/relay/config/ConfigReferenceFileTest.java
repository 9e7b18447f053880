package dev.relay.config;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ops/relay.properties} documents every key with its default and what a reload does with it, names no unknown
 * key, and loads.
 */
class ConfigReferenceFileTest
{
    private static final Path REFERENCE = Path.of("..", "ops", "relay.properties");
    private static final Pattern SETTING = Pattern.compile("^#?([a-z][a-z0-9_]*(?:\\.[a-z0-9_]+)+)=(.*)$");

    @Test
    void everyKeyAppearsOnceWithItsDefaultAndNoOtherKeyAppears() throws Exception
    {
        final List<String> lines = Files.readAllLines(REFERENCE);
        final Map<String, String> documented = new LinkedHashMap<>();
        final List<String> errors = new ArrayList<>();
        for (final String line : lines)
        {
            final Matcher m = SETTING.matcher(line);
            if (m.matches())
            {
                if (null != documented.put(m.group(1), m.group(2)))
                {
                    errors.add("documented twice: " + m.group(1));
                }
                if (null == ConfigKey.of(m.group(1)))
                {
                    errors.add("unknown key in the reference file: " + m.group(1));
                }
            }
        }
        for (final ConfigKey key : ConfigKey.values())
        {
            if (!documented.containsKey(key.key()))
            {
                errors.add("missing from the reference file: " + key.key());
            }
            else if (!key.defaultText().equals(documented.get(key.key())))
            {
                errors.add(key.key() + " documented as \"" + documented.get(key.key()) + "\", default is \"" +
                    key.defaultText() + "\"");
            }
        }

        assertEquals(List.of(), errors);
    }

    @Test
    void everyKeyHasACommentAboveIt() throws Exception
    {
        final List<String> lines = Files.readAllLines(REFERENCE);
        for (int i = 0; i < lines.size(); i++)
        {
            if (SETTING.matcher(lines.get(i)).matches())
            {
                assertTrue(i > 0 && lines.get(i - 1).startsWith("# "), "no comment above line " + (i + 1));
            }
        }
    }

    @Test
    void everyKeySaysWhatAReloadDoesWithIt() throws Exception
    {
        final List<String> lines = Files.readAllLines(REFERENCE);
        final List<String> errors = new ArrayList<>();
        for (int i = 1; i < lines.size(); i++)
        {
            final Matcher m = SETTING.matcher(lines.get(i));
            if (m.matches())
            {
                final ConfigKey key = ConfigKey.of(m.group(1));
                final String expected = "# " + key.reloadScope().comment();
                if (!expected.equals(lines.get(i - 1)))
                {
                    errors.add(key.key() + ": the line above is \"" + lines.get(i - 1) + "\", not \"" + expected +
                        "\"");
                }
            }
        }

        assertEquals(List.of(), errors);
    }

    @Test
    void loadsAsTheDefaultsWithTheActiveKeys() throws Exception
    {
        final RelayConfig c = RelayConfig.load(REFERENCE, new Properties());

        assertEquals(RelayConfig.defaults().effective(), c.effective());
        assertEquals(2525, c.inbound().smtpListen().get(0).getPort());
        assertEquals(Path.of("data/spool"), c.spool().dir());
    }

    @Test
    void uncommentingEveryDefaultStillLoadsToTheDefaults() throws Exception
    {
        final StringBuilder text = new StringBuilder();
        for (final String line : Files.readAllLines(REFERENCE))
        {
            text.append(line.startsWith("#") && SETTING.matcher(line).matches() ? line.substring(1) : line)
                .append('\n');
        }
        final Path file = Files.createTempFile("relay-reference", ".properties");
        try
        {
            Files.writeString(file, text);
            assertEquals(RelayConfig.defaults().effective(), RelayConfig.load(file, new Properties()).effective());
        }
        finally
        {
            Files.delete(file);
        }
    }
}
