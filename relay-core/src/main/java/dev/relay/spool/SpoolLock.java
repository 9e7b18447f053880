package dev.relay.spool;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The one process that may deliver from a spool: an exclusive lock on {@code queue.dir/relay.lock}, held by a running
 * relay for its whole life and by {@code spool transfer} while it moves the mail away, so the two (or two relays
 * on one volume) never both send the same queued message. The file holds the holder's pid, for the message of
 * whoever finds it locked.
 * <p>
 * An OS lock ({@code fcntl}), so it is gone with the process, also after {@code kill -9}: the file itself is never
 * deleted (removing a lock file races with the next taker) and a stale one means nothing. Readers ({@code spool
 * list}, {@code show}, {@code shape}) do not take it.
 * <p>
 * Control thread; allocates.
 */
public final class SpoolLock implements AutoCloseable
{
    public static final String FILE_NAME = "relay.lock";

    private final FileChannel channel;
    private final FileLock lock;

    private SpoolLock(final FileChannel channel, final FileLock lock)
    {
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Takes the lock of the spool in {@code spoolDir}, creating the directory when missing.
     *
     * @return the lock, or null when another process (or another holder in this JVM) has it: then
     *         {@link #holder} names it.
     * @throws IOException when the directory or the file cannot be created or opened.
     */
    public static SpoolLock tryAcquire(final Path spoolDir) throws IOException
    {
        try
        {
            Files.createDirectories(spoolDir);
        }
        catch (final IOException | SecurityException ex)
        {
            throw new IOException("cannot create directory (" + ex + ")", ex);
        }
        final FileChannel channel;
        try
        {
            channel = FileChannel.open(spoolDir.resolve(FILE_NAME),
                StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        }
        catch (final IOException | SecurityException ex)
        {
            throw new IOException("cannot open " + FILE_NAME + " (" + ex + ")", ex);
        }
        final FileLock lock;
        try
        {
            lock = channel.tryLock();
        }
        catch (final OverlappingFileLockException ex)
        {
            channel.close();
            return null;
        }
        catch (final IOException | RuntimeException ex)
        {
            channel.close();
            throw ex;
        }
        if (lock == null)
        {
            channel.close();
            return null;
        }
        try
        {
            final byte[] pid = (ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.US_ASCII);
            channel.truncate(0);
            channel.write(ByteBuffer.wrap(pid), 0);
        }
        catch (final IOException ex)
        {
            // the pid is for messages only; the lock is what counts
        }
        return new SpoolLock(channel, lock);
    }

    /**
     * Who holds the lock of the spool in {@code spoolDir}, for a message: {@code "pid 1234"}, or {@code "another
     * process"} when the file does not say.
     */
    public static String holder(final Path spoolDir)
    {
        try
        {
            final String pid = Files.readString(spoolDir.resolve(FILE_NAME), StandardCharsets.US_ASCII).trim();
            return pid.matches("\\d{1,10}") ? "pid " + pid : "another process";
        }
        catch (final IOException ex)
        {
            return "another process";
        }
    }

    @Override
    public void close() throws IOException
    {
        try
        {
            if (lock.isValid())
            {
                lock.release();
            }
        }
        finally
        {
            channel.close();
        }
    }
}
