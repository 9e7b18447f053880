package dev.relay.spool;

import dev.relay.config.SyncMode;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.wire.DocumentContext;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

import static dev.relay.testing.Commands.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link CycleFileAllocator} on real files: a Chronicle queue opened by {@link Spool}, its syncer running. The
 * disk-full cases need a small tmpfs (root): without it they are skipped, or fail when {@code CI=true}.
 */
@Timeout(60)
class CycleFileAllocatorTest
{
    private static final long MIB = 1024 * 1024;

    @TempDir
    Path dir;

    @Test
    void positionsAreFileOffsetsAndAllocationGrowsInSteps() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "hourly", 0);
            ExcerptAppender appender = spool.queue().createAppender())
        {
            final CycleFileAllocator allocator = spool.allocator();
            assertTrue(allocator.enabled(), "fallocate works on the temp directory's file system");
            final int length = 8 * 1024;
            final byte[] record = new byte[length];
            final List<long[]> written = new ArrayList<>();
            long lastEnd = 0;
            for (int i = 0; i < 3_000; i++)
            {
                try (DocumentContext dc = appender.writingDocument())
                {
                    final Bytes<?> bytes = dc.wire().bytes();
                    final long position = bytes.writePosition();
                    assertTrue(allocator.ensureAllocated(appender, position, length));
                    assertTrue(allocator.allocatedEnd() >= position + length + CycleFileAllocator.AHEAD_BYTES);
                    record[0] = (byte)i;
                    record[length - 1] = (byte)~i;
                    bytes.write(record);
                    if (i % 500 == 0)
                    {
                        written.add(new long[] {position, i});
                    }
                    lastEnd = position + length;
                }
            }
            // ~24 MB in 8 MiB steps: a handful of calls for 3000 records
            final long calls = allocator.fallocateCalls();
            assertTrue(calls >= lastEnd / CycleFileAllocator.STEP_BYTES && calls <= lastEnd / CycleFileAllocator.STEP_BYTES + 2,
                calls + " fallocate calls for " + lastEnd + " bytes");
            final Path file = appender.currentFile().toPath();
            assertEquals(spool.allocator().cycleFile(appender.cycle()).toPath(), file, "file name for the cycle");
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ))
            {
                for (final long[] at : written)
                {
                    final ByteBuffer two = ByteBuffer.allocate(1);
                    channel.read(two, at[0]);
                    assertEquals((byte)at[1], two.get(0), "the record's first byte is at its writePosition");
                    two.clear();
                    channel.read(two, at[0] + length - 1);
                    assertEquals((byte)~at[1], two.get(0), "and its last byte at writePosition + length - 1");
                }
            }
            final long allocated = allocatedBytes(file);
            assertTrue(allocated >= allocator.allocatedEnd() - 4096,
                "blocks really allocated: " + allocated + " of " + allocator.allocatedEnd());
        }
    }

    @Test
    void concurrentCallersShareOneAllocation() throws Exception
    {
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "hourly", 0))
        {
            final CycleFileAllocator allocator = spool.allocator();
            final int threads = 4;
            final long perCall = 64 * 1024;
            final int calls = 2_000;
            final CountDownLatch ready = new CountDownLatch(threads);
            final CountDownLatch start = new CountDownLatch(1);
            final AtomicReference<Throwable> failure = new AtomicReference<>();
            final List<Thread> started = new ArrayList<>();
            for (int t = 0; t < threads; t++)
            {
                final Thread thread = new Thread(() ->
                {
                    try (ExcerptAppender appender = spool.queue().createAppender())
                    {
                        long position;
                        try (DocumentContext dc = appender.writingDocument())
                        {
                            position = dc.wire().bytes().writePosition();
                            dc.wire().bytes().writeLong(1);
                        }
                        ready.countDown();
                        start.await();
                        // outside a document (no Chronicle lock): only the allocator orders these calls
                        for (int i = 0; i < calls; i++)
                        {
                            position += perCall;
                            if (!allocator.ensureAllocated(appender, position, perCall))
                            {
                                throw new AssertionError("refused at " + position);
                            }
                            if (allocator.allocatedEnd() < position + perCall + CycleFileAllocator.AHEAD_BYTES)
                            {
                                throw new AssertionError("allocated end " + allocator.allocatedEnd() + " < "
                                    + (position + perCall) + " after a true");
                            }
                        }
                    }
                    catch (final Throwable ex)
                    {
                        failure.compareAndSet(null, ex);
                    }
                });
                started.add(thread);
                thread.start();
            }
            assertTrue(ready.await(10, TimeUnit.SECONDS));
            start.countDown();
            for (final Thread thread : started)
            {
                thread.join(30_000);
            }
            assertNull(failure.get());
            final long furthest = calls * perCall + 2 * CycleFileAllocator.AHEAD_BYTES;
            assertTrue(allocator.fallocateCalls() <= furthest / CycleFileAllocator.STEP_BYTES + 2,
                allocator.fallocateCalls() + " calls for " + threads * calls + " requests up to " + furthest);
            assertEquals(0, allocator.failures());
        }
    }

    @Test
    void rollsIntoThePrecreatedFileAndCleansUp() throws Exception
    {
        final Path leftover = Files.createDirectories(dir).resolve("20200101-000000T.precreated");
        Files.createFile(leftover);
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "secondly", 0);
            ExcerptAppender appender = spool.queue().createAppender())
        {
            final CycleFileAllocator allocator = spool.allocator();
            assertFalse(Files.exists(leftover), "an earlier run's pre-created file is deleted at open");
            final int opened = spool.currentCycle();
            while (spool.currentCycle() == opened)
            {
                Thread.sleep(5);
            }
            // a new second: within a refresh (~100 ms) it and the next CYCLES_AHEAD are pre-created
            final int first = spool.currentCycle();
            awaitTrue(() ->
            {
                for (int cycle = first; cycle <= first + CycleFileAllocator.CYCLES_AHEAD; cycle++)
                {
                    if (!Files.exists(allocator.precreatedFile(cycle).toPath()))
                    {
                        return false;
                    }
                }
                return true;
            }, 500);
            final int next = first + 1;
            final Path precreated = allocator.precreatedFile(next).toPath();
            final Object inode = Files.getAttribute(precreated, "unix:ino");
            assertEquals(0, Files.size(precreated));
            assertTrue(allocatedBytes(precreated) >= CycleFileAllocator.PRECREATE_BYTES);
            while (spool.currentCycle() < next)
            {
                Thread.sleep(5);
            }
            assertTrue(allocator.cycleReady());
            try (DocumentContext dc = appender.writingDocument())
            {
                assertTrue(allocator.ensureAllocated(appender, dc.wire().bytes().writePosition(), 8));
                dc.wire().bytes().writeLong(42);
            }
            assertEquals(next, appender.cycle());
            final Path file = allocator.cycleFile(next).toPath();
            assertEquals(file, appender.currentFile().toPath());
            assertEquals(inode, Files.getAttribute(file, "unix:ino"), "Chronicle renamed our file into place");
            assertFalse(Files.exists(precreated));
            // the syncer keeps the cycles ahead ready and deletes pre-created files of cycles gone by
            final int later = spool.currentCycle() + 3;
            while (spool.currentCycle() < later)
            {
                Thread.sleep(20);
            }
            awaitTrue(() -> !Files.exists(allocator.precreatedFile(first).toPath())
                && Files.exists(allocator.precreatedFile(later + 1).toPath()), 2_000);
        }
        try (Stream<Path> files = Files.list(dir))
        {
            assertEquals(List.of(), files.filter(path -> path.toString().contains(".precreated")).toList(),
                "no pre-created files after close");
        }
    }

    @Test
    void fullFileSystemIsReportedAsFalseNotAFault() throws Exception
    {
        final Path mount = mountTmpfs("8m");
        try
        {
            final Path filler = mount.resolve("filler");
            try (Spool spool = Spool.open(mount.resolve("spool"), SyncMode.NONE, "hourly", 0);
                ExcerptAppender appender = spool.queue().createAppender())
            {
                final CycleFileAllocator allocator = spool.allocator();
                long position;
                try (DocumentContext dc = appender.writingDocument())
                {
                    position = dc.wire().bytes().writePosition();
                    assertTrue(allocator.ensureAllocated(appender, position, 8));
                    dc.wire().bytes().writeLong(7);
                }
                final long allocatedEnd = allocator.allocatedEnd();
                assertTrue(allocatedEnd < 8 * MIB, "a whole step does not fit in 8 MiB with the pre-created files: "
                    + allocatedEnd);
                fill(filler);
                assertEquals(0, Files.getFileStore(mount).getUsableSpace());
                // what is allocated stays usable; past it the file system is full
                assertTrue(allocator.ensureAllocated(appender, allocatedEnd - CycleFileAllocator.AHEAD_BYTES - 64, 64));
                final long failures = allocator.failures();
                assertFalse(allocator.ensureAllocated(appender, allocatedEnd, 64 * 1024));
                assertFalse(allocator.ensureAllocated(appender, allocatedEnd, 64 * 1024));
                assertEquals(failures + 2, allocator.failures());
                Files.delete(filler);
                assertTrue(allocator.ensureAllocated(appender, allocatedEnd, 64 * 1024));
                assertTrue(allocator.allocatedEnd() >= allocatedEnd + 64 * 1024 + CycleFileAllocator.AHEAD_BYTES);
            }
        }
        finally
        {
            unmount(mount);
        }
    }

    @Test
    void noPrecreatedFileMeansNoWrite() throws Exception
    {
        final Path mount = mountTmpfs("8m");
        try
        {
            final Path filler = mount.resolve("filler");
            try (Spool spool = Spool.open(mount.resolve("spool"), SyncMode.NONE, "secondly", 0))
            {
                final CycleFileAllocator allocator = spool.allocator();
                assertTrue(allocator.cycleReady());
                fill(filler);
                // within CYCLES_AHEAD seconds the pre-created files run out and cannot be replaced
                awaitTrue(() -> !allocator.cycleReady(), 5_000);
                assertFalse(spool.reserve(0, 64));
                Files.delete(filler);
                awaitTrue(allocator::cycleReady, 2_000);
                assertTrue(spool.reserve(0, 64));
            }
        }
        finally
        {
            unmount(mount);
        }
    }

    @Test
    void withoutThePosixLibraryEverythingIsAllowed() throws Exception
    {
        final net.openhft.posix.PosixAPI real = net.openhft.posix.internal.PosixAPIHolder.POSIX_API;
        net.openhft.posix.PosixAPI.useNoOpPosixApi();
        try (Spool spool = Spool.open(dir, SyncMode.NONE, "secondly", 0);
            ExcerptAppender appender = spool.queue().createAppender())
        {
            final CycleFileAllocator allocator = spool.allocator();
            assertFalse(allocator.enabled());
            assertTrue(allocator.cycleReady());
            assertTrue(spool.reserve(0, 64));
            try (DocumentContext dc = appender.writingDocument())
            {
                assertTrue(allocator.ensureAllocated(appender, dc.wire().bytes().writePosition(), 8));
                dc.wire().bytes().writeLong(1);
            }
            assertEquals(0, allocator.fallocateCalls());
            try (Stream<Path> files = Files.list(dir))
            {
                assertEquals(List.of(), files.filter(path -> path.toString().contains(".precreated")).toList());
            }
        }
        finally
        {
            net.openhft.posix.internal.PosixAPIHolder.POSIX_API = real;
        }
    }

    @Test
    void journalSkipsWhatItCannotAllocate() throws Exception
    {
        final Path mount = mountTmpfs("8m");
        try
        {
            final Path filler = mount.resolve("filler");
            final String text = "4.4.1 connection refused ".repeat(80);
            long written = 0;
            try (OutcomeJournal journal = OutcomeJournal.open(mount.resolve("journal"), "hourly"))
            {
                for (int i = 0; i < 10; i++)
                {
                    journal.recordResult(i, 0, OutcomeJournal.DEFERRED, 1, 0, text);
                    written++;
                }
                fill(filler);
                // ~20 MiB of records onto a full 8 MiB file system: refused, not a fault in the writing thread
                for (int i = 10; i < 10_010; i++)
                {
                    journal.recordResult(i, 0, OutcomeJournal.DEFERRED, 1, 0, text);
                }
                assertTrue(journal.skippedRecords() > 0, "nothing skipped on a full file system");
                written += 10_000 - journal.skippedRecords();
                Files.delete(filler);
                journal.recordDone(1);
                written++;
                assertEquals(10_000 + 11 - written, journal.skippedRecords());
            }
            try (OutcomeJournal journal = OutcomeJournal.open(mount.resolve("journal"), null))
            {
                assertEquals(written, journal.replay(new OutcomeJournal.Visitor()
                {
                    @Override
                    public void onResult(final long queueId, final int recipient, final byte status,
                        final int attempts, final long nextAttemptMs, final String reply)
                    {
                    }

                    @Override
                    public void onDone(final long queueId)
                    {
                    }
                }));
            }
        }
        finally
        {
            unmount(mount);
        }
    }

    private static void awaitTrue(final java.util.function.BooleanSupplier condition, final long timeoutMs)
        throws InterruptedException
    {
        final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (!condition.getAsBoolean())
        {
            if (System.nanoTime() - deadline > 0)
            {
                fail("not within " + timeoutMs + " ms");
            }
            Thread.sleep(10);
        }
    }

    /** Writes zeros to {@code filler} until ENOSPC. */
    private static void fill(final Path filler) throws IOException
    {
        final ByteBuffer zeros = ByteBuffer.allocateDirect(64 * 1024).order(ByteOrder.nativeOrder());
        try (FileChannel channel = FileChannel.open(filler, StandardOpenOption.CREATE, StandardOpenOption.WRITE))
        {
            while (true)
            {
                zeros.clear();
                if (channel.write(zeros) <= 0)
                {
                    return;
                }
            }
        }
        catch (final IOException ex)
        {
            if (!String.valueOf(ex.getMessage()).contains("No space left"))
            {
                throw ex;
            }
        }
    }

    /** Blocks really allocated to {@code file} (st_blocks x 512). */
    static long allocatedBytes(final Path file) throws Exception
    {
        return Long.parseLong(run(List.of("stat", "-c", "%b", file.toString())).trim()) * 512;
    }

    private Path mountTmpfs(final String size) throws Exception
    {
        final Path mount = Files.createDirectories(dir.resolve("tmpfs"));
        String why = null;
        if (!"root".equals(System.getProperty("user.name")))
        {
            why = "not root (user " + System.getProperty("user.name") + ")";
        }
        else
        {
            try
            {
                run(List.of("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mount.toString()));
            }
            catch (final Exception ex)
            {
                why = ex.getMessage();
            }
        }
        if (why != null)
        {
            if ("true".equalsIgnoreCase(System.getenv("CI")))
            {
                fail("cannot mount a tmpfs (CI=true): " + why);
            }
            Assumptions.abort("cannot mount a tmpfs (" + why + "); run as root");
        }
        return mount;
    }

    private static void unmount(final Path mount) throws Exception
    {
        run(List.of("umount", "-l", mount.toString()));
    }
}
