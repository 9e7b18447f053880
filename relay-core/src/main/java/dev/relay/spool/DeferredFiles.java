package dev.relay.spool;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The files of the {@link DeferredIndex}, one per slot ({@code <slot start ms>.due}): {@link QueueEntry}s written at
 * a position, read back at a position, killed in place (their state byte), cut after a torn write. Positional I/O
 * through the {@value #MAX_OPEN_FILES} channels used last (a backlog spans thousands of files) and one read-ahead
 * buffer, so reading a bucket in order costs one {@code pread} per {@value #READ_AHEAD_BYTES} bytes. Which entries
 * count, and where each bucket is read and written, is the index's.
 * <p>
 * Owned by the index's thread. Allocates a channel per file opened, and a bigger buffer for an entry larger than
 * any before.
 */
final class DeferredFiles implements AutoCloseable
{
    static final String SUFFIX = ".due";
    private static final int MAX_OPEN_FILES = 32;
    private static final int READ_AHEAD_BYTES = 256 * 1024;
    private static final Logger LOG = LoggerFactory.getLogger(DeferredFiles.class);

    private final Path dir;
    private final boolean readOnly;
    private final LinkedHashMap<Long, FileChannel> open = new LinkedHashMap<>(64, 0.75f, true);
    private final ByteBuffer deadByte = ByteBuffer.allocateDirect(1).put(0, QueueEntry.DEAD);
    private ByteBuffer writeBuffer = ByteBuffer.allocateDirect(4096).order(ByteOrder.LITTLE_ENDIAN);
    private ByteBuffer readBuffer = ByteBuffer.allocateDirect(READ_AHEAD_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    /** What the read buffer holds: {@code [readStart, readStart + readLength)} of slot {@code readSlot}'s file. */
    private long readSlot = -1;
    private long readStart;
    private int readLength;

    DeferredFiles(final Path dir, final boolean readOnly)
    {
        this.dir = dir;
        this.readOnly = readOnly;
    }

    Path dir()
    {
        return dir;
    }

    Path file(final long slot)
    {
        return dir.resolve(slot + SUFFIX);
    }

    /** The file's length; 0 when there is none. */
    long length(final long slot)
    {
        try
        {
            return Files.size(file(slot));
        }
        catch (final NoSuchFileException ex)
        {
            return 0;
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
    }

    /** The slots that have a file, ascending. */
    List<Long> slotsOnDisk()
    {
        final List<Long> slots = new ArrayList<>();
        if (!Files.isDirectory(dir))
        {
            return slots;
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*" + SUFFIX))
        {
            for (final Path file : files)
            {
                final String name = file.getFileName().toString();
                try
                {
                    slots.add(Long.parseLong(name.substring(0, name.length() - SUFFIX.length())));
                }
                catch (final NumberFormatException ignored)
                {
                    // not ours
                }
            }
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException("cannot list " + dir + ": " + ex, ex);
        }
        slots.sort(null);
        return slots;
    }

    /**
     * Writes {@code entry}, live, at {@code position} of the slot's file (creating it).
     *
     * @return its length.
     * @throws IOException or {@link UncheckedIOException} when it could not be written (a full file system).
     */
    int write(final long slot, final long position, final QueueEntry entry) throws IOException
    {
        final int length = entry.encodedLength();
        if (writeBuffer.capacity() < length)
        {
            writeBuffer = ByteBuffer.allocateDirect(Integer.highestOneBit(length) << 1).order(ByteOrder.LITTLE_ENDIAN);
        }
        writeBuffer.clear();
        entry.encode(writeBuffer);
        writeBuffer.flip();
        final FileChannel channel = channel(slot);
        long at = position;
        while (writeBuffer.hasRemaining())
        {
            at += channel.write(writeBuffer, at);
        }
        return length;
    }

    /** Marks the entry at {@code position} dead: its state byte, outside its checksum. */
    void markDead(final long slot, final long position)
    {
        try
        {
            deadByte.clear();
            channel(slot).write(deadByte, position + QueueEntry.STATE_OFFSET);
        }
        catch (final IOException | UncheckedIOException ex)
        {
            LOG.warn("deferred index: cannot mark an entry of {} taken: {}", file(slot), ex.toString());
        }
        if (readSlot == slot && position >= readStart && position + QueueEntry.HEADER_LENGTH <= readStart + readLength)
        {
            readBuffer.put((int)(position - readStart) + QueueEntry.STATE_OFFSET, QueueEntry.DEAD);
        }
    }

    /**
     * Reads the entry at {@code position} of the slot's file (no byte at or past {@code end}) into {@code into}, live
     * or dead, and sets its slot and position.
     *
     * @return its length; 0 or -1 when no whole, intact entry is there.
     */
    int read(final long slot, final long position, final long end, final QueueEntry into)
    {
        if (!fill(slot, position, QueueEntry.HEADER_LENGTH, end))
        {
            return -1;
        }
        final int offset = (int)(position - readStart);
        final int length = QueueEntry.lengthAt(readBuffer, offset, readLength - offset);
        if (length <= 0 || position + length > end || !fill(slot, position, length, end))
        {
            return -1;
        }
        final int at = (int)(position - readStart);
        final int decoded = into.decode(readBuffer, at, readLength - at);
        if (decoded <= 0)
        {
            return -1;
        }
        into.slot = slot;
        into.position = position;
        return decoded;
    }

    /** Cuts the slot's file at {@code at} (what a crash left half written). */
    void truncate(final long slot, final long at)
    {
        try
        {
            channel(slot).truncate(at);
            if (readSlot == slot)
            {
                readSlot = -1;
            }
        }
        catch (final IOException | UncheckedIOException ex)
        {
            LOG.warn("deferred index: cannot cut {} at {}: {}", file(slot), at, ex.toString());
        }
    }

    /** Deletes the slot's file. */
    void delete(final long slot)
    {
        closeQuietly(open.remove(slot));
        if (readSlot == slot)
        {
            readSlot = -1;
        }
        try
        {
            Files.deleteIfExists(file(slot));
        }
        catch (final IOException ex)
        {
            LOG.warn("deferred index: cannot delete {}: {}", file(slot), ex.toString());
        }
    }

    /** Makes {@code [position, position + length)} of the slot's file readable in the read buffer. */
    private boolean fill(final long slot, final long position, final int length, final long end)
    {
        if (readSlot == slot && position >= readStart && position + length <= readStart + readLength)
        {
            return true;
        }
        if (position + length > end)
        {
            return false;
        }
        if (readBuffer.capacity() < length)
        {
            readBuffer = ByteBuffer.allocateDirect(Integer.highestOneBit(length) << 1).order(ByteOrder.LITTLE_ENDIAN);
        }
        readSlot = -1;
        try
        {
            final FileChannel channel = channel(slot);
            readBuffer.clear();
            readBuffer.limit((int)Math.min(readBuffer.capacity(), end - position));
            long at = position;
            while (readBuffer.hasRemaining())
            {
                final int read = channel.read(readBuffer, at);
                if (read < 0)
                {
                    break;
                }
                at += read;
            }
        }
        catch (final IOException | UncheckedIOException ex)
        {
            LOG.warn("deferred index: cannot read {}: {}", file(slot), ex.toString());
            return false;
        }
        readSlot = slot;
        readStart = position;
        readLength = readBuffer.position();
        return readLength >= length;
    }

    private FileChannel channel(final long slot)
    {
        FileChannel channel = open.get(slot);
        if (channel != null)
        {
            return channel;
        }
        try
        {
            channel = readOnly ? FileChannel.open(file(slot), StandardOpenOption.READ) :
                FileChannel.open(file(slot), StandardOpenOption.READ, StandardOpenOption.WRITE,
                    StandardOpenOption.CREATE);
        }
        catch (final IOException ex)
        {
            throw new UncheckedIOException(ex);
        }
        open.put(slot, channel);
        if (open.size() > MAX_OPEN_FILES)
        {
            final Iterator<Map.Entry<Long, FileChannel>> eldest = open.entrySet().iterator();
            closeQuietly(eldest.next().getValue());
            eldest.remove();
        }
        return channel;
    }

    private static void closeQuietly(final FileChannel channel)
    {
        if (channel != null)
        {
            try
            {
                channel.close();
            }
            catch (final IOException ignored)
            {
                // closing a file we only read and wrote positionally
            }
        }
    }

    @Override
    public void close()
    {
        for (final FileChannel channel : open.values())
        {
            closeQuietly(channel);
        }
        open.clear();
        readSlot = -1;
    }
}
