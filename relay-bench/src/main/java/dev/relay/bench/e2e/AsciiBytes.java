package dev.relay.bench.e2e;

/**
 * ASCII tests over byte arrays that the load generator's client ({@link ClientLoop}) and the sink
 * ({@link BenchSink}) read SMTP lines with.
 * <p>
 * Stateless; any thread; does not allocate.
 */
final class AsciiBytes
{
    private AsciiBytes()
    {
    }

    /** ASCII case-insensitive prefix test; {@code word} must be upper case. */
    static boolean startsWithIgnoreCase(final byte[] buf, final int from, final int end, final String word)
    {
        if (end - from < word.length())
        {
            return false;
        }
        for (int i = 0; i < word.length(); i++)
        {
            final int c = buf[from + i];
            if ((c >= 'a' && c <= 'z' ? c - 32 : c) != word.charAt(i))
            {
                return false;
            }
        }
        return true;
    }

    static boolean isDigit(final byte b)
    {
        return b >= '0' && b <= '9';
    }

}
