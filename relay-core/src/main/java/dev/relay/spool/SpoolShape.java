package dev.relay.spool;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code relay spool shape}: the queue by destination and age, as Postfix's {@code qshape} shows it. One row per
 * recipient domain (or, with {@code --sender}, per sender domain), busiest first, after a TOTAL row; the columns
 * count the recipients still to be delivered (not yet delivered or bounced, per the outcome journal) by the age of
 * their message, in qshape's buckets: up to 5, 10, 20, 40, 80, 160, 320, 640, 1280 minutes and older.
 * <pre>
 *                     T     5    10    20    40    80   160   320   640  1280 1280+
 *          TOTAL   1234  1200    30     4     0     0     0     0     0     0     0
 *    example.com   1000  1000     0     0     0     0     0     0     0     0     0
 * </pre>
 * Reads the spool and its journal as {@code spool list} does: on a running or a stopped relay, creating nothing.
 * Control thread; allocates per domain.
 */
final class SpoolShape
{
    /** Upper bounds of the age buckets in minutes; the last column is everything older. */
    static final int[] BUCKET_MINUTES = {5, 10, 20, 40, 80, 160, 320, 640, 1280};
    private static final int COLUMNS = BUCKET_MINUTES.length + 1;

    private final Map<String, long[]> byDomain = new HashMap<>();
    private final long[] total = new long[COLUMNS];
    private final boolean bySender;
    private final long nowMs;

    SpoolShape(final boolean bySender, final long nowMs)
    {
        this.bySender = bySender;
        this.nowMs = nowMs;
    }

    /** Counts the recipients of {@code message} still to be delivered; {@code state} says where each stands. */
    void add(final SpooledMessage message, final QueueEntry state)
    {
        final int column = column(nowMs - message.receivedAtMs());
        final List<byte[]> recipients = message.recipients();
        for (int i = 0; i < recipients.size(); i++)
        {
            final byte status = i < state.recipientCount() ? state.status[i] : QueueEntry.READY;
            if (status == QueueEntry.DELIVERED || status == QueueEntry.BOUNCED)
            {
                continue;
            }
            final String domain = domainOf(bySender ? message.reversePath() : recipients.get(i));
            byDomain.computeIfAbsent(domain, ignored -> new long[COLUMNS])[column]++;
            total[column]++;
        }
    }

    void print(final PrintStream out)
    {
        final List<Map.Entry<String, long[]>> rows = new ArrayList<>(byDomain.entrySet());
        rows.sort((a, b) ->
        {
            final int bySum = Long.compare(sum(b.getValue()), sum(a.getValue()));
            return bySum != 0 ? bySum : a.getKey().compareTo(b.getKey());
        });
        int width = "TOTAL".length();
        for (final Map.Entry<String, long[]> row : rows)
        {
            width = Math.max(width, row.getKey().length());
        }
        final StringBuilder header = new StringBuilder(String.format(Locale.ROOT, "%" + width + "s %6s", "", "T"));
        for (final int minutes : BUCKET_MINUTES)
        {
            header.append(String.format(Locale.ROOT, " %5d", minutes));
        }
        header.append(String.format(Locale.ROOT, " %5s", BUCKET_MINUTES[BUCKET_MINUTES.length - 1] + "+"));
        out.println(header);
        printRow(out, width, "TOTAL", total);
        for (final Map.Entry<String, long[]> row : rows)
        {
            printRow(out, width, row.getKey(), row.getValue());
        }
    }

    private static void printRow(final PrintStream out, final int width, final String name, final long[] counts)
    {
        final StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%" + width + "s %6d", name,
            sum(counts)));
        for (final long count : counts)
        {
            line.append(String.format(Locale.ROOT, " %5d", count));
        }
        out.println(line);
    }

    static int column(final long ageMs)
    {
        final long minutes = Math.max(0, ageMs) / 60_000;
        for (int i = 0; i < BUCKET_MINUTES.length; i++)
        {
            if (minutes < BUCKET_MINUTES[i])
            {
                return i;
            }
        }
        return BUCKET_MINUTES.length;
    }

    /** The part after the last '@', lower case; {@code <>} for the null sender, the whole address without '@'. */
    static String domainOf(final byte[] address)
    {
        if (address == null || address.length == 0)
        {
            return "<>";
        }
        final String text = new String(address, StandardCharsets.UTF_8);
        final int at = text.lastIndexOf('@');
        return (at < 0 ? text : text.substring(at + 1)).toLowerCase(Locale.ROOT);
    }

    private static long sum(final long[] counts)
    {
        long sum = 0;
        for (final long count : counts)
        {
            sum += count;
        }
        return sum;
    }
}
