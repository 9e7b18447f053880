package dev.relay.bench.e2e;

import java.util.ArrayList;
import java.util.List;

/**
 * Message body sizes for {@link LoadGenerator}: one size ({@code 1024}) or a weighted mix
 * ({@code 1024:80,20480:15,1048576:5}, weights need not add up to 100), or the name of a preset ({@link #REALISTIC}).
 * The size of message {@code seq} is a pure function of {@code seq}: a table of one slot per unit of weight, visited
 * in a stride that is coprime with its length, so every window of {@code sum(weights)} consecutive messages has
 * exactly the requested mix. Immutable; any thread; {@link #sizeIndexOf(long)} does not allocate.
 */
public final class SizeMix
{
    /**
     * Preset {@code realistic} (alias {@code specmail2001}): the message size distribution of the SPECmail2001 mail
     * server benchmark (SPEC, "SPECmail2001 Mail Server Benchmark Architecture White Paper", v1.00, 16 January 2001,
     * §4.2.1.1 "Message Size (MSG_SIZE_DISTRIBUTION)", https://www.spec.org/mail2001/docs/whitepaper.html). Its
     * shape comes from the University of Pavia's statistical analysis of production mail server logs (§4.1), its mean
     * (24.5 KB) from an expert consensus of ISP operators. Buckets in KB with their share of messages:
     * 1 10.20%, 2 30.71%, 3 20.59%, 4 10.78%, 5 5.88%, 6 3.74%, 10 7.44%, 100 9.79%, 1000 0.69%, 2675 0.18%.
     * Mapped one to one: KB read as KiB (1024 bytes) and each percentage times 100 as the weight, so the weights add
     * up to 10 000 and every window of 10 000 messages is exactly the published mix; the mean is 25 121 bytes (24.5
     * KiB). Most messages are a few KiB (82% at 6 KiB or less) and a long tail reaches 2.6 MiB: the 10.7% at 100 KiB
     * or more carry 88% of the bytes, the 0.87% at 1000 KiB or more 48%. The sizes are body bytes after the
     * generator's headers (about 350 bytes). This is 2001 consumer (ISP) mail; today's mail is larger on average
     * (HTML, attachments), so read it as a shape, not a forecast of a particular site.
     */
    public static final String REALISTIC = "1k:1020,2k:3071,3k:2059,4k:1078,5k:588,6k:374,10k:744,100k:979,"
        + "1000k:69,2675k:18";

    private final int[] sizes;
    private final int[] slots;
    private final int stride;

    private SizeMix(final int[] sizes, final int[] weights)
    {
        this.sizes = sizes;
        int total = 0;
        for (final int w : weights)
        {
            total += w;
        }
        slots = new int[total];
        int next = 0;
        for (int i = 0; i < sizes.length; i++)
        {
            for (int j = 0; j < weights[i]; j++)
            {
                slots[next++] = i;
            }
        }
        int s = Math.max(1, (int)(total * 0.618));
        while (gcd(s, total) != 1)
        {
            s++;
        }
        stride = s;
    }

    /**
     * Parses {@code S}, {@code S1:W1,S2:W2,...} (sizes in bytes, suffixes k and m for KiB and MiB allowed, weights
     * positive) or a preset name: {@code realistic} or its alias {@code specmail2001} ({@link #REALISTIC}).
     */
    public static SizeMix parse(final String spec)
    {
        final List<int[]> parts = new ArrayList<>();
        for (final String part : expand(spec).split(","))
        {
            final String p = part.trim();
            if (p.isEmpty())
            {
                continue;
            }
            final int colon = p.indexOf(':');
            final int size = parseSize(colon < 0 ? p : p.substring(0, colon));
            final int weight = colon < 0 ? 1 : Integer.parseInt(p.substring(colon + 1).trim());
            if (size < 0 || size == 1 || weight <= 0)
            {
                throw new IllegalArgumentException("bad size mix entry (size 0 or >= 2, weight > 0): " + p);
            }
            parts.add(new int[] {size, weight});
        }
        if (parts.isEmpty())
        {
            throw new IllegalArgumentException("empty size mix: " + spec);
        }
        final int[] sizes = new int[parts.size()];
        final int[] weights = new int[parts.size()];
        for (int i = 0; i < sizes.length; i++)
        {
            sizes[i] = parts.get(i)[0];
            weights[i] = parts.get(i)[1];
        }
        return new SizeMix(sizes, weights);
    }

    /** The mix a preset name stands for, or the spec itself. */
    public static String expand(final String spec)
    {
        final String s = spec.trim().toLowerCase();
        return s.equals("realistic") || s.equals("specmail2001") ? REALISTIC : spec;
    }

    private static int parseSize(final String text)
    {
        final String t = text.trim().toLowerCase();
        if (t.endsWith("k"))
        {
            return Math.multiplyExact(Integer.parseInt(t.substring(0, t.length() - 1)), 1024);
        }
        if (t.endsWith("m"))
        {
            return Math.multiplyExact(Integer.parseInt(t.substring(0, t.length() - 1)), 1024 * 1024);
        }
        return Integer.parseInt(t);
    }

    private static int gcd(final int a, final int b)
    {
        return b == 0 ? a : gcd(b, a % b);
    }

    public int count()
    {
        return sizes.length;
    }

    public int size(final int index)
    {
        return sizes[index];
    }

    public int sizeIndexOf(final long seq)
    {
        return slots[(int)((seq % slots.length) * stride % slots.length)];
    }

    /** The weighted mean size in bytes: what a message of this mix carries on average. */
    public double meanSize()
    {
        long total = 0;
        for (final int slot : slots)
        {
            total += sizes[slot];
        }
        return total / (double)slots.length;
    }

    public int maxSize()
    {
        int max = 0;
        for (final int s : sizes)
        {
            max = Math.max(max, s);
        }
        return max;
    }

    @Override
    public String toString()
    {
        final StringBuilder sb = new StringBuilder();
        final int[] weights = new int[sizes.length];
        for (final int slot : slots)
        {
            weights[slot]++;
        }
        for (int i = 0; i < sizes.length; i++)
        {
            sb.append(i == 0 ? "" : ",").append(sizes[i]).append(':').append(weights[i]);
        }
        return sb.toString();
    }
}
