package dev.relay.smtp;

/**
 * Queue ids: 64-bit, time ordered, unique across restarts and generators, shown as 13 characters of Crockford
 * base32 (like Postfix's long queue ids, they sort by arrival time).
 * <pre>
 *  63            22 21         15 14             0
 * +----------------+-------------+----------------+
 * | epoch millis   | generator   | sequence       |
 * | (42 bits)      | (7)         | (15 bits)      |
 * +----------------+-------------+----------------+
 * </pre>
 * Every thread that makes messages has a generator of its own: inbound loop {@code i} is generator {@code i}
 * ({@code smtp.io_threads} allows up to {@link #MAX_INBOUND_LOOPS}), and mail the relay makes itself (DSNs) has
 * {@link #DSN_GENERATOR}, above every loop's. Two generators never share an id; one generator never repeats one, as
 * its clock never goes back: it takes the next millisecond when 2^15 ids in one millisecond are not enough, or when
 * the wall clock steps back. A delivery that finds two messages with one id takes one for a copy of the other, so
 * a collision would lose mail: {@link #QueueIds(int)} refuses a generator outside the field rather than wrap.
 * <p>
 * (Before 2026-12 the fields were 4 bits of loop and 18 of sequence, and the DSN generator shared loop 15's bits.
 * The millisecond field is where it was, so ids written then still sort and date correctly, and ids made now are
 * later than all of them.)
 * <p>
 * A generator is owned by one thread. No allocation in {@link #next(long)}.
 */
public final class QueueIds
{
    public static final int GENERATOR_BITS = 7;
    /** Generators the field can tell apart. */
    public static final int GENERATORS = 1 << GENERATOR_BITS;
    /** The most inbound loops {@code smtp.io_threads} allows; their generators are 0 .. this - 1. */
    public static final int MAX_INBOUND_LOOPS = 64;
    /** The generator of delivery status notifications the relay writes itself. */
    public static final int DSN_GENERATOR = MAX_INBOUND_LOOPS;

    private static final char[] ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ".toCharArray();
    private static final int SEQUENCE_BITS = 15;
    private static final long SEQUENCE_MASK = (1L << SEQUENCE_BITS) - 1;

    private final int generator;
    private long lastMs;
    private long sequence;

    /**
     * @param generator 0 .. {@link #GENERATORS} - 1: the inbound loop's index, or {@link #DSN_GENERATOR}.
     * @throws IllegalArgumentException outside that range.
     */
    public QueueIds(final int generator)
    {
        if (generator < 0 || generator >= GENERATORS)
        {
            throw new IllegalArgumentException("queue id generator " + generator + " is not in 0.." + (GENERATORS - 1));
        }
        this.generator = generator;
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
        return (lastMs << (SEQUENCE_BITS + GENERATOR_BITS)) | ((long)generator << SEQUENCE_BITS) | sequence;
    }

    public static long timestampMs(final long queueId)
    {
        return queueId >>> (SEQUENCE_BITS + GENERATOR_BITS);
    }

    /** The generator that made {@code queueId} (for ids made since the 7-bit field). */
    public static int generatorOf(final long queueId)
    {
        return (int)((queueId >>> SEQUENCE_BITS) & (GENERATORS - 1));
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
