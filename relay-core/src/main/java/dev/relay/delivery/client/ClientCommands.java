package dev.relay.delivery.client;

import java.nio.charset.StandardCharsets;

/**
 * The wire form of the commands {@link SmtpClientSession} sends (RFC 5321 §4.1.1, with the MAIL and RCPT parameters
 * of SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, DSN RFC 3461 and BDAT RFC 3030): fixed commands whole,
 * the others as the pieces the session joins into its reused command array.
 * <p>
 * Constants, made once at class load; {@link #ehlo} and {@link #helo} allocate, once per connection.
 */
final class ClientCommands
{
    static final byte[] END_DATA = ascii(".\r\n");
    static final byte[] CRLF_END_DATA = ascii("\r\n.\r\n");
    static final byte[] DATA = ascii("DATA\r\n");
    static final byte[] RSET = ascii("RSET\r\n");
    static final byte[] QUIT = ascii("QUIT\r\n");
    static final byte[] STARTTLS = ascii("STARTTLS\r\n");
    static final byte[] MAIL_FROM = ascii("MAIL FROM:<");
    static final byte[] RCPT_TO = ascii("RCPT TO:<");
    static final byte[] ANGLE_CRLF = ascii(">\r\n");
    static final byte[] SIZE_PARAMETER = ascii(" SIZE=");
    static final byte[] BODY_8BITMIME = ascii(" BODY=8BITMIME");
    static final byte[] SMTPUTF8 = ascii(" SMTPUTF8");
    static final byte[] RET_FULL = ascii(" RET=FULL");
    static final byte[] RET_HDRS = ascii(" RET=HDRS");
    static final byte[] ENVID = ascii(" ENVID=");
    static final byte[] ORCPT = ascii(" ORCPT=");
    static final byte[] CRLF = ascii("\r\n");
    static final byte[] BDAT = ascii("BDAT ");
    static final byte[] LAST = ascii(" LAST\r\n");

    private ClientCommands()
    {
    }

    /** {@code EHLO name CRLF}. */
    static byte[] ehlo(final String heloName)
    {
        return ascii("EHLO " + heloName + "\r\n");
    }

    /** {@code HELO name CRLF}, after a peer refused EHLO (RFC 5321 §3.2). */
    static byte[] helo(final String heloName)
    {
        return ascii("HELO " + heloName + "\r\n");
    }

    private static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.US_ASCII);
    }
}
