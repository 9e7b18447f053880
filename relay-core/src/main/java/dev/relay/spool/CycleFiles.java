package dev.relay.spool;

import net.openhft.chronicle.queue.RollCycle;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * Chronicle cycle files on disk by the names {@code rollCycle}'s format gave them, for {@link Spool} and
 * {@link OutcomeJournal}: listing a directory's files by cycle, the cycle of one name, deleting every file before a
 * cycle. Static and stateless; called from whichever thread cleans up (never a net loop).
 */
final class CycleFiles
{
    private CycleFiles()
    {
    }

    /** Deletes the cycle files in {@code dir} before {@code beforeCycle}; runs {@code refresh} when any went. */
    static int deleteCycleFiles(final Path dir, final RollCycle rollCycle, final int beforeCycle, final Runnable refresh)
    {
        int deleted = 0;
        for (final Map.Entry<Integer, Path> file : cycleFiles(dir, rollCycle).headMap(beforeCycle).entrySet())
        {
            if (file.getValue().toFile().delete())
            {
                deleted++;
            }
        }
        if (deleted > 0)
        {
            refresh.run();
        }
        return deleted;
    }

    /** The cycle files in {@code dir} by cycle (names Chronicle gave them with {@code rollCycle}'s format). */
    static TreeMap<Integer, Path> cycleFiles(final Path dir, final RollCycle rollCycle)
    {
        final java.time.format.DateTimeFormatter format = java.time.format.DateTimeFormatter
            .ofPattern(rollCycle.format()).withZone(java.time.ZoneOffset.UTC);
        final long lengthMs = rollCycle.lengthInMillis();
        final TreeMap<Integer, Path> cycles = new TreeMap<>();
        final java.io.File[] files = dir.toFile().listFiles((ignored, name) -> name.endsWith(".cq4"));
        if (files == null)
        {
            return cycles;
        }
        for (final java.io.File file : files)
        {
            final String name = file.getName();
            final String stamp = name.substring(0, name.length() - ".cq4".length());
            try
            {
                final java.time.temporal.TemporalAccessor parsed = format.parse(stamp);
                cycles.put((int)(epochMillis(parsed) / lengthMs), file.toPath());
            }
            catch (final RuntimeException ex)
            {
                // not a cycle file of this roll cycle
            }
        }
        return cycles;
    }

    /** The cycle of a cycle file's name; {@link Integer#MIN_VALUE} when it is not one. */
    static int cycleOfFile(final String name, final RollCycle rollCycle)
    {
        try
        {
            final java.time.format.DateTimeFormatter format = java.time.format.DateTimeFormatter
                .ofPattern(rollCycle.format()).withZone(java.time.ZoneOffset.UTC);
            return (int)(epochMillis(format.parse(name.substring(0, name.length() - ".cq4".length()))) /
                rollCycle.lengthInMillis());
        }
        catch (final RuntimeException ex)
        {
            return Integer.MIN_VALUE;
        }
    }

    private static long epochMillis(final java.time.temporal.TemporalAccessor parsed)
    {
        final java.time.LocalDate date = java.time.LocalDate.from(parsed);
        final int hour = parsed.isSupported(java.time.temporal.ChronoField.HOUR_OF_DAY) ?
            parsed.get(java.time.temporal.ChronoField.HOUR_OF_DAY) : 0;
        final int minute = parsed.isSupported(java.time.temporal.ChronoField.MINUTE_OF_HOUR) ?
            parsed.get(java.time.temporal.ChronoField.MINUTE_OF_HOUR) : 0;
        final int second = parsed.isSupported(java.time.temporal.ChronoField.SECOND_OF_MINUTE) ?
            parsed.get(java.time.temporal.ChronoField.SECOND_OF_MINUTE) : 0;
        return date.atTime(hour, minute, second).toInstant(java.time.ZoneOffset.UTC).toEpochMilli();
    }
}
