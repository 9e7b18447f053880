package dev.relay.it;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Hands a {@link LadderMessage} to the relay over a {@link SmtpTestClient}: MAIL with BODY=8BITMIME, one RCPT per
 * receiver, then DATA (the wire form and {@code .CRLF}) or BDAT (one chunk with LAST, or three). Where the message
 * says so, the client stops writing at an offset and pauses, so the relay's read ends there.
 */
final class LadderClient
{
    /** Pacing after a write that must end one of the relay's reads: it reads up to there alone. */
    private static final long PACE_MS = 5;
    /** A range of the stream up to this size leaves in one write (big bodies have no pauses). */
    private static final int ONE_WRITE_BYTES = 4 << 20;
    private static final byte[] END_OF_DATA = ".\r\n".getBytes(StandardCharsets.US_ASCII);

    private LadderClient()
    {
    }

    /** Sends {@code body} for {@code m} to {@code domains} and returns the reply to its end. */
    static SmtpTestClient.Reply send(
        final SmtpTestClient client, final LadderMessage m, final SizedBody body, final List<String> domains)
        throws IOException
    {
        client.command("MAIL FROM:<" + m.sender + "> BODY=8BITMIME").expect(250);
        for (final String domain : domains)
        {
            client.command("RCPT TO:<r@" + domain + ">").expect(250);
        }
        final byte[] stored = body.stored;
        if (!m.bdat)
        {
            client.command("DATA").expect(354);
            writePaced(client, new byte[][] {stored, END_OF_DATA}, m.splits);
            return client.read();
        }
        final int[] cuts = m.chunkSplits ? chunkCuts(stored) : new int[0];
        int from = 0;
        for (int i = 0; i < cuts.length; i++)
        {
            final byte[] command = ("BDAT " + (cuts[i] - from) + "\r\n").getBytes(StandardCharsets.US_ASCII);
            writePaced(client, new byte[][] {command, Arrays.copyOfRange(stored, from, cuts[i])}, m.splits);
            client.read().expect(250);
            from = cuts[i];
        }
        final byte[] command = ("BDAT " + (stored.length - from) + " LAST\r\n").getBytes(StandardCharsets.US_ASCII);
        final byte[] chunk = from == 0 ? stored : Arrays.copyOfRange(stored, from, stored.length);
        writePaced(client, new byte[][] {command, chunk}, m.splits);
        return client.read();
    }

    /** Writes the parts as one stream, pausing at each split offset of it. */
    private static void writePaced(final SmtpTestClient client, final byte[][] parts, final int[] splits)
        throws IOException
    {
        long total = 0;
        for (final byte[] part : parts)
        {
            total += part.length;
        }
        long from = 0;
        for (int i = 0; i <= splits.length; i++)
        {
            final long to = i < splits.length ? Math.min(splits[i], total) : total;
            if (to > from)
            {
                writeRange(client, parts, from, to);
                from = to;
            }
            if (i < splits.length && splits[i] < total)
            {
                pace();
            }
        }
    }

    /** The stream's octets {@code [from, to)}: one write when small, so TCP cuts them no further than we do. */
    private static void writeRange(final SmtpTestClient client, final byte[][] parts, final long from, final long to)
        throws IOException
    {
        final boolean oneWrite = to - from <= ONE_WRITE_BYTES;
        final byte[] range = oneWrite ? new byte[(int)(to - from)] : null;
        long partStart = 0;
        int filled = 0;
        for (final byte[] part : parts)
        {
            final long start = Math.max(from, partStart);
            final long end = Math.min(to, partStart + part.length);
            if (end > start)
            {
                if (oneWrite)
                {
                    System.arraycopy(part, (int)(start - partStart), range, filled, (int)(end - start));
                    filled += (int)(end - start);
                }
                else
                {
                    client.write(part, (int)(start - partStart), (int)(end - start));
                }
            }
            partStart += part.length;
        }
        if (oneWrite)
        {
            client.write(range);
        }
    }

    private static void pace()
    {
        try
        {
            TimeUnit.MILLISECONDS.sleep(PACE_MS);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(ex);
        }
    }

    /** Cut 1 between the CR and LF of the line that ends after 64 KiB, cut 2 just before a dotted line after 128. */
    private static int[] chunkCuts(final byte[] stored)
    {
        int cr = SizeLadder.WRITE_BUFFER;
        while (stored[cr] != '\r')
        {
            cr++;
        }
        int dot = 2 * SizeLadder.WRITE_BUFFER;
        while (!(stored[dot] == '.' && stored[dot - 1] == '\n'))
        {
            dot++;
        }
        return new int[] {cr + 1, dot};
    }
}
