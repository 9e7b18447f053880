package dev.relay.spool;

import dev.relay.config.SyncMode;
import dev.relay.smtp.InboundMessage;
import dev.relay.smtp.QueueIds;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Makes a big backlog fast, without SMTP: writes N messages straight into a spool directory, each deferred once (a
 * {@link DeferredIndex} entry due at a given time, its SCHEDULED journal record), and the queue manager's checkpoint
 * that names them, as a relay whose destination refused every message would have left them. A relay started on the
 * directory then holds N deferred messages. For the backlog benchmarks (README) and the backlog tests.
 * <pre>
 * java ... dev.relay.spool.BacklogBuilder --dir DIR --messages N [--body-bytes 1024] [--due-in 1h]
 *     [--spread 10m] [--domain backlog.test] [--roll-cycle hourly]
 * </pre>
 * Message i: from {@code <bench@client.test>} to {@code <user-i@DOMAIN>}, {@code Message-ID: <backlog-i@bench.test>},
 * a body of about {@code --body-bytes} in lines of 78 octets, received now, due between now + due-in and that plus
 * spread. Single-threaded; a spool with {@code queue.sync=none}: it is synced once at the end.
 */
public final class BacklogBuilder
{
    /** What the queue manager counts a message's envelope and records for, beside its body (SpoolCycles). */
    private static final long MESSAGE_OVERHEAD_BYTES = 512;

    private BacklogBuilder()
    {
    }

    /** The Message-ID (without angle brackets) of backlog message {@code i}. */
    public static String messageId(final long i)
    {
        return "backlog-" + i + "@bench.test";
    }

    /**
     * Writes {@code messages} deferred messages into the spool at {@code dir} (created, or added to when the queue
     * manager's checkpoint there is the only state).
     *
     * @return milliseconds taken.
     */
    public static long build(final Path dir, final long messages, final int bodyBytes, final long dueAtMs,
        final long spreadMs, final String domain, final String rollCycle) throws IOException
    {
        final long startNs = System.nanoTime();
        final QueueCheckpoint previous = QueueCheckpoint.read(dir.resolve("deferred"));
        if (previous != null)
        {
            throw new IOException("the spool at " + dir + " has a queue checkpoint already; build into a new one");
        }
        try (Spool spool = Spool.open(dir, SyncMode.NONE, rollCycle, 0);
             OutcomeJournal journal = OutcomeJournal.open(dir.resolve("journal"), rollCycle);
             DeferredIndex index = DeferredIndex.open(dir.resolve("deferred")))
        {
            final SpoolWriter writer = spool.newWriter(() -> { });
            final QueueIds ids = new QueueIds(0);
            final QueueEntry entry = new QueueEntry();
            final TreeMap<Integer, Long> spooled = new TreeMap<>();
            final ByteBuffer body = ByteBuffer.allocateDirect(bodyBytes + 256);
            final byte[] filler = filler(bodyBytes);
            for (long i = 0; i < messages; i++)
            {
                final long nowMs = System.currentTimeMillis();
                final InboundMessage message = new InboundMessage();
                message.queueId(ids.next(nowMs));
                message.receivedAtMs(nowMs);
                message.clientAddress(ascii("127.0.0.1"));
                message.heloName(ascii("client.test"));
                message.reversePath(ascii("bench@client.test"));
                message.addRecipient(ascii("user-" + i + "@" + domain), 0, null);
                message.receivedHeader(ascii("Received: from client.test (client.test [127.0.0.1])\r\n\tby "
                    + "relay.bench (relay) with ESMTP id " + message.queueIdText() + "; backlog\r\n"));
                final byte[] head = ascii("Message-ID: <" + messageId(i) + ">\r\nSubject: backlog " + i + "\r\n"
                    + "From: <bench@client.test>\r\n\r\n");
                body.clear();
                body.put(head).put(filler, 0, Math.max(0, Math.min(filler.length, bodyBytes - head.length))).flip();
                final int length = body.remaining();
                if (!writer.begin(message) || !writer.append(message, body, 0, length))
                {
                    throw new IOException("the spool refused message " + i + " (disk full?)");
                }
                message.addBodyBytes(length);
                if (!writer.complete(message, (m, durable) -> { }))
                {
                    throw new IOException("the spool refused to complete message " + i);
                }
                entry.queueId = message.queueId();
                entry.dueMs = dueAtMs + (messages <= 1 ? 0 : spreadMs * i / (messages - 1));
                entry.receivedAtMs = nowMs;
                entry.startIndex = writer.lastStartIndex;
                entry.endIndex = writer.lastEndIndex;
                entry.bodyBytes = length;
                entry.chunkCount = writer.lastChunkCount;
                entry.attempts = 1;
                entry.cycle = spool.cycleOf(entry.startIndex);
                entry.flags = 0;
                entry.recipients(1);
                entry.status[0] = QueueEntry.DEFERRED;
                entry.reply[0] = "connect to 127.0.0.1[127.0.0.1]:9: Connection refused";
                entry.statusCode[0] = "4.4.1";
                if (!index.append(entry))
                {
                    throw new IOException("the deferred index refused message " + i + " (disk full?)");
                }
                journal.recordScheduled(entry.queueId, 1, entry.dueMs, entry.slot, entry.position);
                spooled.merge(entry.cycle, length + MESSAGE_OVERHEAD_BYTES, Long::sum);
            }
            final QueueCheckpoint checkpoint = new QueueCheckpoint();
            checkpoint.writtenAtMs = System.currentTimeMillis();
            checkpoint.spoolResumeIndexes = new long[] {spool.lastIndex(0) + 1};
            checkpoint.spoolReadIndexes = checkpoint.spoolResumeIndexes;
            checkpoint.journalIndex = journal.lastIndex();
            checkpoint.spoolSyncedIndexes = checkpoint.spoolResumeIndexes;
            checkpoint.journalSyncedIndex = checkpoint.journalIndex + 1;
            for (final DeferredBucket bucket : index.buckets().all())
            {
                checkpoint.buckets.add(new QueueCheckpoint.BucketState(bucket.slot(), bucket.readPosition(),
                    bucket.writePosition(), bucket.liveCount(), bucket.liveBytes(), bucket.minReceivedAtMs()));
            }
            for (final Map.Entry<Integer, long[]> cycle : index.buckets().liveByCycle().byCycle().entrySet())
            {
                checkpoint.cycles.put(cycle.getKey(), new long[] {cycle.getValue()[0], cycle.getValue()[1], 0});
            }
            for (final Map.Entry<Integer, Long> cycle : spooled.entrySet())
            {
                checkpoint.cycles.computeIfAbsent(cycle.getKey(), ignored -> new long[3])[2] = cycle.getValue();
            }
            final List<Path> sync = new ArrayList<>(index.takeDirtyFiles());
            sync.addAll(spool.cycleFiles(0).values());
            sync.addAll(journal.cycleFiles().values());
            QueueCheckpoint.write(dir.resolve("deferred"), checkpoint.encode(), sync);
        }
        return (System.nanoTime() - startNs) / 1_000_000;
    }

    private static byte[] filler(final int bytes)
    {
        final StringBuilder text = new StringBuilder(bytes + 80);
        while (text.length() < bytes)
        {
            text.append("backlog filler line: the quick brown fox jumps over the lazy dog 0123456789\r\n");
        }
        return ascii(text.toString());
    }

    private static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    /** See the class comment. */
    public static void main(final String[] args) throws IOException
    {
        Path dir = null;
        long messages = 0;
        int bodyBytes = 1024;
        long dueInMs = 3_600_000;
        long spreadMs = 600_000;
        String domain = "backlog.test";
        String rollCycle = "hourly";
        for (int i = 0; i + 1 < args.length; i += 2)
        {
            switch (args[i])
            {
                case "--dir" -> dir = Path.of(args[i + 1]);
                case "--messages" -> messages = Long.parseLong(args[i + 1]);
                case "--body-bytes" -> bodyBytes = Integer.parseInt(args[i + 1]);
                case "--due-in" -> dueInMs = millis(args[i + 1]);
                case "--spread" -> spreadMs = millis(args[i + 1]);
                case "--domain" -> domain = args[i + 1];
                case "--roll-cycle" -> rollCycle = args[i + 1];
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (dir == null || messages <= 0)
        {
            System.err.println("usage: BacklogBuilder --dir DIR --messages N [--body-bytes B] [--due-in 1h]"
                + " [--spread 10m] [--domain backlog.test] [--roll-cycle hourly]");
            System.exit(2);
        }
        final long ms = build(dir, messages, bodyBytes, System.currentTimeMillis() + dueInMs, spreadMs, domain,
            rollCycle);
        System.out.printf("backlog: %d messages of %d body bytes written to %s in %.1f s%n", messages, bodyBytes, dir,
            ms / 1000.0);
    }

    /** {@code 90s}, {@code 10m}, {@code 1h}, {@code 500ms}. */
    private static long millis(final String text)
    {
        final java.util.regex.Matcher m = java.util.regex.Pattern.compile("([0-9]+)(ms|s|m|h|d)").matcher(text);
        if (!m.matches())
        {
            throw new IllegalArgumentException("not a duration: " + text);
        }
        final long n = Long.parseLong(m.group(1));
        return switch (m.group(2))
        {
            case "ms" -> n;
            case "s" -> n * 1000;
            case "m" -> n * 60_000;
            case "h" -> n * 3_600_000;
            default -> n * 86_400_000;
        };
    }
}
