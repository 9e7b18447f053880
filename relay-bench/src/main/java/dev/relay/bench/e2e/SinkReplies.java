package dev.relay.bench.e2e;

/**
 * The fixed replies of {@link BenchSink}, pre-encoded (250 to every envelope command in order, no policy; the
 * errors Postfix's smtpd gives a confused client).
 * <p>
 * Constants; any thread.
 */
final class SinkReplies
{
    static final byte[] GREETING = BenchMessages.ascii("220 bench-sink ESMTP\r\n");
    static final byte[] EHLO = BenchMessages.ascii(
        "250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n");
    static final byte[] EHLO_STARTTLS = BenchMessages.ascii("250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
        + "250-SIZE\r\n250-CHUNKING\r\n250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n");
    static final byte[] TLS_READY = BenchMessages.ascii("220 2.0.0 Ready to start TLS\r\n");
    static final byte[] HELO = BenchMessages.ascii("250 bench-sink\r\n");
    static final byte[] MAIL_OK = BenchMessages.ascii("250 2.1.0 Ok\r\n");
    static final byte[] RCPT_OK = BenchMessages.ascii("250 2.1.5 Ok\r\n");
    static final byte[] OK = BenchMessages.ascii("250 2.0.0 Ok\r\n");
    static final byte[] QUEUED = BenchMessages.ascii("250 2.0.0 Ok: queued\r\n");
    static final byte[] CHUNK_OK = BenchMessages.ascii("250 2.0.0 Ok: chunk received\r\n");
    static final byte[] GO_AHEAD = BenchMessages.ascii("354 End data with <CR><LF>.<CR><LF>\r\n");
    static final byte[] BYE = BenchMessages.ascii("221 2.0.0 Bye\r\n");
    static final byte[] NESTED = BenchMessages.ascii("503 5.5.1 Error: nested MAIL command\r\n");
    static final byte[] NEED_MAIL = BenchMessages.ascii("503 5.5.1 Error: need MAIL command\r\n");
    static final byte[] NEED_RCPT = BenchMessages.ascii("503 5.5.1 Error: need RCPT command\r\n");
    static final byte[] BAD_BDAT = BenchMessages.ascii("501 5.5.4 Syntax: BDAT size [LAST]\r\n");
    static final byte[] UNKNOWN = BenchMessages.ascii("502 5.5.2 Error: command not recognized\r\n");
    static final byte[] TOO_LONG = BenchMessages.ascii("500 5.5.2 Error: line too long\r\n");

    private SinkReplies()
    {
    }
}
