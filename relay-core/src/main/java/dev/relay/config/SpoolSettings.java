package dev.relay.config;

import java.nio.file.Path;

/**
 * Where the spool lives and how it writes: read by the root package when it opens the spool and the outcome journal
 * (and by {@code ops/relay spool} commands); immutable, any thread.
 *
 * @param dir          {@code queue.dir}, as written (relative paths resolve against the working directory); it may
 *                     not exist yet.
 * @param sync         {@code queue.sync}: when a message is synced before its 250.
 * @param rollCycle    {@code queue.roll_cycle}: {@code secondly}, {@code minutely}, {@code hourly} or {@code daily}.
 * @param minFreeBytes {@code queue.min_free_bytes}: free space below which new mail gets 452 4.3.1; 0 = no check.
 */
public record SpoolSettings(Path dir, SyncMode sync, String rollCycle, long minFreeBytes)
{
    static SpoolSettings from(final ConfigValues values)
    {
        return new SpoolSettings(
            values.get(ConfigKey.QUEUE_DIR),
            values.get(ConfigKey.QUEUE_SYNC),
            values.get(ConfigKey.QUEUE_ROLL_CYCLE),
            values.get(ConfigKey.QUEUE_MIN_FREE_BYTES));
    }
}
