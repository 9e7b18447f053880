package dev.relay.bench.e2e;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;

/**
 * The messages {@link LoadGenerator} sends and {@link BenchSink} checks. Bodies are built once at start-up, a few
 * text variants per size: lines of words of 20 to 78 octets ending in CRLF, some starting with a dot, so transparency
 * (RFC 5321 §4.5.2) is exercised on every message. Each variant is kept twice in direct read-only buffers: dot-stuffed
 * with the {@code .CRLF} terminator (for DATA) and raw (for BDAT, RFC 3030). The per-message headers are written by
 * {@link #writeHeaders} into a caller's buffer without allocating:
 *
 * <pre>
 * From: &lt;from&gt;                     Subject: bench 42
 * To: &lt;to&gt;                         Message-ID: &lt;42.RUN@bench.test&gt;
 * X-Bench-Seq: 42                   X-Bench-Sent: 1712345678901234   (epoch µs, intended send time)
 * X-Bench-Sum: 1a2b3c4d/1024        (CRC32C of the un-stuffed body after the blank line / its length)
 * </pre>
 *
 * Immutable after construction; the shared buffers are only ever read through per-connection duplicates.
 */
public final class BenchMessages
{
    static final int VARIANTS = 4;
    private static final long BASE_EPOCH_MICROS;
    private static final long BASE_NANOS;

    static
    {
        final java.time.Instant now = java.time.Instant.now();
        BASE_NANOS = System.nanoTime();
        BASE_EPOCH_MICROS = now.getEpochSecond() * 1_000_000L + now.getNano() / 1_000;
    }
    static final int MAX_HEADER_BYTES = 2048;

    private static final String[] WORDS = (
        "the relay accepts mail from clients and queues it durably before it answers with a positive reply "
        + "delivery happens later over pooled connections to the next hop with retries and bounces as needed "
        + "throughput latency percentile histogram message envelope recipient sender pipelining chunking "
        + "transparency header body line octet queue spool commit group sync selector loop buffer socket").split(" ");

    private final SizeMix mix;
    private final ByteBuffer[][] stuffed;
    private final ByteBuffer[][] raw;
    private final int[][] sums;
    private final byte[] fromHeader;
    private final byte[] toHeader;
    private final byte[] runId;

    public BenchMessages(final SizeMix mix, final String from, final String[] to, final long runId)
    {
        this.mix = mix;
        stuffed = new ByteBuffer[mix.count()][VARIANTS];
        raw = new ByteBuffer[mix.count()][VARIANTS];
        sums = new int[mix.count()][VARIANTS];
        for (int i = 0; i < mix.count(); i++)
        {
            for (int v = 0; v < VARIANTS; v++)
            {
                final byte[] body = body(mix.size(i), 7919L * (i + 1) + v);
                raw[i][v] = direct(body);
                stuffed[i][v] = direct(stuffWithTerminator(body));
                sums[i][v] = checksum(body, 0, body.length);
            }
        }
        fromHeader = ascii("From: <" + from + ">\r\n");
        toHeader = ascii("To: <" + String.join(">, <", to) + ">\r\n");
        this.runId = ascii(Long.toHexString(runId));
    }

    public SizeMix mix()
    {
        return mix;
    }

    /** The shared dot-stuffed body plus {@code .CRLF}; read it only through a duplicate. */
    ByteBuffer stuffed(final int sizeIndex, final int variant)
    {
        return stuffed[sizeIndex][variant];
    }

    /** The shared raw body (for BDAT); read it only through a duplicate. */
    ByteBuffer raw(final int sizeIndex, final int variant)
    {
        return raw[sizeIndex][variant];
    }

    static int variantOf(final long seq)
    {
        return (int)(seq % VARIANTS);
    }

    /** Writes the header block and the blank line that ends it; the buffer needs {@link #MAX_HEADER_BYTES} free. */
    void writeHeaders(final ByteBuffer out, final long seq, final long sentEpochMicros)
    {
        final int sizeIndex = mix.sizeIndexOf(seq);
        final int variant = variantOf(seq);
        out.put(fromHeader).put(toHeader);
        put(out, "Subject: bench ");
        putLong(out, seq);
        put(out, "\r\nMessage-ID: <");
        putLong(out, seq);
        out.put((byte)'.').put(runId);
        put(out, "@bench.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nX-Bench-Seq: ");
        putLong(out, seq);
        put(out, "\r\nX-Bench-Sent: ");
        putLong(out, sentEpochMicros);
        put(out, "\r\nX-Bench-Sum: ");
        putHex(out, sums[sizeIndex][variant]);
        out.put((byte)'/');
        putLong(out, mix.size(sizeIndex));
        put(out, "\r\n\r\n");
    }

    /** Wall-clock microseconds for a {@link System#nanoTime()} reading: monotonic within a process, and within a few µs
     * of another process's on the same host (both anchor on {@link java.time.Instant#now()} once). */
    static long epochMicros(final long nanoTime)
    {
        return BASE_EPOCH_MICROS + (nanoTime - BASE_NANOS) / 1_000;
    }

    /** CRC32C of the un-stuffed body: what {@code X-Bench-Sum} carries and what the sink recomputes. */
    static int checksum(final byte[] body, final int offset, final int length)
    {
        final CRC32C crc = new CRC32C();
        crc.update(body, offset, length);
        return (int)crc.getValue();
    }

    static byte[] body(final int size, final long seed)
    {
        final byte[] out = new byte[size];
        final SplittableRandom random = new SplittableRandom(seed);
        int pos = 0;
        int lineNo = 0;
        while (pos < size)
        {
            final int remaining = size - pos;
            int lineLength = 20 + random.nextInt(59);
            if (remaining - lineLength < 22)
            {
                lineLength = remaining;
            }
            if (lineLength < 2)
            {
                out[pos] = (byte)'x';
                pos++;
                continue;
            }
            final int textEnd = pos + lineLength - 2;
            int p = pos;
            if (lineNo % 7 == 3 && p < textEnd)
            {
                out[p++] = '.';
            }
            while (p < textEnd)
            {
                final String w = WORDS[random.nextInt(WORDS.length)];
                for (int k = 0; k < w.length() && p < textEnd; k++)
                {
                    out[p++] = (byte)w.charAt(k);
                }
                if (p < textEnd)
                {
                    out[p++] = ' ';
                }
            }
            out[p++] = '\r';
            out[p++] = '\n';
            pos = p;
            lineNo++;
        }
        return out;
    }

    /** RFC 5321 §4.5.2: a line starting with a dot gets one more; then the {@code .CRLF} end of data. */
    static byte[] stuffWithTerminator(final byte[] body)
    {
        int dots = 0;
        boolean lineStart = true;
        for (final byte b : body)
        {
            if (lineStart && b == '.')
            {
                dots++;
            }
            lineStart = b == '\n';
        }
        final boolean needsCrlf = body.length > 0 && body[body.length - 1] != '\n';
        final byte[] out = new byte[body.length + dots + (needsCrlf ? 2 : 0) + 3];
        int p = 0;
        lineStart = true;
        for (final byte b : body)
        {
            if (lineStart && b == '.')
            {
                out[p++] = '.';
            }
            out[p++] = b;
            lineStart = b == '\n';
        }
        if (needsCrlf)
        {
            out[p++] = '\r';
            out[p++] = '\n';
        }
        out[p++] = '.';
        out[p++] = '\r';
        out[p] = '\n';
        return out;
    }

    static byte[] ascii(final String s)
    {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static ByteBuffer direct(final byte[] bytes)
    {
        final ByteBuffer b = ByteBuffer.allocateDirect(Math.max(1, bytes.length));
        b.put(bytes).flip();
        return b.asReadOnlyBuffer();
    }

    static void put(final ByteBuffer out, final String constant)
    {
        for (int i = 0; i < constant.length(); i++)
        {
            out.put((byte)constant.charAt(i));
        }
    }

    static void putLong(final ByteBuffer out, final long value)
    {
        if (value < 0)
        {
            out.put((byte)'-');
            putLong(out, -value);
            return;
        }
        long div = 1;
        while (value / div >= 10)
        {
            div *= 10;
        }
        for (; div > 0; div /= 10)
        {
            out.put((byte)('0' + (value / div) % 10));
        }
    }

    private static void putHex(final ByteBuffer out, final int value)
    {
        for (int shift = 28; shift >= 0; shift -= 4)
        {
            out.put((byte)Character.forDigit((value >>> shift) & 0xf, 16));
        }
    }
}
