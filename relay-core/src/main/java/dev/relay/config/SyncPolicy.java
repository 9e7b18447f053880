package dev.relay.config;

/**
 * When an accepted message is synced to disk before its {@code 250} goes out ({@code queue.sync}).
 */
public enum SyncPolicy
{
    /**
     * Synced before this message's 250: survives a power cut, one sync per message.
     */
    ALWAYS,

    /**
     * Group commit: every message completed in one loop pass is appended, synced once, then all their 250s are
     * written. Same durability as {@link #ALWAYS}, far fewer syncs under load.
     */
    BATCH,

    /**
     * Page cache only: survives a process kill, not a power cut.
     */
    NONE
}
