package dev.relay.bench.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** SizeMix: the realistic preset is SPECmail2001's table, every window of sum(weights) messages has the exact mix. */
@Timeout(value = 10, unit = TimeUnit.SECONDS)
class SizeMixTest
{
    /** SPECmail2001 white paper §4.2.1.1: KB bucket and percentage of messages. */
    private static final int[] KIB = {1, 2, 3, 4, 5, 6, 10, 100, 1000, 2675};
    private static final double[] PERCENT = {10.20, 30.71, 20.59, 10.78, 5.88, 3.74, 7.44, 9.79, 0.69, 0.18};

    @Test
    void realisticIsTheSpecmail2001Distribution()
    {
        final SizeMix mix = SizeMix.parse("realistic");
        assertEquals(KIB.length, mix.count());
        final int[] seen = new int[mix.count()];
        for (long seq = 0; seq < 10_000; seq++)
        {
            seen[mix.sizeIndexOf(seq)]++;
        }
        double expectedMean = 0;
        for (int i = 0; i < KIB.length; i++)
        {
            assertEquals(KIB[i] * 1024, mix.size(i), "bucket " + i + " in bytes");
            assertEquals(Math.round(PERCENT[i] * 100), seen[i], "messages of " + KIB[i] + " KiB in 10 000");
            expectedMean += KIB[i] * 1024 * PERCENT[i] / 100;
        }
        assertEquals(expectedMean, mix.meanSize(), 1e-6, "mean size (the white paper says 24.5 KB)");
        assertEquals(25_121, Math.round(mix.meanSize()));
        assertEquals(2675 * 1024, mix.maxSize());
        assertEquals(mix.toString(), SizeMix.parse("specmail2001").toString(), "alias");
        assertEquals(mix.toString(), SizeMix.parse(" Realistic ").toString(), "case and blanks");
    }

    @Test
    void everyWindowOfTheWeightSumHasTheExactMix()
    {
        final SizeMix mix = SizeMix.parse("1024:80,20k:15,1m:5");
        assertEquals((1024 * 80 + 20 * 1024 * 15 + 1024 * 1024 * 5) / 100.0, mix.meanSize(), 1e-9);
        for (final long start : new long[] {0, 1, 37, 99, 1_000_003})
        {
            final int[] seen = new int[mix.count()];
            for (long seq = start; seq < start + 100; seq++)
            {
                seen[mix.sizeIndexOf(seq)]++;
            }
            assertEquals(80, seen[0], "1 KiB from " + start);
            assertEquals(15, seen[1], "20 KiB from " + start);
            assertEquals(5, seen[2], "1 MiB from " + start);
        }
    }

    @Test
    void oneSizeAndBadSpecs()
    {
        final SizeMix one = SizeMix.parse("102400");
        assertEquals(1, one.count());
        assertEquals(102_400.0, one.meanSize());
        assertEquals("102400", SizeMix.expand("102400"));
        assertThrows(NumberFormatException.class, () -> SizeMix.parse("huge"));
        assertThrows(IllegalArgumentException.class, () -> SizeMix.parse("1024:0"));
    }
}
