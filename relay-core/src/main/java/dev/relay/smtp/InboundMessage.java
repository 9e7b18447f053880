package dev.relay.smtp;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The envelope and trace data of one message being received, owned by one {@link SmtpSession} and reused for
 * each of its transactions. Addresses are copied out of the read buffer once (they outlive it); everything else
 * is primitive.
 * <p>
 * Not thread safe: touched only by the session's loop thread (and by the {@link MessageSink} on that thread).
 */
public final class InboundMessage
{
    public static final int FLAG_8BITMIME = 1;
    public static final int FLAG_SMTPUTF8 = 2;
    /** The body came through BDAT: it is raw, not dot-stuffed. */
    public static final int FLAG_BDAT = 4;
    /** A byte above 0x7F was seen in the body. */
    public static final int FLAG_8BIT_CONTENT = 8;

    private long queueId;
    private String queueIdText;
    private long receivedAtMs;
    private int flags;
    private byte[] reversePath;
    private final List<byte[]> recipients = new ArrayList<>();
    /** DSN (RFC 3461): RET, ENVID (xtext as received) and per recipient NOTIFY bits and ORCPT (xtext as received). */
    private int dsnRet;
    private byte[] envelopeId;
    private byte[] notify = new byte[8];
    private final List<byte[]> originalRecipients = new ArrayList<>();
    private byte[] clientAddress;
    private byte[] heloName;
    private byte[] receivedHeader;
    private long bodyBytes;
    /** Who made the message, as its spool records say ({@code SpoolRecords.ORIGIN_*}): 0, an SMTP client. */
    private byte origin;
    /** Slot for the sink's own per-transaction state (e.g. the spool's open-record bookkeeping). */
    private Object sinkState;
    /** Owned by the session: which session this message belongs to, for commit callbacks. */
    private Object owner;
    /** The SASL mechanism and user name of an authenticated client (for the log), else null. */
    private String authMechanism;
    private String authUser;

    public void reset()
    {
        queueId = 0;
        queueIdText = null;
        receivedAtMs = 0;
        flags = 0;
        reversePath = null;
        recipients.clear();
        dsnRet = DsnParameters.RET_NONE;
        envelopeId = null;
        originalRecipients.clear();
        receivedHeader = null;
        bodyBytes = 0;
        origin = 0;
        sinkState = null;
        authMechanism = null;
        authUser = null;
    }

    public long queueId()
    {
        return queueId;
    }

    /** The queue id as operators see it in logs and {@code spool list}. */
    public String queueIdText()
    {
        if (queueIdText == null)
        {
            queueIdText = QueueIds.format(queueId);
        }
        return queueIdText;
    }

    public void queueId(final long queueId)
    {
        this.queueId = queueId;
        this.queueIdText = null;
    }

    public long receivedAtMs()
    {
        return receivedAtMs;
    }

    public void receivedAtMs(final long receivedAtMs)
    {
        this.receivedAtMs = receivedAtMs;
    }

    public int flags()
    {
        return flags;
    }

    public void addFlags(final int flags)
    {
        this.flags |= flags;
    }

    public boolean isBdat()
    {
        return (flags & FLAG_BDAT) != 0;
    }

    /** The MAIL FROM address without angle brackets; empty for the null reverse path {@code <>}. */
    public byte[] reversePath()
    {
        return reversePath;
    }

    public void reversePath(final byte[] reversePath)
    {
        this.reversePath = reversePath;
    }

    /**
     * RCPT TO addresses without angle brackets, in the order accepted. A recipient added here directly has no DSN
     * parameters; {@link #addRecipient} keeps them.
     */
    public List<byte[]> recipients()
    {
        return recipients;
    }

    /** Adds a recipient with its DSN parameters: NOTIFY bits (0 when absent) and ORCPT as received (or null). */
    public void addRecipient(final byte[] address, final int notifyBits, final byte[] originalRecipient)
    {
        final int index = recipients.size();
        recipients.add(address);
        if (index >= notify.length)
        {
            notify = java.util.Arrays.copyOf(notify, Math.max(notify.length * 2, index + 1));
        }
        while (originalRecipients.size() < index)
        {
            originalRecipients.add(null);
        }
        notify[index] = (byte)notifyBits;
        originalRecipients.add(originalRecipient);
    }

    /** NOTIFY bits of recipient {@code index} ({@code DsnParameters.NOTIFY_*}), 0 when not given. */
    public int notify(final int index)
    {
        return index < originalRecipients.size() ? notify[index] : 0;
    }

    /** ORCPT of recipient {@code index} as received ({@code addr-type ";" xtext}), or null. */
    public byte[] originalRecipient(final int index)
    {
        return index < originalRecipients.size() ? originalRecipients.get(index) : null;
    }

    /** RET= of MAIL ({@code DsnParameters.RET_*}). */
    public int dsnRet()
    {
        return dsnRet;
    }

    public void dsnRet(final int dsnRet)
    {
        this.dsnRet = dsnRet;
    }

    /** ENVID= of MAIL as received (xtext), or null. */
    public byte[] envelopeId()
    {
        return envelopeId;
    }

    public void envelopeId(final byte[] envelopeId)
    {
        this.envelopeId = envelopeId;
    }

    public byte[] clientAddress()
    {
        return clientAddress;
    }

    public void clientAddress(final byte[] clientAddress)
    {
        this.clientAddress = clientAddress;
    }

    public byte[] heloName()
    {
        return heloName;
    }

    public void heloName(final byte[] heloName)
    {
        this.heloName = heloName;
    }

    /** The complete {@code Received:} header line(s) with trailing CRLF, prepended to the body on delivery. */
    /** Who made the message ({@code SpoolRecords.ORIGIN_*}); an inbound session leaves it 0, an SMTP client. */
    public byte origin()
    {
        return origin;
    }

    /** Set by the spool for mail the relay makes or moves itself. */
    public void origin(final byte origin)
    {
        this.origin = origin;
    }

    public byte[] receivedHeader()
    {
        return receivedHeader;
    }

    public void receivedHeader(final byte[] receivedHeader)
    {
        this.receivedHeader = receivedHeader;
    }

    /** Body bytes appended so far (wire form, without the received header). */
    public long bodyBytes()
    {
        return bodyBytes;
    }

    public void addBodyBytes(final long count)
    {
        bodyBytes += count;
    }

    public Object sinkState()
    {
        return sinkState;
    }

    public void sinkState(final Object sinkState)
    {
        this.sinkState = sinkState;
    }

    /** AUTH mechanism of the client that sent it (PLAIN, LOGIN), or null: for the log line, not stored. */
    public String authMechanism()
    {
        return authMechanism;
    }

    /** The user the client authenticated as, or null. */
    public String authUser()
    {
        return authUser;
    }

    public void authenticated(final String mechanism, final String user)
    {
        this.authMechanism = mechanism;
        this.authUser = user;
    }

    public Object owner()
    {
        return owner;
    }

    public void owner(final Object owner)
    {
        this.owner = owner;
    }

    @Override
    public String toString()
    {
        return "InboundMessage{" + queueIdText() + " from=<" +
            (reversePath == null ? "" : new String(reversePath, StandardCharsets.UTF_8)) + "> rcpts=" +
            recipients.size() + " bytes=" + bodyBytes + '}';
    }
}
