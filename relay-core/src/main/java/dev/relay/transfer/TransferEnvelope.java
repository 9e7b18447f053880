package dev.relay.transfer;

import dev.relay.smtp.DsnParameters;
import dev.relay.smtp.InboundMessage;
import dev.relay.spool.SpooledMessage;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/**
 * What a spooled message becomes on the wire of a transfer, given what the peer offered: the MAIL and RCPT commands
 * with their parameters as the message was received (RFC 1870 SIZE, RFC 6152 BODY=8BITMIME, RFC 6531 SMTPUTF8,
 * RFC 3461 RET, ENVID, NOTIFY, ORCPT), the header fields put before the stored body, and why a peer cannot take a
 * message as it is.
 * <p>
 * Stateless; any thread; allocates its strings.
 */
final class TransferEnvelope
{
    /** The header field that names the node a message was transferred from and its queue id there. */
    static final String TRACE_HEADER = "X-Relay-Transferred-From";
    private static final DateTimeFormatter DATE =
        DateTimeFormatter.ofPattern("EEE, d MMM yyyy HH:mm:ss Z", Locale.ROOT).withZone(ZoneOffset.UTC);

    private TransferEnvelope()
    {
    }

    static boolean eightBit(final SpooledMessage message)
    {
        return (message.flags() & (InboundMessage.FLAG_8BIT_CONTENT | InboundMessage.FLAG_8BITMIME)) != 0;
    }

    static boolean smtpUtf8(final SpooledMessage message)
    {
        return (message.flags() & InboundMessage.FLAG_SMTPUTF8) != 0;
    }

    /** A BDAT-received body: spooled raw, not dot-stuffed. */
    static boolean raw(final SpooledMessage message)
    {
        return (message.flags() & InboundMessage.FLAG_BDAT) != 0;
    }

    /** Why {@code peer} cannot take {@code message} of {@code size} octets as it is, or null when it can. */
    static String cannotTake(final SpooledMessage message, final long size, final TransferClient peer)
    {
        if (peer.maxSize() > 0 && size > peer.maxSize())
        {
            return "its size, " + size + " bytes, is over the SIZE limit of " + peer.peer() + " (" + peer.maxSize() +
                ")";
        }
        if (eightBit(message) && !peer.eightBitMime())
        {
            return "it has 8-bit content and " + peer.peer() + " does not offer 8BITMIME";
        }
        if (smtpUtf8(message) && !peer.smtpUtf8())
        {
            return "it needs SMTPUTF8 and " + peer.peer() + " does not offer it";
        }
        return null;
    }

    static String mail(final SpooledMessage message, final long size, final TransferClient peer)
    {
        final StringBuilder mail = new StringBuilder("MAIL FROM:<")
            .append(new String(message.reversePath(), StandardCharsets.UTF_8)).append('>');
        if (peer.offersSize())
        {
            mail.append(" SIZE=").append(size);
        }
        if (eightBit(message))
        {
            mail.append(" BODY=8BITMIME");
        }
        if (smtpUtf8(message))
        {
            mail.append(" SMTPUTF8");
        }
        if (peer.dsn())
        {
            // RFC 3461 §5.2.1: passed on as received (ENVID still xtext)
            if (message.dsnRet() != DsnParameters.RET_NONE)
            {
                mail.append(" RET=").append(DsnParameters.retText(message.dsnRet()));
            }
            if (message.envelopeId() != null)
            {
                mail.append(" ENVID=").append(new String(message.envelopeId(), StandardCharsets.US_ASCII));
            }
        }
        return mail.toString();
    }

    static String rcpt(final SpooledMessage message, final int index, final TransferClient peer)
    {
        final StringBuilder rcpt = new StringBuilder("RCPT TO:<").append(recipient(message, index)).append('>');
        if (peer.dsn())
        {
            // RFC 3461 §5.2.1: NOTIFY and ORCPT unchanged
            if (message.notify(index) != 0)
            {
                rcpt.append(" NOTIFY=").append(DsnParameters.notifyText(message.notify(index)));
            }
            if (message.originalRecipient(index) != null)
            {
                rcpt.append(" ORCPT=").append(new String(message.originalRecipient(index), StandardCharsets.UTF_8));
            }
        }
        return rcpt.toString();
    }

    /** Whether the sender asked for anything of DSN (RFC 3461): RET, ENVID, or a NOTIFY or ORCPT. */
    static boolean asksForDsn(final SpooledMessage message)
    {
        if (message.dsnRet() != DsnParameters.RET_NONE || message.envelopeId() != null)
        {
            return true;
        }
        for (int i = 0; i < message.recipients().size(); i++)
        {
            if (message.notify(i) != 0 || message.originalRecipient(i) != null)
            {
                return true;
            }
        }
        return false;
    }

    /**
     * {@link #TRACE_HEADER} naming {@code hostname} and the message's queue id, then the relay's stored
     * {@code Received:}: the bytes that go before the stored body.
     */
    static byte[] traceHeaders(final String hostname, final SpooledMessage message, final Instant now)
    {
        final byte[] trace = (TRACE_HEADER + ": " + hostname + "; queue-id=" + message.queueIdText() + "; " +
            DATE.format(now) + "\r\n").getBytes(StandardCharsets.US_ASCII);
        final byte[] received = message.receivedHeader();
        final byte[] headers = new byte[trace.length + received.length];
        System.arraycopy(trace, 0, headers, 0, trace.length);
        System.arraycopy(received, 0, headers, trace.length, received.length);
        return headers;
    }

    static String recipient(final SpooledMessage message, final int index)
    {
        return new String(message.recipients().get(index), StandardCharsets.UTF_8);
    }
}
