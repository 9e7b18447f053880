package dev.relay.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * What the Chronicle cycle files ({@code *.cq4}) of one queue directory are on disk, to show that a restart left
 * them alone ({@link #rewritten}): a repair moves a file away and writes its records into a new one (another
 * inode), and an in-place change shows in the content digest, which covers a file up to its last non-zero byte
 * (cycle files are sparse and longer than their data).
 */
public final class CycleFiles
{
    /** Chronicle's end-of-file mark: header {@code 0xC0000000} (little-endian), then the field name "EOF". */
    public static final byte[] END_OF_FILE_MARK = {0, 0, 0, (byte)0xC0, (byte)0xC3, 'E', 'O', 'F'};

    /** One file: its inode, modification time, length, end of data and the digest of {@code [0, dataEnd)}. */
    public record State(Object inode, FileTime modified, long length, long dataEnd, String digest)
    {
    }

    private CycleFiles()
    {
    }

    /**
     * Name to state of every {@code *.cq4} directly in {@code dir}, by name (oldest cycle first). A file deleted
     * while it is being read is left out: a running relay deletes finished cycles whenever its queue manager's
     * housekeeping comes round, also just after a start.
     */
    public static TreeMap<String, State> snapshot(final Path dir) throws IOException
    {
        final TreeMap<String, State> states = new TreeMap<>();
        for (final Path file : list(dir))
        {
            try
            {
                final long dataEnd = dataEnd(file);
                states.put(file.getFileName().toString(), new State(Files.getAttribute(file, "unix:ino"),
                    Files.getLastModifiedTime(file), Files.size(file), dataEnd, digest(file, dataEnd)));
            }
            catch (final NoSuchFileException ex)
            {
                // deleted as finished since the listing
            }
        }
        return states;
    }

    /** The {@code *.cq4} files directly in {@code dir}, sorted by name. */
    public static List<Path> list(final Path dir) throws IOException
    {
        try (Stream<Path> files = Files.list(dir))
        {
            return files.filter(path -> path.getFileName().toString().endsWith(".cq4")).sorted().toList();
        }
    }

    /**
     * What was rewritten between {@code before} and {@code after}, for the files of {@code before} still present in
     * {@code after} (delivery may have deleted finished ones meanwhile): a file moved away and written afresh (another
     * inode), or an older file changed in place (other bytes or another modification time). The newest file of
     * {@code before} is only checked for its inode and for not having lost data: a start in the same cycle continues
     * it (records appended, its header's write position and index updated), a start in a later one adds the
     * end-of-file mark. Empty when nothing was rewritten.
     */
    public static List<String> rewritten(final TreeMap<String, State> before, final TreeMap<String, State> after)
    {
        final List<String> changes = new ArrayList<>();
        final String newest = before.isEmpty() ? null : before.lastKey();
        for (final Map.Entry<String, State> entry : before.entrySet())
        {
            final String name = entry.getKey();
            final State was = entry.getValue();
            final State now = after.get(name);
            if (now == null)
            {
                continue;
            }
            if (!was.inode().equals(now.inode()))
            {
                changes.add(name + ": inode " + was.inode() + " -> " + now.inode());
            }
            else if (name.equals(newest) ? now.dataEnd() < was.dataEnd() :
                !was.digest().equals(now.digest()) || !was.modified().equals(now.modified()))
            {
                changes.add(name + ": changed in place (data end " + was.dataEnd() + " -> " + now.dataEnd()
                    + ", modified " + was.modified() + " -> " + now.modified() + ")");
            }
        }
        return changes;
    }

    /** {@code length} bytes of {@code file} from {@code position}. */
    public static byte[] read(final Path file, final long position, final int length) throws IOException
    {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ))
        {
            final ByteBuffer buffer = ByteBuffer.allocate(length);
            while (buffer.hasRemaining() && channel.read(buffer, position + buffer.position()) > 0)
            {
                // keep reading
            }
            return buffer.array();
        }
    }

    /** Offset just past the last non-zero byte of {@code file}. */
    public static long dataEnd(final Path file) throws IOException
    {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ))
        {
            final ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
            long end = 0;
            long position = 0;
            while (true)
            {
                buffer.clear();
                final int n = channel.read(buffer, position);
                if (n <= 0)
                {
                    return end;
                }
                for (int i = n - 1; i >= 0; i--)
                {
                    if (buffer.get(i) != 0)
                    {
                        end = position + i + 1;
                        break;
                    }
                }
                position += n;
            }
        }
    }

    private static String digest(final Path file, final long end) throws IOException
    {
        final MessageDigest digest;
        try
        {
            digest = MessageDigest.getInstance("SHA-256");
        }
        catch (final NoSuchAlgorithmException ex)
        {
            throw new IllegalStateException(ex);
        }
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ))
        {
            final ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
            long position = 0;
            while (position < end)
            {
                buffer.clear().limit((int)Math.min(buffer.capacity(), end - position));
                final int n = channel.read(buffer, position);
                if (n <= 0)
                {
                    break;
                }
                buffer.flip();
                digest.update(buffer);
                position += n;
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }
}
