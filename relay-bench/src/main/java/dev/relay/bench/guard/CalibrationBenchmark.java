package dev.relay.bench.guard;

import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The latency guard's yardstick: a fixed pure-CPU workload (a serial FNV-1a style hash over a 16 KiB heap buffer,
 * one multiply per byte on a loop-carried dependency, so the JIT cannot vectorise it away and
 * its speed follows the core's speed). It does not depend on relay code, so a change to the relay never moves it:
 * dividing a guarded benchmark's cost by this cost cancels most of what a slower or busier machine does to both.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
@State(Scope.Thread)
public class CalibrationBenchmark
{
    private static final int BYTES = 16 * 1024;

    private byte[] buffer;

    @Setup
    public void setup()
    {
        buffer = new byte[BYTES];
        long x = 0x9E3779B97F4A7C15L;
        for (int i = 0; i < BYTES; i++)
        {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            buffer[i] = (byte)x;
        }
    }

    @Benchmark
    public int checksum()
    {
        int hash = 0x811C9DC5;
        final byte[] b = buffer;
        for (int i = 0; i < b.length; i++)
        {
            hash = (hash ^ (b[i] & 0xFF)) * 0x01000193;
        }
        return hash;
    }
}
