package dev.relay.bench.e2e;

import java.util.ArrayList;
import java.util.List;

/**
 * Message body sizes for {@link LoadGenerator}: one size ({@code 1024}) or a weighted mix
 * ({@code 1024:80,20480:15,1048576:5}, weights need not add up to 100). The size of message {@code seq} is a pure
 * function of {@code seq}: a table of one slot per unit of weight, visited in a stride that is coprime with its
 * length, so every window of {@code sum(weights)} consecutive messages has exactly the requested mix. Immutable;
 * any thread; {@link #sizeIndexOf(long)} does not allocate.
 */
public final class SizeMix
{
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

    /** Parses {@code S} or {@code S1:W1,S2:W2,...}; sizes in bytes (suffixes k and m allowed), weights positive. */
    public static SizeMix parse(final String spec)
    {
        final List<int[]> parts = new ArrayList<>();
        for (final String part : spec.split(","))
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
