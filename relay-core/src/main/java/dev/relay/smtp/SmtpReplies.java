package dev.relay.smtp;

import java.nio.charset.StandardCharsets;

/**
 * Pre-encoded replies (RFC 5321 §4.2, enhanced status codes per RFC 3463 / RFC 2034). Fixed replies are built
 * once per server (they contain the host name or limits) and written as they are.
 */
public final class SmtpReplies
{
    /** The longest reply a single command can produce; a session handles a command only with this much room. */
    public static final int MAX_REPLY_BYTES = 1024;

    static final byte[] OK = ascii("250 2.0.0 Ok\r\n");
    static final byte[] OK_SENDER = ascii("250 2.1.0 Ok\r\n");
    static final byte[] OK_RECIPIENT = ascii("250 2.1.5 Ok\r\n");
    static final byte[] START_DATA = ascii("354 End data with <CR><LF>.<CR><LF>\r\n");
    static final byte[] BYE = ascii("221 2.0.0 Bye\r\n");
    static final byte[] VRFY = ascii("252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n");
    static final byte[] HELP = ascii(
        "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n");
    static final byte[] QUEUED_PREFIX = ascii("250 2.0.0 Ok: queued as ");

    static final byte[] SEND_HELO_FIRST = ascii("503 5.5.1 Error: send HELO/EHLO first\r\n");
    static final byte[] NESTED_MAIL = ascii("503 5.5.1 Error: nested MAIL command\r\n");
    static final byte[] NEED_MAIL = ascii("503 5.5.1 Error: need MAIL command\r\n");
    static final byte[] NEED_RCPT = ascii("503 5.5.1 Error: need RCPT command\r\n");
    static final byte[] DATA_AFTER_BDAT = ascii("503 5.5.1 Error: DATA not allowed after BDAT\r\n");
    static final byte[] BDAT_IN_PROGRESS = ascii("503 5.5.1 Error: command not allowed during a BDAT transaction\r\n");
    static final byte[] UNKNOWN_COMMAND = ascii("500 5.5.1 Error: command not recognized\r\n");
    static final byte[] NOT_IMPLEMENTED = ascii("502 5.5.1 Error: command not implemented\r\n");
    static final byte[] LINE_TOO_LONG = ascii("500 5.5.6 Error: command line too long\r\n");
    static final byte[] BARE_LF_COMMAND =
        ascii("500 5.5.2 Error: bare <LF> received; lines must end with <CR><LF>\r\n");
    static final byte[] BAD_BYTES_COMMAND = ascii("500 5.5.2 Error: NUL or bare <CR> in command\r\n");
    static final byte[] HELO_SYNTAX = ascii("501 5.5.4 Syntax: EHLO hostname\r\n");
    static final byte[] MAIL_SYNTAX = ascii("501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    static final byte[] RCPT_SYNTAX = ascii("501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    static final byte[] NO_ARGUMENTS = ascii("501 5.5.4 Syntax error: no arguments allowed\r\n");
    static final byte[] BDAT_SYNTAX = ascii("501 5.5.4 Syntax: BDAT size [LAST]\r\n");
    static final byte[] BAD_SENDER = ascii("501 5.1.7 Bad sender address syntax\r\n");
    static final byte[] BAD_RECIPIENT = ascii("501 5.1.3 Bad recipient address syntax\r\n");
    static final byte[] ADDRESS_TOO_LONG = ascii("501 5.1.3 Error: address too long (RFC 5321 section 4.5.3.1)\r\n");
    static final byte[] UNKNOWN_PARAMETER = ascii("555 5.5.4 Error: unsupported MAIL/RCPT parameter\r\n");
    static final byte[] BAD_PARAMETER = ascii("501 5.5.4 Error: bad MAIL/RCPT parameter value\r\n");
    static final byte[] NEEDS_SMTPUTF8 = ascii("553 5.6.7 Error: non-ASCII address requires SMTPUTF8\r\n");
    static final byte[] SIZE_EXCEEDED_DECLARED = ascii("552 5.3.4 Error: message size exceeds fixed limit\r\n");
    static final byte[] SIZE_EXCEEDED = ascii("552 5.3.4 Error: message size exceeds fixed limit\r\n");
    static final byte[] TOO_MANY_RECIPIENTS = ascii("452 4.5.3 Error: too many recipients\r\n");
    static final byte[] TOO_MUCH_MAIL = ascii("450 4.7.1 Error: too much mail from your address, try again later\r\n");
    static final byte[] RELAY_DENIED = ascii("554 5.7.1 Relay access denied\r\n");
    static final byte[] STORAGE = ascii("452 4.3.1 Insufficient system storage\r\n");
    static final byte[] BARE_LINE_END_DATA = ascii(
        "550 5.6.0 Message refused: bare <LF> or <CR> in message content (RFC 5321 section 2.3.8)\r\n");
    static final byte[] NUL_DATA = ascii("550 5.6.0 Message refused: NUL byte in message content\r\n");
    static final byte[] TOO_MANY_HOPS = ascii("554 5.4.6 Error: too many hops (mail loop?)\r\n");

    // RFC 3207 STARTTLS
    static final byte[] READY_FOR_TLS = ascii("220 2.0.0 Ready to start TLS\r\n");
    static final byte[] TLS_ALREADY_ACTIVE = ascii("554 5.5.1 Error: TLS already active\r\n");
    static final byte[] TLS_UNAVAILABLE = ascii("454 4.7.0 TLS not available due to local problem\r\n");
    static final byte[] STARTTLS_SYNTAX = ascii("501 5.5.4 Syntax: STARTTLS\r\n");
    static final byte[] MUST_STARTTLS = ascii("530 5.7.0 Must issue a STARTTLS command first\r\n");

    // RFC 4954 AUTH
    static final byte[] AUTH_REQUIRED = ascii("530 5.7.0 Authentication required\r\n");
    static final byte[] AUTH_NOT_ENABLED = ascii("503 5.5.1 Error: authentication not enabled\r\n");
    static final byte[] AUTH_NEEDS_TLS =
        ascii("538 5.7.11 Encryption required for requested authentication mechanism\r\n");
    static final byte[] AUTH_ALREADY = ascii("503 5.5.1 Error: already authenticated\r\n");
    static final byte[] AUTH_IN_TRANSACTION = ascii("503 5.5.1 Error: MAIL transaction in progress\r\n");
    static final byte[] AUTH_SYNTAX = ascii("501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
    static final byte[] AUTH_MECHANISM = ascii("504 5.5.4 Unrecognized authentication type\r\n");
    static final byte[] AUTH_BAD_BASE64 = ascii("501 5.5.2 Cannot decode response\r\n");
    static final byte[] AUTH_ABORTED = ascii("501 5.7.0 Authentication aborted\r\n");
    static final byte[] AUTH_OK = ascii("235 2.7.0 Authentication successful\r\n");
    static final byte[] AUTH_FAILED = ascii("535 5.7.8 Authentication credentials invalid\r\n");
    static final byte[] AUTH_TEMPORARY = ascii("454 4.7.0 Temporary authentication failure\r\n");
    static final byte[] AUTH_TOO_MANY_FAILURES =
        ascii("454 4.7.0 Error: too many failed authentications from your address, try again later\r\n");
    static final byte[] AUTH_CHALLENGE_EMPTY = ascii("334 \r\n");
    static final byte[] AUTH_CHALLENGE_USERNAME = ascii("334 VXNlcm5hbWU6\r\n");
    static final byte[] AUTH_CHALLENGE_PASSWORD = ascii("334 UGFzc3dvcmQ6\r\n");

    final byte[] greeting;
    /** The EHLO reply without STARTTLS or AUTH. */
    final byte[] ehlo;
    final byte[] ehloStartTls;
    final byte[] ehloAuth;
    final byte[] ehloStartTlsAuth;
    final byte[] helo;
    final byte[] timeout;
    final byte[] tooManyErrors;
    final byte[] shuttingDown;

    public SmtpReplies(final String hostname, final long maxMessageSize)
    {
        greeting = ascii("220 " + hostname + " ESMTP relay\r\n");
        ehlo = ehlo(hostname, maxMessageSize, false, false);
        ehloStartTls = ehlo(hostname, maxMessageSize, true, false);
        ehloAuth = ehlo(hostname, maxMessageSize, false, true);
        ehloStartTlsAuth = ehlo(hostname, maxMessageSize, true, true);
        helo = ascii("250 " + hostname + "\r\n");
        timeout = ascii("421 4.4.2 " + hostname + " Error: timeout exceeded\r\n");
        tooManyErrors = ascii("421 4.7.0 " + hostname + " Error: too many errors\r\n");
        shuttingDown = ascii("421 4.3.2 " + hostname + " Service shutting down, closing transmission channel\r\n");
    }

    /** The EHLO reply, with STARTTLS (RFC 3207) and AUTH (RFC 4954) when they are offered now. */
    private static byte[] ehlo(final String hostname, final long maxMessageSize, final boolean startTls,
        final boolean auth)
    {
        return ascii("250-" + hostname + "\r\n" +
            "250-PIPELINING\r\n" +
            "250-SIZE " + maxMessageSize + "\r\n" +
            (startTls ? "250-STARTTLS\r\n" : "") +
            (auth ? "250-AUTH PLAIN LOGIN\r\n" : "") +
            "250-8BITMIME\r\n" +
            "250-SMTPUTF8\r\n" +
            "250-CHUNKING\r\n" +
            "250-DSN\r\n" +
            "250 ENHANCEDSTATUSCODES\r\n");
    }

    static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }
}
