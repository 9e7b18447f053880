package dev.relay.it;

import java.io.ByteArrayOutputStream;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Random;

/**
 * Deterministic message bodies in wire form (CRLF lines, no line starting with ".", no NUL/CR/LF inside a line),
 * with 8-bit octets, produced chunk by chunk so a large one never sits on the heap whole.
 */
final class WireBodies
{
    static final int LINE_BYTES = 76;

    private final Random random;
    private final long total;
    private long produced;

    /** {@code total} must be a multiple of {@link #LINE_BYTES} + 2. */
    WireBodies(final long seed, final long total)
    {
        if (total % (LINE_BYTES + 2) != 0)
        {
            throw new IllegalArgumentException("total must be a multiple of " + (LINE_BYTES + 2));
        }
        this.random = new Random(seed);
        this.total = total;
    }

    /** The largest multiple of a line not above {@code bytes}. */
    static long roundToLines(final long bytes)
    {
        return bytes - bytes % (LINE_BYTES + 2);
    }

    boolean hasMore()
    {
        return produced < total;
    }

    /** Fills {@code buffer} with whole lines (its length must be a multiple of a line); returns the bytes filled. */
    int next(final byte[] buffer)
    {
        final int lineBytes = LINE_BYTES + 2;
        final int n = (int)Math.min(buffer.length - buffer.length % lineBytes, total - produced);
        for (int line = 0; line < n; line += lineBytes)
        {
            for (int i = 0; i < LINE_BYTES; i++)
            {
                int b = 0x20 + random.nextInt(0xFF - 0x20 + 1);
                if (b == 0x7F)
                {
                    b = 'x';
                }
                buffer[line + i] = (byte)b;
            }
            if (buffer[line] == '.')
            {
                buffer[line] = 'y';
            }
            buffer[line + LINE_BYTES] = '\r';
            buffer[line + LINE_BYTES + 1] = '\n';
        }
        produced += n;
        return n;
    }

    /** The whole body on the heap (small bodies only). */
    static byte[] whole(final long seed, final int total)
    {
        final WireBodies bodies = new WireBodies(seed, total);
        final ByteArrayOutputStream out = new ByteArrayOutputStream(total);
        final byte[] chunk = new byte[(LINE_BYTES + 2) * 512];
        while (bodies.hasMore())
        {
            out.write(chunk, 0, bodies.next(chunk));
        }
        return out.toByteArray();
    }

    static String sha256(final byte[] bytes)
    {
        final MessageDigest sha = SpoolContents.sha256();
        sha.update(bytes);
        return HexFormat.of().formatHex(sha.digest());
    }
}
