package dev.relay.smtp;

import java.nio.ByteBuffer;

/**
 * Checks BDAT chunk content (RFC 3030), which is not dot-stuffed and has no terminator, for what the relay refuses
 * in any body: bare CR or LF (they could become an end of data at a next hop that is lax about line ends — the SMTP
 * smuggling family, CVE-2023-51764), NUL, and more {@code Received:} headers than the hop limit. Also notes 8-bit
 * content. State carries across chunks and reads. Pure and allocation-free; one per session.
 */
public final class BdatContentScanner
{
    private static final byte[] RECEIVED = {'r', 'e', 'c', 'e', 'i', 'v', 'e', 'd', ':'};

    private boolean prevCr;
    private boolean bareLineEnd;
    private boolean nul;
    private boolean eightBit;
    private boolean inHeaders;
    private boolean lineStart;
    private int match;
    private int receivedHeaders;

    public void reset()
    {
        prevCr = false;
        bareLineEnd = false;
        nul = false;
        eightBit = false;
        inHeaders = true;
        lineStart = true;
        match = 0;
        receivedHeaders = 0;
    }

    public void scan(final ByteBuffer buffer, final int from, final int to)
    {
        for (int i = from; i < to; i++)
        {
            final byte b = buffer.get(i);
            if (b == '\n')
            {
                if (!prevCr)
                {
                    bareLineEnd = true;
                }
            }
            else if (prevCr)
            {
                bareLineEnd = true;
            }
            if (b == 0)
            {
                nul = true;
            }
            else if (b < 0)
            {
                eightBit = true;
            }
            if (inHeaders)
            {
                scanHeaderByte(b);
            }
            prevCr = b == '\r';
        }
    }

    private void scanHeaderByte(final byte b)
    {
        if (b == '\n')
        {
            lineStart = true;
            match = 0;
            return;
        }
        if (lineStart)
        {
            if (b == '\r')
            {
                // an empty line (CR LF at line start) ends the header section
                inHeaders = false;
                return;
            }
            lineStart = false;
            match = 0;
        }
        if (match >= 0)
        {
            final int lower = b >= 'A' && b <= 'Z' ? b + 32 : b;
            if (match < RECEIVED.length && lower == RECEIVED[match])
            {
                if (++match == RECEIVED.length)
                {
                    receivedHeaders++;
                    match = -1;
                }
            }
            else
            {
                match = -1;
            }
        }
    }

    /** A bare CR or LF was seen, or the content ends in a CR. */
    public boolean sawBareLineEnd()
    {
        return bareLineEnd || prevCr;
    }

    public boolean sawNul()
    {
        return nul;
    }

    public boolean sawEightBit()
    {
        return eightBit;
    }

    public int receivedHeaders()
    {
        return receivedHeaders;
    }
}
