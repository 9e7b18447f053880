package dev.relay.delivery;

import dev.relay.spool.Spool;
import dev.relay.spool.SpoolBodyCursor;

import java.util.ArrayDeque;

/**
 * The spool body cursors of one thread: a cursor holds a Chronicle tailer, which is confined to the thread that
 * first used it, so each delivery loop streams bodies through cursors of its own, made on first need and reused
 * (one per transaction sending a body at once). Their tailers close with the spool. Owned by one thread;
 * allocates only to grow.
 */
final class BodyCursorPool
{
    private final Spool spool;
    private final ArrayDeque<SpoolBodyCursor> free = new ArrayDeque<>();

    BodyCursorPool(final Spool spool)
    {
        this.spool = spool;
    }

    SpoolBodyCursor take()
    {
        final SpoolBodyCursor cursor = free.pollFirst();
        if (cursor != null)
        {
            return cursor;
        }
        return spool.newBodyCursor();
    }

    void give(final SpoolBodyCursor cursor)
    {
        free.addFirst(cursor);
    }
}
