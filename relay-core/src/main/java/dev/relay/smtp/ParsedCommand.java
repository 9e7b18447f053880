package dev.relay.smtp;

/**
 * One command line found by {@link SmtpCommandParser}: the verb and the absolute buffer indexes of the line and
 * its argument. Reused for every line: valid only until the next {@code parse} call and only while the buffer it
 * points into is unchanged.
 * <p>
 * Not thread safe: owned by one connection's loop thread. Does not allocate.
 */
public final class ParsedCommand
{
    private SmtpVerb verb = SmtpVerb.UNKNOWN;
    private int lineStart;
    private int verbEnd;
    private int argStart;
    private int argEnd;
    private int end;

    /** The verb of the last {@code COMMAND} line; {@link SmtpVerb#UNKNOWN} for other results. */
    public SmtpVerb verb()
    {
        return verb;
    }

    /** Index of the first byte of the line (the verb). */
    public int lineStart()
    {
        return lineStart;
    }

    /** Index just after the first token (the verb as sent, up to the first SP or the end of the line). */
    public int verbEnd()
    {
        return verbEnd;
    }

    /** Index of the argument after the verb and its separating spaces; equals {@link #argEnd()} if none. */
    public int argStart()
    {
        return argStart;
    }

    /** Index just after the argument, trailing spaces and tabs trimmed, CRLF excluded. */
    public int argEnd()
    {
        return argEnd;
    }

    /** Index just after the bytes consumed by the last {@code parse} call. */
    public int end()
    {
        return end;
    }

    public boolean hasArgument()
    {
        return argEnd > argStart;
    }

    void set(
        final SmtpVerb verb,
        final int lineStart,
        final int verbEnd,
        final int argStart,
        final int argEnd,
        final int end)
    {
        this.verb = verb;
        this.lineStart = lineStart;
        this.verbEnd = verbEnd;
        this.argStart = argStart;
        this.argEnd = argEnd;
        this.end = end;
    }

    void consumed(final int lineStart, final int end)
    {
        set(SmtpVerb.UNKNOWN, lineStart, lineStart, lineStart, lineStart, end);
    }

    @Override
    public String toString()
    {
        return "ParsedCommand{verb=" + verb + ", lineStart=" + lineStart + ", argStart=" + argStart +
            ", argEnd=" + argEnd + ", end=" + end + '}';
    }
}
