package dev.relay.smtp;

import java.nio.ByteBuffer;

import static dev.relay.smtp.AddressLiterals.isIpv4;
import static dev.relay.smtp.AddressLiterals.isIpv6;
import static dev.relay.smtp.ArgumentBytes.ATEXT;
import static dev.relay.smtp.ArgumentBytes.equalsIgnoreCase;
import static dev.relay.smtp.ArgumentBytes.isAlnum;
import static dev.relay.smtp.ArgumentBytes.isDigit;
import static dev.relay.smtp.ArgumentBytes.isUtf8;
import static dev.relay.smtp.ArgumentBytes.parseDecimal;
import static dev.relay.smtp.ArgumentBytes.skipSpaces;

/**
 * Parses the arguments of MAIL, RCPT and BDAT in place: the path (RFC 5321 §4.1.2), its length limits
 * (RFC 5321 §4.5.3.1) and the ESMTP parameters this relay offers: SIZE (RFC 1870), BODY=7BIT|8BITMIME
 * (RFC 6152), SMTPUTF8 (RFC 6531), AUTH (RFC 4954 §5, accepted and ignored) and DSN (RFC 3461 §4): RET and ENVID
 * on MAIL, NOTIFY and ORCPT on RCPT. Addresses, ENVID and ORCPT stay byte ranges of the caller's buffer until the
 * envelope copies them; ENVID and ORCPT are checked as xtext ({@link DsnParameters}) but kept encoded.
 * <p>
 * Results and the replies they map to (sender / recipient):
 * <table>
 *     <caption>result codes</caption>
 *     <tr><td>{@link #OK}</td><td>250 2.1.0 / 250 2.1.5</td></tr>
 *     <tr><td>{@link #SYNTAX_ARGS}</td><td>501 5.5.4 Syntax: MAIL FROM:&lt;address&gt; (or RCPT TO:, BDAT)</td></tr>
 *     <tr><td>{@link #SYNTAX_PATH}</td><td>501 5.1.7 Bad sender address syntax / 501 5.1.3 Bad recipient
 *     address syntax</td></tr>
 *     <tr><td>{@link #UNKNOWN_PARAM}</td><td>555 5.5.4 Unsupported option</td></tr>
 *     <tr><td>{@link #BAD_PARAM_VALUE}</td><td>501 5.5.4 Bad parameter value (also a repeated parameter, and
 *     a DSN parameter that breaks RFC 3461 §4's syntax or length limits)</td></tr>
 *     <tr><td>{@link #ADDRESS_TOO_LONG}</td><td>501 5.1.7 / 501 5.1.3 Address too long</td></tr>
 *     <tr><td>{@link #NEEDS_SMTPUTF8}</td><td>553 5.6.7 Non-ASCII address requires SMTPUTF8</td></tr>
 * </table>
 * <p>
 * One parser of one grammar, kept whole past the ~500-line rule of issue 10 as {@link SmtpCommandParser} is: the
 * path and the parameters fill the same result fields in one pass. Its lexical pieces are {@link ArgumentBytes},
 * address literals {@link AddressLiterals}, the NOTIFY and xtext values {@link DsnParameters}.
 * <p>
 * Not thread safe: one instance per session, used on its loop thread; results are valid until the next parse
 * call. Does not allocate.
 */
public final class MailArguments
{
    public static final int OK = 0;
    /** Missing "FROM:"/"TO:", or garbage around the path or parameters: 501 5.5.4. */
    public static final int SYNTAX_ARGS = 1;
    /** Malformed address: 501 5.1.7 for the sender, 501 5.1.3 for a recipient. */
    public static final int SYNTAX_PATH = 2;
    /** A parameter that was not offered in the EHLO reply: 555 5.5.4 (RFC 5321 §4.1.1.11). */
    public static final int UNKNOWN_PARAM = 3;
    /** A known parameter with a bad, missing or repeated value: 501 5.5.4. */
    public static final int BAD_PARAM_VALUE = 4;
    /** RFC 5321 §4.5.3.1: local part over 64, domain over 255 or path over 256 octets: 501 5.1.7 / 5.1.3. */
    public static final int ADDRESS_TOO_LONG = 5;
    /** A byte above 0x7F in the address without SMTPUTF8 on MAIL: 553 5.6.7 (RFC 6531 §3.5). */
    public static final int NEEDS_SMTPUTF8 = 6;

    /** RFC 5321 §4.5.3.1.1. */
    public static final int MAX_LOCAL_PART_LENGTH = 64;
    /** RFC 5321 §4.5.3.1.2. */
    public static final int MAX_DOMAIN_LENGTH = 255;
    /** RFC 5321 §4.5.3.1.3, including the angle brackets. */
    public static final int MAX_PATH_LENGTH = 256;

    private static final int MAX_LABEL_LENGTH = 63;

    private static final byte[] FROM = {'F', 'R', 'O', 'M', ':'};
    private static final byte[] TO = {'T', 'O', ':'};
    private static final byte[] SIZE = {'S', 'I', 'Z', 'E'};
    private static final byte[] BODY = {'B', 'O', 'D', 'Y'};
    private static final byte[] SEVEN_BIT = {'7', 'B', 'I', 'T'};
    private static final byte[] EIGHT_BIT_MIME = {'8', 'B', 'I', 'T', 'M', 'I', 'M', 'E'};
    private static final byte[] SMTPUTF8 = {'S', 'M', 'T', 'P', 'U', 'T', 'F', '8'};
    private static final byte[] AUTH = {'A', 'U', 'T', 'H'};
    private static final byte[] POSTMASTER = {'P', 'O', 'S', 'T', 'M', 'A', 'S', 'T', 'E', 'R'};
    private static final byte[] IPV6 = {'I', 'P', 'V', '6', ':'};
    private static final byte[] LAST = {'L', 'A', 'S', 'T'};
    private static final byte[] RET = {'R', 'E', 'T'};
    private static final byte[] ENVID = {'E', 'N', 'V', 'I', 'D'};
    private static final byte[] NOTIFY = {'N', 'O', 'T', 'I', 'F', 'Y'};
    private static final byte[] ORCPT = {'O', 'R', 'C', 'P', 'T'};
    private static final byte[] FULL = {'F', 'U', 'L', 'L'};
    private static final byte[] HDRS = {'H', 'D', 'R', 'S'};

    private int pathStart;
    private int pathEnd;
    private boolean nullPath;
    private boolean postmaster;
    private int domainStart;
    private long size;
    private boolean body8bit;
    private boolean bodySeen;
    private boolean smtputf8;
    private boolean transactionSmtputf8;
    private boolean eightBitInPath;
    private long bdatSize;
    private boolean bdatLast;
    private int ret;
    private int envidStart;
    private int envidEnd;
    private int notify;
    private int orcptStart;
    private int orcptEnd;
    /** Parse cursor shared by the private steps. */
    private int cursor;

    /**
     * Parses the argument of MAIL, e.g. {@code FROM:<a@b.c> SIZE=100 BODY=8BITMIME}; spaces after the colon are
     * accepted, as Postfix does. On OK, {@link #smtputf8()} also becomes the transaction's SMTPUTF8 state used by
     * {@link #parseRcpt(ByteBuffer, int, int)}; on any error that state is cleared.
     */
    public int parseMail(final ByteBuffer buf, final int start, final int end)
    {
        clear();
        transactionSmtputf8 = false;
        int result = parse(buf, start, end, FROM, true);
        if (result == OK)
        {
            result = parseParams(buf, end, true);
        }
        if (result == OK && eightBitInPath && !smtputf8)
        {
            result = NEEDS_SMTPUTF8;
        }
        transactionSmtputf8 = result == OK && smtputf8;
        return result;
    }

    /**
     * Parses the argument of RCPT, e.g. {@code TO:<a@b.c>}, allowing non-ASCII addresses if the last successful
     * {@link #parseMail} on this instance carried SMTPUTF8 (see {@link #resetTransaction()}).
     */
    public int parseRcpt(final ByteBuffer buf, final int start, final int end)
    {
        return parseRcpt(buf, start, end, transactionSmtputf8);
    }

    /**
     * Parses the argument of RCPT; {@code smtputf8Transaction} says whether MAIL carried SMTPUTF8.
     * {@code <postmaster>} without a domain is accepted (RFC 5321 §4.1.1.3); {@code <>} is not.
     */
    public int parseRcpt(final ByteBuffer buf, final int start, final int end, final boolean smtputf8Transaction)
    {
        clear();
        int result = parse(buf, start, end, TO, false);
        if (result == OK)
        {
            result = parseParams(buf, end, false);
        }
        if (result == OK && eightBitInPath && !smtputf8Transaction)
        {
            result = NEEDS_SMTPUTF8;
        }
        smtputf8 = smtputf8Transaction;
        return result;
    }

    /** Forgets the transaction's SMTPUTF8 state (RSET, end of transaction). */
    public void resetTransaction()
    {
        transactionSmtputf8 = false;
    }

    /**
     * Parses the argument of BDAT (RFC 3030 §3): {@code chunk-size [SP "LAST"]}, LAST in any case.
     *
     * @return {@link #OK} with {@link #bdatSize()} and {@link #bdatLast()} set, or {@link #SYNTAX_ARGS}.
     */
    public int parseBdat(final ByteBuffer buf, final int start, final int end)
    {
        bdatSize = -1;
        bdatLast = false;
        int p = start;
        while (p < end && isDigit(buf.get(p)))
        {
            p++;
        }
        final long chunkSize = parseDecimal(buf, start, p);
        if (chunkSize < 0)
        {
            return SYNTAX_ARGS;
        }
        if (p < end && buf.get(p) != ' ')
        {
            return SYNTAX_ARGS;
        }
        p = skipSpaces(buf, p, end);
        boolean last = false;
        if (p < end)
        {
            if (p + LAST.length > end || !equalsIgnoreCase(buf, p, LAST))
            {
                return SYNTAX_ARGS;
            }
            p = skipSpaces(buf, p + LAST.length, end);
            if (p != end)
            {
                return SYNTAX_ARGS;
            }
            last = true;
        }
        bdatSize = chunkSize;
        bdatLast = last;
        return OK;
    }

    /**
     * The chunk size of a BDAT argument {@code buf[start, end)}, or -1 if the argument is malformed
     * (see {@link #parseBdat}).
     */
    public static long parseBdatSize(final ByteBuffer buf, final int start, final int end)
    {
        int p = start;
        while (p < end && isDigit(buf.get(p)))
        {
            p++;
        }
        final long chunkSize = parseDecimal(buf, start, p);
        if (chunkSize < 0)
        {
            return -1;
        }
        p = skipSpaces(buf, p, end);
        if (p == end)
        {
            return chunkSize;
        }
        if (p == start || buf.get(p - 1) != ' ' || p + LAST.length > end || !equalsIgnoreCase(buf, p, LAST))
        {
            return -1;
        }
        return skipSpaces(buf, p + LAST.length, end) == end ? chunkSize : -1;
    }

    /** Start of the address inside the angle brackets, source route stripped. */
    public int pathStart()
    {
        return pathStart;
    }

    /** End (exclusive) of the address; equals {@link #pathStart()} for {@code <>}. */
    public int pathEnd()
    {
        return pathEnd;
    }

    /** The null reverse path {@code <>} (MAIL only). */
    public boolean isNullPath()
    {
        return nullPath;
    }

    /** RCPT {@code <postmaster>} without a domain (any case). */
    public boolean isPostmaster()
    {
        return postmaster;
    }

    /** Index just after the last '@' of the address, or -1 if it has no domain. */
    public int domainStart()
    {
        return domainStart;
    }

    /** SIZE= value (RFC 1870), or -1 if absent. */
    public long size()
    {
        return size;
    }

    /** BODY=8BITMIME was given (RFC 6152). */
    public boolean body8bit()
    {
        return body8bit;
    }

    /** MAIL: SMTPUTF8 was given; RCPT: the transaction allows non-ASCII addresses. */
    public boolean smtputf8()
    {
        return smtputf8;
    }

    /** MAIL: RET= as {@link DsnParameters#RET_FULL} or {@link DsnParameters#RET_HDRS}; {@code RET_NONE} if absent. */
    public int ret()
    {
        return ret;
    }

    /** MAIL: start of the ENVID= value (xtext, still encoded), or -1 if absent. */
    public int envidStart()
    {
        return envidStart;
    }

    /** MAIL: end (exclusive) of the ENVID= value. */
    public int envidEnd()
    {
        return envidEnd;
    }

    /** RCPT: NOTIFY= as {@code DsnParameters.NOTIFY_*} bits; 0 if absent. */
    public int notifyBits()
    {
        return notify;
    }

    /** RCPT: start of the ORCPT= value ({@code addr-type ";" xtext}, still encoded), or -1 if absent. */
    public int orcptStart()
    {
        return orcptStart;
    }

    /** RCPT: end (exclusive) of the ORCPT= value. */
    public int orcptEnd()
    {
        return orcptEnd;
    }

    /** BDAT chunk size after {@link #parseBdat}, or -1. */
    public long bdatSize()
    {
        return bdatSize;
    }

    /** BDAT carried LAST. */
    public boolean bdatLast()
    {
        return bdatLast;
    }

    private void clear()
    {
        pathStart = 0;
        pathEnd = 0;
        nullPath = false;
        postmaster = false;
        domainStart = -1;
        size = -1;
        body8bit = false;
        bodySeen = false;
        smtputf8 = false;
        eightBitInPath = false;
        ret = DsnParameters.RET_NONE;
        envidStart = -1;
        envidEnd = -1;
        notify = 0;
        orcptStart = -1;
        orcptEnd = -1;
    }

    private int parse(final ByteBuffer buf, final int start, final int end, final byte[] keyword, final boolean mail)
    {
        if (end - start < keyword.length || !equalsIgnoreCase(buf, start, keyword))
        {
            return SYNTAX_ARGS;
        }
        final int p = skipSpaces(buf, start + keyword.length, end);
        if (p == end)
        {
            return SYNTAX_ARGS;
        }
        return parsePath(buf, p, end, mail);
    }

    /** RFC 5321 §4.1.2 Path / Reverse-path / Forward-path; leaves {@link #cursor} after the '&gt;'. */
    private int parsePath(final ByteBuffer buf, final int open, final int end, final boolean mail)
    {
        if (buf.get(open) != '<')
        {
            return SYNTAX_PATH;
        }
        int p = open + 1;
        if (p < end && buf.get(p) == '>')
        {
            if (!mail)
            {
                return SYNTAX_PATH;
            }
            nullPath = true;
            pathStart = p;
            pathEnd = p;
            cursor = p + 1;
            return OK;
        }

        if (p < end && buf.get(p) == '@')
        {
            // A-d-l: "@" Domain *("," "@" Domain) ":" -- accepted and ignored (RFC 5321 §4.1.2, §C).
            while (true)
            {
                p = parseDomain(buf, p + 1, end, false);
                if (p < 0 || p >= end)
                {
                    return SYNTAX_PATH;
                }
                final byte b = buf.get(p);
                if (b == ':')
                {
                    p++;
                    break;
                }
                if (b != ',' || p + 1 >= end || buf.get(p + 1) != '@')
                {
                    return SYNTAX_PATH;
                }
                p++;
            }
        }

        pathStart = p;
        p = parseLocalPart(buf, p, end);
        if (p < 0 || p >= end)
        {
            return SYNTAX_PATH;
        }
        final int localEnd = p;
        if (buf.get(p) == '@')
        {
            domainStart = p + 1;
            p = parseDomain(buf, p + 1, end, true);
            if (p < 0 || p >= end)
            {
                return SYNTAX_PATH;
            }
        }
        else if (!mail && localEnd - pathStart == POSTMASTER.length && equalsIgnoreCase(buf, pathStart, POSTMASTER))
        {
            postmaster = true;
        }
        else
        {
            return SYNTAX_PATH;
        }
        if (buf.get(p) != '>')
        {
            return SYNTAX_PATH;
        }
        pathEnd = p;
        cursor = p + 1;

        if (eightBitInPath && !isUtf8(buf, pathStart, pathEnd))
        {
            return SYNTAX_PATH;
        }
        if (localEnd - pathStart > MAX_LOCAL_PART_LENGTH ||
            (domainStart >= 0 && pathEnd - domainStart > MAX_DOMAIN_LENGTH) ||
            cursor - open > MAX_PATH_LENGTH)
        {
            return ADDRESS_TOO_LONG;
        }
        return OK;
    }

    /** RFC 5321 Local-part = Dot-string / Quoted-string, with UTF-8 (RFC 6531 §3.3); returns the end or -1. */
    private int parseLocalPart(final ByteBuffer buf, final int start, final int end)
    {
        int p = start;
        if (p < end && buf.get(p) == '"')
        {
            p++;
            while (p < end)
            {
                final byte b = buf.get(p);
                if (b == '"')
                {
                    return p + 1;
                }
                if (b == '\\')
                {
                    // quoted-pairSMTP = %d92 %d32-126
                    if (++p >= end || buf.get(p) < 32 || buf.get(p) > 126)
                    {
                        return -1;
                    }
                }
                else if (b < 0)
                {
                    eightBitInPath = true;
                }
                else if (b < 32 || b > 126)
                {
                    return -1;
                }
                p++;
            }
            return -1;
        }

        boolean atomStart = true;
        while (p < end)
        {
            final byte b = buf.get(p);
            if (b < 0)
            {
                eightBitInPath = true;
            }
            else if (b == '.')
            {
                if (atomStart)
                {
                    return -1;
                }
                atomStart = true;
                p++;
                continue;
            }
            else if (!ATEXT[b])
            {
                break;
            }
            atomStart = false;
            p++;
        }
        return atomStart ? -1 : p;
    }

    /** RFC 5321 Domain, or address-literal if allowed; returns the end or -1. */
    private int parseDomain(final ByteBuffer buf, final int start, final int end, final boolean allowLiteral)
    {
        if (start >= end)
        {
            return -1;
        }
        if (buf.get(start) == '[')
        {
            if (!allowLiteral)
            {
                return -1;
            }
            int close = start + 1;
            while (close < end && buf.get(close) != ']')
            {
                close++;
            }
            if (close >= end)
            {
                return -1;
            }
            final int from = start + 1;
            final boolean valid = close - from > IPV6.length && equalsIgnoreCase(buf, from, IPV6) ?
                isIpv6(buf, from + IPV6.length, close) : isIpv4(buf, from, close);
            return valid ? close + 1 : -1;
        }

        int p = start;
        while (true)
        {
            final int labelStart = p;
            while (p < end)
            {
                final byte b = buf.get(p);
                if (b < 0)
                {
                    eightBitInPath = true;
                }
                else if (!isAlnum(b) && b != '-')
                {
                    break;
                }
                p++;
            }
            final int length = p - labelStart;
            if (length == 0 || length > MAX_LABEL_LENGTH || buf.get(labelStart) == '-' || buf.get(p - 1) == '-')
            {
                return -1;
            }
            if (p < end && buf.get(p) == '.')
            {
                p++;
                continue;
            }
            return p;
        }
    }

    /** (SP esmtp-param)* after the path (RFC 5321 §4.1.2). */
    private int parseParams(final ByteBuffer buf, final int end, final boolean mail)
    {
        int p = cursor;
        while (true)
        {
            if (p == end)
            {
                return OK;
            }
            if (buf.get(p) != ' ')
            {
                return SYNTAX_ARGS;
            }
            p = skipSpaces(buf, p, end);
            if (p == end)
            {
                return OK;
            }
            final int keywordStart = p;
            if (!isAlnum(buf.get(p)))
            {
                return SYNTAX_ARGS;
            }
            while (p < end && (isAlnum(buf.get(p)) || buf.get(p) == '-'))
            {
                p++;
            }
            final int keywordEnd = p;
            int valueStart = -1;
            if (p < end && buf.get(p) == '=')
            {
                valueStart = ++p;
                byte b;
                while (p < end && (b = buf.get(p)) > 32 && b < 127 && b != '=')
                {
                    p++;
                }
            }
            if (p < end && buf.get(p) != ' ')
            {
                return SYNTAX_ARGS;
            }
            final int result = mail ?
                mailParam(buf, keywordStart, keywordEnd, valueStart, p) :
                rcptParam(buf, keywordStart, keywordEnd, valueStart, p);
            if (result != OK)
            {
                return result;
            }
        }
    }

    private int mailParam(
        final ByteBuffer buf, final int keyStart, final int keyEnd, final int valueStart, final int valueEnd)
    {
        final int keyLength = keyEnd - keyStart;
        final boolean hasValue = valueStart >= 0 && valueEnd > valueStart;
        if (keyLength == SIZE.length && equalsIgnoreCase(buf, keyStart, SIZE))
        {
            if (!hasValue || size >= 0)
            {
                return BAD_PARAM_VALUE;
            }
            size = parseDecimal(buf, valueStart, valueEnd);
            return size < 0 ? BAD_PARAM_VALUE : OK;
        }
        if (keyLength == BODY.length && equalsIgnoreCase(buf, keyStart, BODY))
        {
            if (!hasValue || bodySeen)
            {
                return BAD_PARAM_VALUE;
            }
            bodySeen = true;
            final int valueLength = valueEnd - valueStart;
            if (valueLength == SEVEN_BIT.length && equalsIgnoreCase(buf, valueStart, SEVEN_BIT))
            {
                return OK;
            }
            if (valueLength == EIGHT_BIT_MIME.length && equalsIgnoreCase(buf, valueStart, EIGHT_BIT_MIME))
            {
                body8bit = true;
                return OK;
            }
            return BAD_PARAM_VALUE;
        }
        if (keyLength == SMTPUTF8.length && equalsIgnoreCase(buf, keyStart, SMTPUTF8))
        {
            if (valueStart >= 0 || smtputf8)
            {
                return BAD_PARAM_VALUE;
            }
            smtputf8 = true;
            return OK;
        }
        if (keyLength == AUTH.length && equalsIgnoreCase(buf, keyStart, AUTH))
        {
            return hasValue ? OK : BAD_PARAM_VALUE;
        }
        if (keyLength == RET.length && equalsIgnoreCase(buf, keyStart, RET))
        {
            // RFC 3461 §4.3: RET=FULL / RET=HDRS, any case, once
            if (!hasValue || ret != DsnParameters.RET_NONE)
            {
                return BAD_PARAM_VALUE;
            }
            final int valueLength = valueEnd - valueStart;
            if (valueLength == FULL.length && equalsIgnoreCase(buf, valueStart, FULL))
            {
                ret = DsnParameters.RET_FULL;
                return OK;
            }
            if (valueLength == HDRS.length && equalsIgnoreCase(buf, valueStart, HDRS))
            {
                ret = DsnParameters.RET_HDRS;
                return OK;
            }
            return BAD_PARAM_VALUE;
        }
        if (keyLength == ENVID.length && equalsIgnoreCase(buf, keyStart, ENVID))
        {
            // RFC 3461 §4.4: xtext of at most 100 characters; decoded, printable ASCII (Postfix: allprint)
            if (!hasValue || envidStart >= 0 || valueEnd - valueStart > DsnParameters.MAX_ENVID_LENGTH ||
                !DsnParameters.isXtext(buf, valueStart, valueEnd) ||
                !DsnParameters.decodesPrintable(buf, valueStart, valueEnd, true))
            {
                return BAD_PARAM_VALUE;
            }
            envidStart = valueStart;
            envidEnd = valueEnd;
            return OK;
        }
        return UNKNOWN_PARAM;
    }

    private int rcptParam(
        final ByteBuffer buf, final int keyStart, final int keyEnd, final int valueStart, final int valueEnd)
    {
        final int keyLength = keyEnd - keyStart;
        final boolean hasValue = valueStart >= 0 && valueEnd > valueStart;
        if (keyLength == NOTIFY.length && equalsIgnoreCase(buf, keyStart, NOTIFY))
        {
            if (!hasValue || notify != 0)
            {
                return BAD_PARAM_VALUE;
            }
            notify = DsnParameters.parseNotify(buf, valueStart, valueEnd);
            return notify == 0 ? BAD_PARAM_VALUE : OK;
        }
        if (keyLength == ORCPT.length && equalsIgnoreCase(buf, keyStart, ORCPT))
        {
            if (!hasValue || orcptStart >= 0 || valueEnd - valueStart > DsnParameters.MAX_ORCPT_LENGTH)
            {
                return BAD_PARAM_VALUE;
            }
            // RFC 3461 §4.2: addr-type ";" xtext, addr-type an atom; the address must not be empty nor decode to
            // control characters (it becomes a line of the DSN)
            int p = valueStart;
            while (p < valueEnd && buf.get(p) >= 0 && ATEXT[buf.get(p)])
            {
                p++;
            }
            if (p == valueStart || p >= valueEnd - 1 || buf.get(p) != ';' ||
                !DsnParameters.isXtext(buf, p + 1, valueEnd) ||
                !DsnParameters.decodesPrintable(buf, p + 1, valueEnd, false))
            {
                return BAD_PARAM_VALUE;
            }
            orcptStart = valueStart;
            orcptEnd = valueEnd;
            return OK;
        }
        return UNKNOWN_PARAM;
    }
}
