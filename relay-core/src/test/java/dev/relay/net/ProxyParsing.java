package dev.relay.net;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs {@link ProxyHeaderParser} over an input cut into pieces, as the loop offers bytes: each piece arrives in a
 * buffer of its own between garbage bytes (a read outside the piece would change the result), and the result is
 * described in one line, so any two splits of the same input can be compared.
 */
final class ProxyParsing
{
    private ProxyParsing()
    {
    }

    /** The input whole. */
    static String whole(final byte[] input)
    {
        return run(input, new int[]{input.length});
    }

    /** One byte at a time. */
    static String byteByByte(final byte[] input)
    {
        final int[] ends = new int[Math.max(1, input.length)];
        for (int i = 0; i < input.length; i++)
        {
            ends[i] = i + 1;
        }
        return run(input, ends);
    }

    /** Cut at {@code cut}. */
    static String split(final byte[] input, final int cut)
    {
        return run(input, new int[]{cut, input.length});
    }

    /** Piece ends from arbitrary cut points (sorted, clamped to the input). */
    static int[] pieceEnds(final List<Integer> cuts, final int length)
    {
        final int[] ends = new int[cuts.size() + 1];
        for (int i = 0; i < cuts.size(); i++)
        {
            ends[i] = Math.floorMod(cuts.get(i), length + 1);
        }
        ends[cuts.size()] = length;
        Arrays.sort(ends);
        return ends;
    }

    /**
     * Feeds {@code input[previous end, end)} for each end in {@code pieceEnds} until the parser is done or finds
     * the header malformed.
     *
     * @return "NEED_MORE", "MALFORMED why", or "DONE v1|v2 address:port|peer +bytes left after the header".
     */
    static String run(final byte[] input, final int[] pieceEnds)
    {
        final ProxyHeaderParser parser = new ProxyHeaderParser();
        final SplittableRandom garbage = new SplittableRandom(input.length);
        int start = 0;
        for (final int end : pieceEnds)
        {
            if (end < start)
            {
                continue;
            }
            final int padding = 1 + garbage.nextInt(7);
            final ByteBuffer buffer = ByteBuffer.allocateDirect(end - start + 2 * padding);
            for (int i = 0; i < buffer.capacity(); i++)
            {
                buffer.put(i, (byte)garbage.nextInt(256));
            }
            buffer.put(padding, input, start, end - start);
            buffer.limit(buffer.capacity() - 1).position(1);
            final int status = parser.parse(buffer, padding, padding + end - start);
            assertEquals(1, buffer.position(), "position untouched");
            assertEquals(buffer.capacity() - 1, buffer.limit(), "limit untouched");
            final int consumed = parser.consumedTo() - padding;
            assertTrue(consumed >= 0 && consumed <= end - start, "consumedTo " + consumed + " outside the piece");
            if (status == ProxyHeaderParser.DONE)
            {
                return "DONE v" + parser.version() + " " + client(parser) + " +" + (input.length - start - consumed);
            }
            if (status == ProxyHeaderParser.MALFORMED)
            {
                return "MALFORMED " + parser.problem();
            }
            assertEquals(ProxyHeaderParser.NEED_MORE, status);
            assertEquals(end - start, consumed, "NEED_MORE takes every byte");
            start = end;
        }
        return "NEED_MORE";
    }

    private static String client(final ProxyHeaderParser parser)
    {
        if (parser.peerIsClient())
        {
            return "peer";
        }
        try
        {
            return InetAddress.getByAddress(parser.sourceAddress()).getHostAddress() + ":" + parser.sourcePort();
        }
        catch (final UnknownHostException ex)
        {
            return fail("address of " + parser.sourceAddress().length + " bytes");
        }
    }
}
