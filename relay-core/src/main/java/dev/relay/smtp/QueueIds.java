package dev.relay.smtp;

/**
 * Queue ids: 64-bit, time ordered, unique across restarts and loop threads, shown as 13 characters of
 * Crockford base32 (like Postfix's long queue ids, they sort by arrival time).
 * <pre>
 *  63            22 21    18 17            0
 * +----------------+--------+---------------+
 * | epoch millis   | loop   | sequence      |
 * | (42 bits)      | (4)    | (18 bits)     |
 * +----------------+--------+---------------+
 * </pre>
 * A generator is owned by one loop thread; 2^18 ids per millisecond per loop is the ceiling (the generator
 * borrows the next millisecond when a burst exceeds it).
 */
public final class QueueIds
{
    private static final char[] ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ".toCharArray();
    private static final int SEQUENCE_BITS = 18;
    private static final int LOOP_BITS = 4;
    private static final long SEQUENCE_MASK = (1L << SEQUENCE_BITS) - 1;

    private final int loopIndex;
    private long lastMs;
    private long sequence;

    public QueueIds(final int loopIndex)
    {
        this.loopIndex = loopIndex & ((1 << LOOP_BITS) - 1);
    }

    public long next(final long nowMs)
    {
        if (nowMs > lastMs)
        {
            lastMs = nowMs;
            sequence = 0;
        }
        else if (++sequence > SEQUENCE_MASK)
        {
            lastMs++;
            sequence = 0;
        }
        return (lastMs << (SEQUENCE_BITS + LOOP_BITS)) | ((long)loopIndex << SEQUENCE_BITS) | sequence;
    }

    public static long timestampMs(final long queueId)
    {
        return queueId >>> (SEQUENCE_BITS + LOOP_BITS);
    }

    public static String format(final long queueId)
    {
        final char[] text = new char[13];
        long value = queueId;
        for (int i = 12; i >= 0; i--)
        {
            text[i] = ALPHABET[(int)(value & 31)];
            value >>>= 5;
        }
        return new String(text);
    }

    /** @return the id, or -1 when {@code text} is not a queue id. */
    public static long parse(final CharSequence text)
    {
        if (text.length() != 13)
        {
            return -1;
        }
        long value = 0;
        for (int i = 0; i < 13; i++)
        {
            final char c = Character.toUpperCase(text.charAt(i));
            int digit = -1;
            for (int d = 0; d < ALPHABET.length; d++)
            {
                if (ALPHABET[d] == c)
                {
                    digit = d;
                    break;
                }
            }
            if (digit < 0 || (i == 0 && digit > 15))
            {
                return -1;
            }
            value = (value << 5) | digit;
        }
        return value;
    }
}
