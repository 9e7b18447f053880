package dev.relay.bench.guard;

import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Test-only benchmarks for {@link LatencyGuardTest}: {@code reference} is a fixed workload (the test's calibration),
 * {@code probe} does {@code work} times the same work, so {@code work=6} is a deliberately slowed benchmark
 * (six times the cost: a 2x threshold holds even when a busy machine adds half to one run and not the other).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 1, time = 1)
@Fork(1)
@State(Scope.Thread)
public class GuardProbeBenchmark
{
    @Param({"1"})
    public int work;

    private byte[] buffer;

    @Setup
    public void setup()
    {
        buffer = new byte[4096];
        for (int i = 0; i < buffer.length; i++)
        {
            buffer[i] = (byte)(i * 31 + 7);
        }
    }

    @Benchmark
    public int reference()
    {
        return hash(0x811C9DC5);
    }

    @Benchmark
    public int probe()
    {
        int h = 0x811C9DC5;
        for (int r = 0; r < work; r++)
        {
            h = hash(h);
        }
        return h;
    }

    private int hash(final int seed)
    {
        int h = seed;
        final byte[] b = buffer;
        for (int i = 0; i < b.length; i++)
        {
            h = (h ^ (b[i] & 0xFF)) * 0x01000193;
        }
        return h;
    }
}
