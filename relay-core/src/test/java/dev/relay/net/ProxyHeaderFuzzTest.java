package dev.relay.net;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.relay.testing.ProxyHeaders;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Fuzzes {@link ProxyHeaderParser}: no exception, nothing read outside the bytes given, and the same result for the
 * input whole, cut where the fuzzer's first byte says, and byte by byte ({@link ProxyParsing}). Regression mode (every
 * build) runs the seeds in {@code src/test/resources/dev/relay/net/ProxyHeaderFuzzTestInputs/fuzz/};
 * {@code JAZZER_FUZZ=1 mvn -o -pl relay-core test -Dtest=ProxyHeaderFuzzTest} fuzzes for 10 s (README, "Fuzzing
 * longer"). {@link #boundedRandomInputs()} throws a fixed-seed stream of mutated headers at the same checks.
 */
class ProxyHeaderFuzzTest
{
    private static final byte[][] SEEDS = {
        ProxyHeaders.v1("192.0.2.1", 56324),
        ProxyHeaders.v1("2001:db8::1", 4000),
        "PROXY UNKNOWN\r\n".getBytes(StandardCharsets.US_ASCII),
        ProxyHeaders.v2("192.0.2.1", 56324),
        ProxyHeaders.v2("2001:db8::1", 4000),
        ProxyHeaders.v2Local(),
        "EHLO x\r\n".getBytes(StandardCharsets.US_ASCII),
    };

    @FuzzTest(maxDuration = "10s")
    void fuzz(final byte[] data)
    {
        check(data, data.length == 0 ? 0 : (data[0] & 0xFF) % (data.length + 1));
    }

    static void check(final byte[] data, final int cut)
    {
        final String whole = ProxyParsing.whole(data);
        assertEquals(whole, ProxyParsing.split(data, cut), "cut at " + cut);
        if (data.length <= 512)
        {
            assertEquals(whole, ProxyParsing.byteByByte(data), "byte by byte");
        }
    }

    @Test
    void boundedRandomInputs()
    {
        final SplittableRandom random = new SplittableRandom(0x5EED);
        final long deadline = System.nanoTime() + 2_000_000_000L;
        int runs = 0;
        while (runs < 100_000 && (runs < 2_000 || System.nanoTime() < deadline))
        {
            final byte[] seed = SEEDS[random.nextInt(SEEDS.length)];
            final byte[] data = java.util.Arrays.copyOf(seed, Math.max(0, seed.length + random.nextInt(-8, 24)));
            for (int flips = random.nextInt(4); flips > 0 && data.length > 0; flips--)
            {
                data[random.nextInt(data.length)] = (byte)random.nextInt(256);
            }
            check(data, random.nextInt(data.length + 1));
            runs++;
        }
    }
}
