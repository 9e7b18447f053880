package dev.relay.spool;

import dev.relay.smtp.InboundMessage;

/**
 * Where one message's write into a lane stands, for {@link SpoolWriter}: kept in
 * {@link InboundMessage#sinkState()} from {@code begin} to {@code complete} or {@code abort}, then reset and pooled
 * by the writer. Touched by the writer's loop thread only.
 */
final class WriteTx
{
    boolean started;
    boolean failed;
    int chunkCount;
    long bodyBytes;
    long startIndex = -1;

    void reset()
    {
        started = false;
        failed = false;
        chunkCount = 0;
        bodyBytes = 0;
        startIndex = -1;
    }
}
