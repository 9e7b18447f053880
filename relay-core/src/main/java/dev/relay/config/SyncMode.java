package dev.relay.config;

/**
 * When a completed message counts as durable, i.e. when its commit callback (and so its 250) may go out
 * ({@code queue.sync}, DESIGN.md "Promises").
 * <p>
 * Immutable; any thread.
 */
public enum SyncMode
{
    /** Each message is synced to disk on its own before its callback: survives a power cut. */
    ALWAYS,
    /** Group commit: every message a loop completed in one pass is synced with one sync: survives a power cut. */
    BATCH,
    /** Page cache only: the callback follows the append directly. Survives {@code kill -9}, not a power cut. */
    NONE
}
