package dev.relay.it;

import java.util.ArrayList;
import java.util.List;

/**
 * The messages of one size ladder, laid out on the buffer boundaries of the relay's path. H is the length of the
 * relay's Received: header (measured, {@link SizeRun#measureHeader()}): outbound, the header goes first into the
 * relay's empty 64 KiB write buffer, so the buffer ends at body offset 65536 - H (65536 - H - the BDAT command for
 * BDAT out). Inbound, a read of the relay ends where the client pauses ({@link LadderMessage#splits}).
 */
final class SizeLadder
{
    /** Relay.DELIVERY_WRITE_BUFFER_BYTES: the outbound connection's write buffer. */
    static final int WRITE_BUFFER = 64 * 1024;
    /** SmtpClientSession.BODY_PART_BYTES (a raw body is stuffed through parts of it) and SpoolWriter.STAGE_BYTES. */
    static final int PART = 16 * 1024;
    /** SpoolRecords.MAX_CHUNK_BYTES: a longer append is stored as several records. */
    static final int SPOOL_CHUNK = 256 * 1024;

    final int header;
    final List<LadderMessage> messages = new ArrayList<>();

    SizeLadder(final int header)
    {
        this.header = header;
    }

    /** Octets of {@code BDAT size LAST CRLF}. */
    static int bdatCommand(final long size)
    {
        return ("BDAT " + size + " LAST\r\n").length();
    }

    static String sign(final int d)
    {
        return d >= 0 ? "+" + d : Integer.toString(d);
    }

    LadderMessage add(final boolean bdat, final int size, final String label, final List<String> domains)
    {
        final LadderMessage m = new LadderMessage(bdat, size, label, domains);
        messages.add(m);
        return m;
    }

    /** A big body: random lines, about one in eight starting with a dot. */
    static LadderMessage big(final boolean bdat, final int size, final String label, final List<String> domains)
    {
        final LadderMessage m = new LadderMessage(bdat, size, label, domains);
        m.dotFiller = true;
        return m;
    }

    /**
     * Bodies whose end falls on the boundaries: the spool writer's 16 KiB stage and the 16 KiB stuffing parts (the
     * client pauses at 16 KiB); the write buffer (the body ends at 65536 - k, so DATA's or stuffing's {@code .CRLF}
     * lies across the end at every offset); the read buffer (the client pauses at its end; DATA's
     * {@code CRLF.CRLF} lies across it at every offset, a BDAT body ends around it).
     */
    void boundaries(final boolean bdat, final int readBuffer, final List<String> domains)
    {
        for (final int base : new int[] {PART, 2 * PART})
        {
            for (int d = -1; d <= 1; d++)
            {
                add(bdat, base + d, "16K part " + sign(d), domains).splits = new int[] {PART};
            }
        }
        for (int k = -1; k <= 5; k++)
        {
            add(bdat, WRITE_BUFFER - header - k, "out buffer, body ends at " + (WRITE_BUFFER - k), domains);
        }
        readBuffer(bdat, readBuffer, "read buffer ", domains);
    }

    /** The read buffer's end: DATA's CRLF.CRLF across it at every offset, or a BDAT body ending around it. */
    void readBuffer(final boolean bdat, final int readBuffer, final String label, final List<String> domains)
    {
        for (int d = -4; d <= 3; d++)
        {
            final int size = bdat ? readBuffer - bdatCommand(readBuffer) + d : readBuffer + d;
            add(bdat, size, label + sign(d), domains).splits = new int[] {readBuffer};
        }
    }

    /**
     * A body with a lone-dot line placed {@code j} octets before each boundary (j = -1: the boundary falls
     * between the CR and LF before it; 0: just before it; 1..: inside it). DATA: the 16 KiB stage, the write
     * buffer's end (65536 - H), the read buffer's ends, the spool's 256 KiB records (when the first read is that
     * long). Raw: the 16 KiB parts (at 16 and 32 KiB), the write buffer's end for BDAT out (65536 - H - the
     * command) and for stuffed DATA out (65536 - H - the dots added to the lone dots before it), the read
     * buffer's ends and the spool's records (both less the BDAT command, which the first read holds too).
     */
    void dotLines(final boolean bdat, final int j, final int readBuffer, final int size, final List<String> domains)
    {
        final int command = bdat ? bdatCommand(size) : 0;
        final List<Integer> at = new ArrayList<>();
        at.add(PART - j);
        if (bdat)
        {
            at.add(2 * PART - j);
            at.add(WRITE_BUFFER - header - bdatCommand(header + size) - j);
        }
        else
        {
            at.add(WRITE_BUFFER - header - j);
        }
        for (int boundary = readBuffer; boundary < size - 1000; boundary += readBuffer)
        {
            at.add(boundary - command - j);
        }
        for (int boundary = SPOOL_CHUNK; boundary < size - 1000; boundary += SPOOL_CHUNK)
        {
            at.add(boundary - command - j);
        }
        if (bdat)
        {
            // stuffed, every lone dot before it grows by one octet
            int stuffed = WRITE_BUFFER - header - j;
            while (true)
            {
                final int target = stuffed;
                final int next = (int)(WRITE_BUFFER - header - j - at.stream().filter(p -> p < target).count());
                if (next == stuffed)
                {
                    break;
                }
                stuffed = next;
            }
            at.add(stuffed);
        }
        at.add(size - 1000 - j);
        final LadderMessage m = add(bdat, size, "lone dots at boundary" + sign(-j), domains);
        m.dotLines = at.stream().mapToInt(Integer::intValue).sorted().distinct().toArray();
        m.splits = readBuffer < size ? new int[] {PART, readBuffer} : new int[] {PART};
    }
}
