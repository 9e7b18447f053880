package dev.relay.spool;

import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.MessageSink.CommitListener;

import java.io.File;

/**
 * A group of completed messages of one {@link SpoolWriter} handed to the {@link SpoolSyncer}, plus the queue
 * files they were written to; goes back to the writer as the completion. Pooled by its writer.
 * <p>
 * Filled on the writer's loop thread, read and marked on the syncer thread, consumed back on the loop thread:
 * the JCTools queues between them publish it safely. Arrays grow while filling, then are reused.
 */
final class SyncRequest
{
    final SpoolWriter writer;
    InboundMessage[] messages = new InboundMessage[16];
    CommitListener[] listeners = new CommitListener[16];
    int count;
    File[] files = new File[4];
    int fileCount;
    boolean durable;

    SyncRequest(final SpoolWriter writer)
    {
        this.writer = writer;
    }

    void add(final InboundMessage message, final CommitListener listener)
    {
        if (count == messages.length)
        {
            messages = java.util.Arrays.copyOf(messages, count * 2);
            listeners = java.util.Arrays.copyOf(listeners, count * 2);
        }
        messages[count] = message;
        listeners[count] = listener;
        count++;
    }

    void addFile(final File file)
    {
        for (int i = 0; i < fileCount; i++)
        {
            if (files[i] == file || files[i].equals(file))
            {
                return;
            }
        }
        if (fileCount == files.length)
        {
            files = java.util.Arrays.copyOf(files, fileCount * 2);
        }
        files[fileCount++] = file;
    }

    void clear()
    {
        for (int i = 0; i < count; i++)
        {
            messages[i] = null;
            listeners[i] = null;
        }
        for (int i = 0; i < fileCount; i++)
        {
            files[i] = null;
        }
        count = 0;
        fileCount = 0;
        durable = false;
    }
}
