package dev.relay.delivery.client;

import dev.relay.smtp.DsnParameters;

/**
 * One message as the client session sends it: envelope, trace header and body. Implemented by the spool/delivery
 * side; read on the client connection's loop thread only. Addresses are the bytes between the angle brackets
 * (ASCII, or UTF-8 when {@link #needsSmtpUtf8()}); an empty reverse path is the null sender {@code <>}.
 */
public interface OutboundMessage
{
    byte[] reversePath();

    /** Recipients for this transaction, at most {@link ClientSettings#maxRecipientsPerTransaction()}. */
    int recipientCount();

    byte[] recipient(int index);

    /** The {@code Received:} header in wire form, ending with CRLF; written before the body. */
    byte[] receivedHeader();

    /** Bytes of the stored body (wire form when dot-stuffed, exact raw size otherwise; BDAT relies on it). */
    long bodySize();

    /** True when the body is in DATA wire form (dot-stuffed, CRLF); false for a raw body received with BDAT. */
    boolean isDotStuffed();

    /** True when the content has 8-bit bytes (BODY=8BITMIME, RFC 6152). */
    boolean isEightBit();

    /** True when the envelope or headers need SMTPUTF8 (RFC 6531). */
    boolean needsSmtpUtf8();

    /** Opens the body for one attempt; called at most once per transaction, after the peer agreed to take it. */
    BodySource openBody();

    /** RET= of the original MAIL ({@code DsnParameters.RET_*}), passed on to a peer that offers DSN (RFC 3461). */
    default int dsnRet()
    {
        return DsnParameters.RET_NONE;
    }

    /** ENVID= of the original MAIL as received (xtext), or null; passed on to a peer that offers DSN. */
    default byte[] envelopeId()
    {
        return null;
    }

    /** NOTIFY bits of recipient {@code index} ({@code DsnParameters.NOTIFY_*}), 0 when not given. */
    default int notify(final int index)
    {
        return 0;
    }

    /** ORCPT of recipient {@code index} as received ({@code addr-type ";" xtext}), or null. */
    default byte[] originalRecipient(final int index)
    {
        return null;
    }

    /** Size the peer's SIZE limit is compared with, and what MAIL FROM's SIZE= says (RFC 1870). */
    default long messageSize()
    {
        return receivedHeader().length + bodySize();
    }
}
