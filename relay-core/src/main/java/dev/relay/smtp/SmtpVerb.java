package dev.relay.smtp;

import java.nio.ByteBuffer;

/**
 * SMTP command verbs (RFC 5321 §4.1, RFC 3030 BDAT, RFC 3207 STARTTLS, RFC 4954 AUTH) with per-verb flags in
 * the manner of Postfix's {@code smtpd_cmd_table} in {@code src/smtpd/smtpd.c}.
 * <p>
 * Immutable and safe on any thread. {@link #match(ByteBuffer, int, int)} does not allocate.
 */
public enum SmtpVerb
{
    EHLO(Flags.ENDS_GROUP | Flags.PRE_TLS),
    HELO(Flags.ENDS_GROUP | Flags.PRE_TLS),
    MAIL(0),
    RCPT(0),
    DATA(Flags.ENDS_GROUP),
    BDAT(0),
    RSET(Flags.JUNK),
    NOOP(Flags.ENDS_GROUP | Flags.PRE_TLS | Flags.JUNK),
    QUIT(Flags.ENDS_GROUP | Flags.PRE_TLS),
    VRFY(Flags.ENDS_GROUP | Flags.JUNK),
    HELP(Flags.ENDS_GROUP | Flags.JUNK),
    EXPN(Flags.ENDS_GROUP | Flags.JUNK),
    STARTTLS(Flags.ENDS_GROUP | Flags.PRE_TLS),
    AUTH(Flags.ENDS_GROUP),
    UNKNOWN(Flags.ENDS_GROUP | Flags.JUNK);

    /** Flag bits; a nested class because enum constants cannot refer to the enum's own static fields. */
    private static final class Flags
    {
        /** RFC 2920 §3.1: may only be the last command of a pipelined group (flush replies after it). */
        static final int ENDS_GROUP = 1;
        /** RFC 3207 §4: accepted before STARTTLS when TLS is required (Postfix SMTPD_CMD_FLAG_PRE_TLS). */
        static final int PRE_TLS = 2;
        /** Counts toward the junk-command limit (Postfix SMTPD_CMD_FLAG_LIMIT, smtpd_junk_command_limit). */
        static final int JUNK = 4;
    }

    private static final SmtpVerb[] KNOWN;

    static
    {
        final SmtpVerb[] all = values();
        KNOWN = new SmtpVerb[all.length - 1];
        System.arraycopy(all, 0, KNOWN, 0, KNOWN.length);
    }

    private final int flags;
    private final byte[] upperName;

    SmtpVerb(final int flags)
    {
        this.flags = flags;
        this.upperName = name().getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    }

    /**
     * RFC 2920 §3.1: EHLO, DATA, VRFY, EXPN, QUIT, NOOP (and commands that change the connection state,
     * STARTTLS and AUTH, plus HELP and unknown commands) end a pipelined group.
     */
    public boolean endsGroup()
    {
        return (flags & Flags.ENDS_GROUP) != 0;
    }

    /** Allowed before STARTTLS when the listener requires TLS (RFC 3207 §4). */
    public boolean allowedBeforeTls()
    {
        return (flags & Flags.PRE_TLS) != 0;
    }

    /** Counts toward the junk-command limit, as Postfix's {@code smtpd_junk_command_limit}. */
    public boolean countsAsJunk()
    {
        return (flags & Flags.JUNK) != 0;
    }

    /**
     * Matches the ASCII token {@code buf[start, end)} case-insensitively against the known verbs.
     * Uses absolute gets only; does not allocate.
     *
     * @return the verb, or {@link #UNKNOWN}.
     */
    public static SmtpVerb match(final ByteBuffer buf, final int start, final int end)
    {
        final int length = end - start;
        if (length != 4 && length != 8)
        {
            return UNKNOWN;
        }

        for (final SmtpVerb verb : KNOWN)
        {
            final byte[] name = verb.upperName;
            if (name.length == length && equalsUpper(buf, start, name))
            {
                return verb;
            }
        }

        return UNKNOWN;
    }

    private static boolean equalsUpper(final ByteBuffer buf, final int start, final byte[] upperName)
    {
        for (int i = 0; i < upperName.length; i++)
        {
            // Clearing bit 5 maps exactly {'A','a'} to 'A' (and so on): names are letters only.
            if ((buf.get(start + i) & 0xDF) != upperName[i])
            {
                return false;
            }
        }
        return true;
    }
}
