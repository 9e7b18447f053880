package dev.relay.delivery.client;

import dev.relay.config.TlsLevel;
import dev.relay.net.Connection;
import dev.relay.net.ConnectionHandler;
import dev.relay.net.OutputFiller;
import dev.relay.smtp.DotStuffing;
import dev.relay.smtp.DsnParameters;

import javax.net.ssl.SSLEngine;
import java.nio.ByteBuffer;

import static dev.relay.delivery.client.ClientCommands.ANGLE_CRLF;
import static dev.relay.delivery.client.ClientCommands.BDAT;
import static dev.relay.delivery.client.ClientCommands.BODY_8BITMIME;
import static dev.relay.delivery.client.ClientCommands.CRLF;
import static dev.relay.delivery.client.ClientCommands.CRLF_END_DATA;
import static dev.relay.delivery.client.ClientCommands.DATA;
import static dev.relay.delivery.client.ClientCommands.END_DATA;
import static dev.relay.delivery.client.ClientCommands.ENVID;
import static dev.relay.delivery.client.ClientCommands.LAST;
import static dev.relay.delivery.client.ClientCommands.MAIL_FROM;
import static dev.relay.delivery.client.ClientCommands.ORCPT;
import static dev.relay.delivery.client.ClientCommands.QUIT;
import static dev.relay.delivery.client.ClientCommands.RCPT_TO;
import static dev.relay.delivery.client.ClientCommands.RET_FULL;
import static dev.relay.delivery.client.ClientCommands.RET_HDRS;
import static dev.relay.delivery.client.ClientCommands.RSET;
import static dev.relay.delivery.client.ClientCommands.SIZE_PARAMETER;
import static dev.relay.delivery.client.ClientCommands.SMTPUTF8;
import static dev.relay.delivery.client.ClientCommands.STARTTLS;

/**
 * The client side of one outbound SMTP connection (RFC 5321, with PIPELINING RFC 2920, SIZE RFC 1870, 8BITMIME
 * RFC 6152, SMTPUTF8 RFC 6531, CHUNKING RFC 3030, enhanced status codes RFC 3463, STARTTLS RFC 3207): one state
 * machine ({@code State} below, every change through {@code enter}), which is why it is one long file. Pure: the
 * loop owns the socket and the clock; this class only reacts to {@link ConnectionHandler} callbacks and
 * {@link #send}/{@link #quit()}.
 * <p>
 * States and the timeout in force (RFC 5321 §4.5.3.2), set with {@link Connection#idleTimeoutMs} on each change:
 * <ul>
 * <li>{@code GREETING} waiting for 220 — command timeout;</li>
 * <li>{@code EHLO}, {@code HELO} (EHLO refused) — command timeout; then {@link ClientListener#onReady}, or
 * STARTTLS first;</li>
 * <li>{@code STARTTLS} waiting for its 220 — command timeout; {@code HANDSHAKE} the TLS handshake — the command
 * timeout for all of it, however its bytes trickle in (Postfix's {@code smtp_starttls_timeout}); then
 * {@code EHLO} again, under TLS, and only what the peer offers now counts (RFC 3207 §4.2);</li>
 * <li>{@code IDLE} between transactions — command timeout, then QUIT;</li>
 * <li>{@code ENVELOPE} replies to [RSET] MAIL, RCPT… [DATA] — command timeout, DATA initiation timeout once only
 * the reply to DATA is due; with PIPELINING all commands leave in one write;</li>
 * <li>{@code BODY} writing the Received header and the body, as much as the output buffer takes, the rest on
 * {@link #onOutputDrained()} — data block timeout, restarted by every write that moves bytes;</li>
 * <li>{@code DATA_DONE} waiting for the reply to the end of data (or to {@code BDAT … LAST}) — data done timeout;</li>
 * <li>{@code QUIT}, {@code CLOSED} — the connection is going; input is discarded.</li>
 * </ul>
 * A transaction that did not end with a 2xx after the body is followed by RSET before the next MAIL (pipelined with
 * it when the peer offers PIPELINING). A peer 421, a protocol error, a timeout or a lost connection defers every
 * recipient of the transaction in flight that has no result yet, and ends the session.
 * <p>
 * TLS ({@link ClientTls}): at {@code may}, {@code encrypt} and {@code verify} STARTTLS is sent when the peer offers
 * it. Whatever the peer sent after its 220 to STARTTLS is discarded unread (the connection drops it), so nothing
 * injected in plaintext is taken for a reply under TLS. At {@code may} a peer without STARTTLS, or one that refuses
 * it, gets plaintext; a failed handshake ends the session ({@link #tlsHandshakeFailed()}: the pool retries in
 * plaintext). At {@code encrypt} and {@code verify} the session ends instead, with {@link #failureCode()} 4.7.4
 * (not offered, refused) or 4.7.5 (the handshake or the certificate check failed), and no transaction starts.
 * <p>
 * The body is read while it is written: a server that gives up on a message mid-body (552, or 4xx/5xx of its own)
 * and closes is heard at once; its reply decides the transaction and the session ends (the stream is out of step).
 * The whole transfer, from the body's first byte to the reply to its end, is also bounded by
 * {@link #checkTransferDeadline}: data block + data done timeouts + size / {@link ClientSettings#minDataRate()},
 * so a server that reads a byte a minute cannot hold a connection for hours (Postfix's {@code smtp_min_data_rate}).
 * <p>
 * Called only on the owning loop thread; the listener is called back on it, from inside these methods. Allocates
 * per transaction (results, reply texts) and per connection (EHLO keywords), never per body byte: commands are
 * encoded into a reused array (from the pieces in {@link ClientCommands}) and a stored body is copied once, from
 * the spool's mapped file straight into the connection's output buffer ({@link Connection#write(OutputFiller,
 * int)}). Only a BDAT-received body going to a peer without CHUNKING passes through a heap array, to be dot-stuffed
 * on the way.
 */
public final class SmtpClientSession implements ConnectionHandler
{
    enum State
    {
        GREETING, EHLO, HELO, STARTTLS, HANDSHAKE, IDLE, ENVELOPE, BODY, DATA_DONE, QUIT, CLOSED
    }

    private enum Awaiting
    {
        RSET, MAIL, RCPT, DATA
    }

    private static final int STAGE_HEADER = 0;
    private static final int STAGE_BODY = 1;
    private static final int STAGE_END = 2;
    private static final int STAGE_DONE = 3;

    /** Largest body part read at once from the source of a body that is stuffed on the way out. */
    static final int BODY_PART_BYTES = 16 * 1024;

    private final ClientSettings settings;
    private final Connection connection;
    private final ClientListener listener;
    private final ClientTls tls;
    private final SmtpReplyParser parser = new SmtpReplyParser();
    private final PeerCapabilities peer = new PeerCapabilities();
    private final byte[] ehlo;
    private final byte[] helo;
    private final OutputFiller bodyFiller = this::fillBody;
    /** Stuffs a raw (BDAT-received) body going out as DATA (RFC 5321 §4.5.2); see {@link DotStuffing}. */
    private final DotStuffing stuffer = new DotStuffing();
    private final DotStuffing.Output stuffedOutput = this::writeSegment;
    /** For stuffing a raw (BDAT-received) body into DATA form; allocated the first time one is sent that way. */
    private ByteBuffer bodyPart;
    private final boolean[] accepted;
    private byte[] commands = new byte[1024];
    private int commandsLength;

    private State state = State.GREETING;
    private boolean closeReported;
    private boolean draining;
    private boolean rsetNeeded;
    private long transactionsDone;

    // output not yet handed to the connection
    private byte[] pending;
    private int pendingOffset;
    private int pendingEnd;

    // transaction in flight
    private OutboundMessage message;
    private RecipientResult[] results;
    private int recipientCount;
    private int acceptedCount;
    private boolean mailRejected;
    private boolean pipelined;
    private boolean useBdat;
    private Awaiting awaiting;
    private int rcptIndex;

    // body being written
    private int stage;
    private BodySource body;
    private boolean stuffing;
    private long bdatRemaining;
    private boolean lastCr;
    private boolean endsWithCrlf;
    /** When the transfer of the body in flight must be over, reply included ({@link #checkTransferDeadline}). */
    private long transferDeadlineMs = Long.MAX_VALUE;

    /** Why this side ended the session (reported with onClosed once the socket is closed). */
    private String quitReason;
    /** Why the TCP connection could not be made, for the deferral reason. */
    private String connectFailure;

    // TLS
    private SSLEngine engine;
    /** The handshake finished: the conversation is encrypted from the EHLO after it on. */
    private boolean tlsActive;
    /** How the peer's certificate was checked ({@link ClientTlsContext#VERIFIED} ...), once TLS is active. */
    private String tlsTrust;
    private boolean tlsHandshakeFailed;
    /** The RFC 3463 code of a session ended by the TLS level's demands (4.7.4, 4.7.5); null otherwise. */
    private String failureCode;

    /** A plaintext session (no STARTTLS). */
    public SmtpClientSession(final ClientSettings settings, final Connection connection, final ClientListener listener)
    {
        this(settings, connection, listener, ClientTls.NONE);
    }

    public SmtpClientSession(
        final ClientSettings settings, final Connection connection, final ClientListener listener,
        final ClientTls tls)
    {
        this.settings = settings;
        this.connection = connection;
        this.listener = listener;
        this.tls = tls;
        this.ehlo = ClientCommands.ehlo(settings.heloName());
        this.helo = ClientCommands.helo(settings.heloName());
        this.accepted = new boolean[settings.maxRecipientsPerTransaction()];
    }

    /** True when {@link #send} would start a transaction now. */
    public boolean isIdle()
    {
        return state == State.IDLE;
    }

    /**
     * True once the session is over (421, protocol error, timeout, lost connection, QUIT). Inside
     * {@link ClientListener#onTransactionDone} it tells a transaction ended by the session breaking from one that
     * ended with the peer's replies.
     */
    public boolean isClosed()
    {
        return state == State.CLOSED;
    }

    /** Transactions ended so far (every recipient reported), including those refused before sending. */
    public long transactionsDone()
    {
        return transactionsDone;
    }

    /** What the peer offered in its EHLO reply (all false after HELO, or before the reply). */
    public PeerCapabilities capabilities()
    {
        return peer;
    }

    State state()
    {
        return state;
    }

    /** The TLS this session was asked for. */
    public ClientTls tls()
    {
        return tls;
    }

    /** The negotiated protocol ({@code TLSv1.3}) once TLS is active, else null. */
    public String tlsProtocol()
    {
        return tlsActive ? connection.tlsProtocol() : null;
    }

    /** The negotiated cipher suite once TLS is active, else null. */
    public String tlsCipher()
    {
        return tlsActive ? connection.tlsCipher() : null;
    }

    /** How far the peer's certificate was checked, in Postfix's words ("Verified", ...); null without TLS. */
    public String tlsTrust()
    {
        return tlsTrust;
    }

    /** The engine of the handshake, once STARTTLS was answered with 220; null before. */
    public SSLEngine tlsEngine()
    {
        return engine;
    }

    /**
     * The session ended in the TLS handshake: refused, broken, timed out, the peer gone, or (at {@code verify}) the
     * certificate not accepted. At {@code may} the pool falls back to plaintext for this address.
     */
    public boolean tlsHandshakeFailed()
    {
        return tlsHandshakeFailed;
    }

    /**
     * The RFC 3463 code of a session the TLS level ended: 4.7.4 (TLS required, not offered or refused), 4.7.5
     * (TLS required, the handshake or the certificate check failed); null for any other end.
     */
    public String failureCode()
    {
        return failureCode;
    }

    /**
     * Starts a transaction for {@code message} when idle. When the peer cannot take it (SIZE, 8BITMIME, SMTPUTF8)
     * nothing is sent: every recipient fails permanently and {@link ClientListener#onTransactionDone} is called
     * before this returns.
     *
     * @return false, doing nothing, when the session is not idle.
     * @throws IllegalArgumentException with no recipients or more than
     *                                  {@link ClientSettings#maxRecipientsPerTransaction()} (the caller splits).
     */
    public boolean send(final OutboundMessage message)
    {
        if (state != State.IDLE)
        {
            return false;
        }
        final int count = message.recipientCount();
        if (count < 1 || count > accepted.length)
        {
            throw new IllegalArgumentException("recipients: " + count);
        }
        this.message = message;
        results = new RecipientResult[count];
        recipientCount = count;
        acceptedCount = 0;
        mailRejected = false;
        for (int i = 0; i < count; i++)
        {
            accepted[i] = false;
        }

        final long size = message.messageSize();
        if (peer.maxSize() > 0 && size > peer.maxSize())
        {
            refuse("5.3.4", "message size " + size + " exceeds size limit " + peer.maxSize() + " of the server");
            return true;
        }
        if (message.isEightBit() && !peer.eightBitMime())
        {
            refuse("5.6.3", "8-bit content, but the server does not offer 8BITMIME");
            return true;
        }
        if (message.needsSmtpUtf8() && !peer.smtpUtf8())
        {
            refuse("5.6.7", "SMTPUTF8 is required, but the server does not offer it");
            return true;
        }

        pipelined = peer.pipelining();
        useBdat = !message.isDotStuffed() && peer.chunking();
        enter(State.ENVELOPE);
        commandsLength = 0;
        if (rsetNeeded)
        {
            rsetNeeded = false;
            awaiting = Awaiting.RSET;
            append(RSET);
        }
        else
        {
            awaiting = Awaiting.MAIL;
        }
        if (pipelined)
        {
            appendMail();
            for (int i = 0; i < count; i++)
            {
                appendRcpt(i);
            }
            if (!useBdat)
            {
                append(DATA);
            }
        }
        else if (awaiting == Awaiting.MAIL)
        {
            appendMail();
        }
        sendCommands();
        return true;
    }

    /**
     * Sends QUIT (unless in the middle of a body) and closes once the output is flushed. A transaction in flight is
     * deferred. {@link ClientListener#onClosed} follows with reason "quit".
     */
    public void quit()
    {
        quit("quit");
    }

    private void quit(final String reason)
    {
        if (state == State.QUIT || state == State.CLOSED)
        {
            return;
        }
        final boolean inBody = state == State.BODY || state == State.HANDSHAKE;
        enter(State.QUIT);
        if (inBody)
        {
            // half a body cannot be followed by QUIT: the server would take it for message text; nor can half a
            // handshake
            connection.closeNow();
        }
        else
        {
            if (pending == null && connection.outputSpace() >= QUIT.length)
            {
                connection.write(QUIT);
            }
            connection.closeAfterFlush();
        }
        failInFlight(0, "4.4.2", "session closed before the transaction ended", false);
        // reported when the socket is really closed (onClose): until then it still counts against the hop's limit
        quitReason = reason;
    }

    @Override
    public void onOpen()
    {
        enter(State.GREETING);
    }

    @Override
    public int onInput(final ByteBuffer buffer, final int from, final int to)
    {
        int position = from;
        while (position < to)
        {
            switch (state)
            {
                case QUIT:
                case CLOSED:
                    return to;
                default:
                    break;
            }
            final int result = parser.parse(buffer, position, to);
            position = parser.end();
            if (result == SmtpReplyParser.NEED_MORE)
            {
                return position;
            }
            if (result == SmtpReplyParser.PROTOCOL_ERROR)
            {
                protocolError(parser.error());
                return to;
            }
            onReply();
            if (state == State.HANDSHAKE)
            {
                // what followed the 220 came in plaintext, maybe from a man in the middle (CVE-2011-0411, seen
                // from the client): the connection discards it unread
                parser.reset();
                return to;
            }
        }
        return position;
    }

    @Override
    public void onOutputDrained()
    {
        if (state == State.BODY)
        {
            pump();
        }
        else if (state != State.QUIT && state != State.CLOSED)
        {
            flushPending();
        }
    }

    @Override
    public void onTimeout()
    {
        switch (state)
        {
            case QUIT:
            case CLOSED:
                return;
            case IDLE:
                quit("idle timeout");
                return;
            default:
                final String text = "timeout " + phase();
                fatal(0, "4.4.2", text, text, !sendingBody());
        }
    }

    /**
     * Ends a message transfer that has run past its limit (see the class comment): the transaction is deferred
     * with 4.4.2 and the session closed at once. The pool calls this about once a second for each busy session:
     * the idle timeout alone cannot catch a peer that keeps reading, only very slowly.
     */
    public void checkTransferDeadline(final long nowMs)
    {
        if ((state == State.BODY || state == State.DATA_DONE) && nowMs > transferDeadlineMs)
        {
            final String text = "timeout: message transfer of " + message.messageSize() + " bytes not done in " +
                (settings.dataBlockTimeoutMs() + settings.dataDoneTimeoutMs() + transferAllowanceMs()) / 1000 +
                " s (minimum data rate " + settings.minDataRate() + " bytes/s)";
            transferDeadlineMs = Long.MAX_VALUE;
            fatal(0, "4.4.2", text, text, false);
        }
    }

    private long transferAllowanceMs()
    {
        final long rate = settings.minDataRate();
        return rate <= 0 ? 0 : message.messageSize() * 1000 / rate;
    }

    /** The server is stopping: finish the transaction in flight, then QUIT. */
    @Override
    public void onDrain()
    {
        draining = true;
        if (state == State.IDLE)
        {
            quit("server draining");
        }
    }

    @Override
    public void onConnectFailed(final String reason)
    {
        connectFailure = "connect failed: " + reason;
    }

    @Override
    public void onClose()
    {
        if (state == State.CLOSED || state == State.QUIT)
        {
            final boolean quitting = state == State.QUIT;
            enter(State.CLOSED);
            closeBody();
            if (quitting)
            {
                reportClosed(quitReason == null ? "quit" : quitReason);
            }
            return;
        }
        if (state == State.HANDSHAKE)
        {
            tlsHandshakeFailed("connection lost during the TLS handshake");
            return;
        }
        final String reason = connectFailure != null ? connectFailure : "connection lost " + phase();
        final boolean hopFault = !sendingBody();
        enter(State.CLOSED);
        failInFlight(0, "4.4.2", reason, hopFault);
        reportClosed(reason);
    }

    @Override
    public void onTlsEstablished()
    {
        if (state != State.HANDSHAKE)
        {
            return;
        }
        tlsActive = true;
        tlsTrust = tls.context().trustOf(engine, tls.level() == TlsLevel.VERIFY);
        listener.onTlsEstablished(this);
        if (state != State.HANDSHAKE)
        {
            return;
        }
        // RFC 3207 §4.2: forget what the peer said before TLS and ask again
        peer.clear();
        enter(State.EHLO);
        startPending(ehlo, ehlo.length);
    }

    @Override
    public void onTlsFailed(final String reason)
    {
        if (state == State.HANDSHAKE)
        {
            tlsHandshakeFailed(reason);
            return;
        }
        if (state == State.QUIT || state == State.CLOSED)
        {
            return;
        }
        // a broken record later: the session cannot go on (onClose follows at once)
        final String text = "TLS failure " + phase() + ": " + reason;
        fatal(0, "4.4.2", text, text, !sendingBody());
    }

    private void tlsHandshakeFailed(final String reason)
    {
        tlsHandshakeFailed = true;
        final String text;
        if (tls.level() == TlsLevel.VERIFY)
        {
            // Postfix: "Server certificate not verified" covers a bad chain and a wrong name alike
            text = "Cannot start TLS: handshake failure (server certificate not verified or handshake refused): " +
                reason;
        }
        else
        {
            text = "Cannot start TLS: handshake failure: " + reason;
        }
        if (tls.level().requiresTls())
        {
            failureCode = "4.7.5";
        }
        enter(State.CLOSED);
        connection.closeNow();
        reportClosed(text);
    }

    /** The level wants TLS and the peer will not have it: QUIT, and the session ends with 4.7.4. */
    private void tlsRequired(final String why)
    {
        failureCode = "4.7.4";
        final String reason = "TLS is required, but " + why;
        enter(State.CLOSED);
        if (pending == null && connection.outputSpace() >= QUIT.length)
        {
            connection.write(QUIT);
        }
        connection.closeAfterFlush();
        reportClosed(reason);
    }

    private void onReply()
    {
        final int code = parser.code();
        if (code == 421)
        {
            // RFC 5321 §3.8: the peer is closing the transmission channel.
            final RecipientResult reply = replyResult(RecipientResult.Status.DEFERRED);
            fatal(code, reply.enhancedCode(), reply.text(), "peer closing: " + reply.diagnostic(), true);
            return;
        }
        switch (state)
        {
            case GREETING:
                onGreeting(code);
                break;
            case EHLO:
                onEhloReply(code);
                break;
            case HELO:
                onHeloReply(code);
                break;
            case STARTTLS:
                onStartTlsReply(code);
                break;
            case ENVELOPE:
                onEnvelopeReply(code);
                break;
            case DATA_DONE:
                onFinalReply(code);
                break;
            case BODY:
                onEarlyReply(code);
                break;
            default:
                protocolError("unexpected reply " + code + " " + phase());
                break;
        }
    }

    private void onGreeting(final int code)
    {
        if (code == 220)
        {
            enter(State.EHLO);
            startPending(ehlo, ehlo.length);
        }
        else
        {
            refuseSession("greeting refused: ");
        }
    }

    private void onEhloReply(final int code)
    {
        if (code / 100 == 2)
        {
            peer.parseEhlo(parser.text());
            if (!tlsActive && tls.level() != TlsLevel.NONE && peer.startTls())
            {
                enter(State.STARTTLS);
                startPending(STARTTLS, STARTTLS.length);
            }
            else if (!tlsActive && tls.level().requiresTls())
            {
                tlsRequired("was not offered by host " + tls.peerName());
            }
            else
            {
                becomeReady();
            }
        }
        else
        {
            peer.clear();
            enter(State.HELO);
            startPending(helo, helo.length);
        }
    }

    private void onHeloReply(final int code)
    {
        if (code / 100 != 2)
        {
            refuseSession("HELO refused: ");
        }
        else if (!tlsActive && tls.level().requiresTls())
        {
            // no EHLO, no STARTTLS (RFC 3207 §4)
            tlsRequired("host " + tls.peerName() + " refused EHLO, so it offers no STARTTLS");
        }
        else
        {
            becomeReady();
        }
    }

    /** RFC 3207 §4: 220 starts the handshake; anything else leaves the session in plaintext, or ends it. */
    private void onStartTlsReply(final int code)
    {
        if (code == 220)
        {
            engine = tls.context().newEngine(tls.peerName(), tls.port(), tls.level() == TlsLevel.VERIFY);
            enter(State.HANDSHAKE);
            connection.startTls(engine, settings.commandTimeoutMs());
        }
        else if (tls.level().requiresTls())
        {
            tlsRequired("host " + tls.peerName() + " refused to start TLS: " +
                replyResult(RecipientResult.Status.DEFERRED).diagnostic());
        }
        else
        {
            // opportunistic TLS: the session goes on in plaintext with what the first EHLO offered (Postfix's may)
            becomeReady();
        }
    }

    private void becomeReady()
    {
        enter(State.IDLE);
        listener.onReady(this);
        if (draining && state == State.IDLE)
        {
            quit("server draining");
        }
    }

    private void onEnvelopeReply(final int code)
    {
        final int type = code / 100;
        switch (awaiting)
        {
            case RSET:
                awaiting = Awaiting.MAIL;
                if (!pipelined)
                {
                    commandsLength = 0;
                    appendMail();
                    sendCommands();
                }
                return;

            case MAIL:
                if (type == 4 || type == 5)
                {
                    mailRejected = true;
                    final RecipientResult result = replyResult(RecipientResult.statusOf(code));
                    for (int i = 0; i < recipientCount; i++)
                    {
                        results[i] = result;
                    }
                }
                else if (type != 2)
                {
                    protocolError("unexpected reply " + code + " to MAIL");
                    return;
                }
                awaiting = Awaiting.RCPT;
                rcptIndex = 0;
                if (!pipelined)
                {
                    if (mailRejected)
                    {
                        endAbnormally();
                        return;
                    }
                    commandsLength = 0;
                    appendRcpt(0);
                    sendCommands();
                }
                return;

            case RCPT:
                if (type != 2 && type != 4 && type != 5)
                {
                    protocolError("unexpected reply " + code + " to RCPT");
                    return;
                }
                if (!mailRejected)
                {
                    if (type == 2)
                    {
                        accepted[rcptIndex] = true;
                        acceptedCount++;
                    }
                    else
                    {
                        results[rcptIndex] = replyResult(RecipientResult.statusOf(code));
                    }
                }
                rcptIndex++;
                if (rcptIndex < recipientCount)
                {
                    if (!pipelined)
                    {
                        commandsLength = 0;
                        appendRcpt(rcptIndex);
                        sendCommands();
                    }
                    return;
                }
                if (useBdat || (!pipelined && acceptedCount == 0))
                {
                    // BDAT is sent only once a recipient is known to be accepted: a refused BDAT would make the
                    // peer read the body as commands.
                    if (acceptedCount > 0)
                    {
                        startBody();
                    }
                    else
                    {
                        endAbnormally();
                    }
                    return;
                }
                awaiting = Awaiting.DATA;
                connection.idleTimeoutMs(settings.dataInitTimeoutMs());
                if (!pipelined)
                {
                    commandsLength = 0;
                    append(DATA);
                    sendCommands();
                }
                return;

            case DATA:
                if (code == 354)
                {
                    if (acceptedCount > 0)
                    {
                        startBody();
                    }
                    else
                    {
                        protocolError("354 to DATA without an accepted recipient");
                    }
                    return;
                }
                if (type != 4 && type != 5)
                {
                    protocolError("unexpected reply " + code + " to DATA");
                    return;
                }
                if (acceptedCount > 0)
                {
                    resolveAccepted(replyResult(RecipientResult.statusOf(code)));
                }
                endAbnormally();
                return;

            default:
                break;
        }
    }

    private void onFinalReply(final int code)
    {
        final int type = code / 100;
        if (type != 2 && type != 4 && type != 5)
        {
            protocolError("unexpected reply " + code + " to end of data");
            return;
        }
        resolveAccepted(replyResult(RecipientResult.statusOf(code)));
        enter(State.IDLE);
        rsetNeeded = type != 2;
        finishTransaction(false);
        afterTransaction();
    }

    /**
     * The server replied before the end of the body: it will not take the message (552 for its size, or another
     * 4xx/5xx). Its reply is the result for every accepted recipient; the session ends, since the server and
     * the half-sent body are out of step. A 2xx here is a broken server.
     */
    private void onEarlyReply(final int code)
    {
        final int type = code / 100;
        if (type != 4 && type != 5)
        {
            protocolError("reply " + code + " before the end of the message body");
            return;
        }
        resolveAccepted(replyResult(RecipientResult.statusOf(code)));
        final String reason = "peer replied " + code + " before the end of the message body: " +
            replyResult(RecipientResult.statusOf(code)).diagnostic();
        enter(State.CLOSED);
        connection.closeNow();
        finishTransaction(false);
        reportClosed(reason);
    }

    private void startBody()
    {
        enter(State.BODY);
        transferDeadlineMs = connection.nowMs() + settings.dataBlockTimeoutMs() + settings.dataDoneTimeoutMs() +
            transferAllowanceMs();
        body = message.openBody();
        stuffing = !message.isDotStuffed() && !useBdat;
        stuffer.reset();
        lastCr = false;
        endsWithCrlf = true;
        stage = STAGE_HEADER;
        if (useBdat)
        {
            bdatRemaining = message.bodySize();
            commandsLength = 0;
            append(BDAT);
            appendLong(message.receivedHeader().length + bdatRemaining);
            append(LAST);
            startPending(commands, commandsLength);
        }
        pump();
    }

    /** Writes as much of the header, body and end of data as the output takes; continues on drain. */
    private void pump()
    {
        while (state == State.BODY)
        {
            if (!flushPending())
            {
                return;
            }
            switch (stage)
            {
                case STAGE_HEADER:
                    final byte[] header = message.receivedHeader();
                    pending = header;
                    pendingOffset = 0;
                    pendingEnd = header.length;
                    stage = STAGE_BODY;
                    break;
                case STAGE_BODY:
                    if (!copyBody())
                    {
                        return;
                    }
                    stage = STAGE_END;
                    break;
                case STAGE_END:
                    if (!useBdat)
                    {
                        final byte[] end = endsWithCrlf ? END_DATA : CRLF_END_DATA;
                        pending = end;
                        pendingOffset = 0;
                        pendingEnd = end.length;
                    }
                    stage = STAGE_DONE;
                    break;
                default:
                    closeBody();
                    enter(State.DATA_DONE);
                    return;
            }
        }
    }

    /** @return true once the whole body is written; false to wait for the output to drain. */
    private boolean copyBody()
    {
        while (state == State.BODY)
        {
            if (useBdat && bdatRemaining == 0)
            {
                return true;
            }
            final int space = connection.outputSpace();
            final int read;
            if (stuffing)
            {
                read = copyStuffed(space);
            }
            else
            {
                final int room = useBdat ? (int)Math.min(space, bdatRemaining) : space;
                read = room <= 0 ? 0 : connection.write(bodyFiller, room);
            }
            if (read < 0)
            {
                if (useBdat)
                {
                    fatal(0, "4.3.0", "stored body shorter than its size", "stored body shorter than its size",
                        false);
                    return false;
                }
                return true;
            }
            if (read == 0)
            {
                // no room (the drain brings more), or BodySource's 0 without room: the timeout ends a stalled source
                return false;
            }
            if (useBdat)
            {
                bdatRemaining -= read;
            }
        }
        return false;
    }

    /** Copies the next body bytes from the spool straight into the output buffer; tracks how the body ends. */
    private int fillBody(final ByteBuffer dst)
    {
        final int read = body.read(dst);
        if (read > 0)
        {
            final int end = dst.position();
            final byte last = dst.get(end - 1);
            endsWithCrlf = read >= 2 ? dst.get(end - 2) == '\r' && last == '\n' : lastCr && last == '\n';
            lastCr = last == '\r';
        }
        return read;
    }

    /** A raw body going out as DATA: through a heap part, stuffed; room for the worst case (every byte doubled). */
    private int copyStuffed(final int space)
    {
        final int room = Math.min(space / 2, BODY_PART_BYTES);
        if (room <= 0)
        {
            return 0;
        }
        if (bodyPart == null)
        {
            bodyPart = ByteBuffer.allocate(BODY_PART_BYTES);
        }
        bodyPart.clear().limit(room);
        final int read = body.read(bodyPart);
        if (read > 0)
        {
            endsWithCrlf = stuffer.stuff(bodyPart.array(), read, stuffedOutput);
        }
        return read;
    }

    private void writeSegment(final byte[] part, final int from, final int to)
    {
        if (to > from)
        {
            connection.write(part, from, to - from);
        }
    }

    private void resolveAccepted(final RecipientResult result)
    {
        for (int i = 0; i < recipientCount; i++)
        {
            if (accepted[i])
            {
                results[i] = result;
            }
        }
    }

    private void refuse(final String enhancedCode, final String text)
    {
        final RecipientResult result = new RecipientResult(RecipientResult.Status.FAILED, 0, enhancedCode, text);
        for (int i = 0; i < recipientCount; i++)
        {
            results[i] = result;
        }
        finishTransaction(false);
        afterTransaction();
    }

    private void endAbnormally()
    {
        enter(State.IDLE);
        rsetNeeded = true;
        finishTransaction(false);
        afterTransaction();
    }

    /**
     * @param sessionBroke the session broke (timeout, lost connection, protocol error, 421) other than while the
     *                     body was going out: it says the hop is unwell. Not so for a transfer that failed while
     *                     the body was going out (that may be the message's size), nor for one the server's
     *                     replies ended, nor for one this side gave up (too slow, quit).
     */
    private void finishTransaction(final boolean sessionBroke)
    {
        final OutboundMessage done = message;
        final TransactionResult result = new TransactionResult(results, sessionBroke);
        message = null;
        results = null;
        closeBody();
        transactionsDone++;
        listener.onTransactionDone(this, done, result);
    }

    private void afterTransaction()
    {
        if (draining && state == State.IDLE)
        {
            quit("server draining");
        }
    }

    private void failInFlight(
        final int code, final String enhancedCode, final String text, final boolean sessionBroke)
    {
        if (message == null)
        {
            closeBody();
            return;
        }
        final RecipientResult result = new RecipientResult(RecipientResult.Status.DEFERRED, code, enhancedCode, text);
        for (int i = 0; i < recipientCount; i++)
        {
            if (results[i] == null)
            {
                results[i] = result;
            }
        }
        finishTransaction(sessionBroke);
    }

    /** The session cannot go on: output not yet written is dropped, the transaction in flight deferred. */
    private void fatal(
        final int code, final String enhancedCode, final String text, final String reason, final boolean hopFault)
    {
        if (state == State.CLOSED)
        {
            return;
        }
        enter(State.CLOSED);
        connection.closeNow();
        failInFlight(code, enhancedCode, text, hopFault);
        reportClosed(reason);
    }

    private void protocolError(final String why)
    {
        final String text = "protocol error: " + why;
        fatal(0, "4.5.0", text, text, true);
    }

    /**
     * The body is going out: a failure now (the server stops reading, resets) may be the message's size, not the
     * hop's health. After the body (no reply to its end) it counts against the hop again, as in Postfix.
     */
    private boolean sendingBody()
    {
        return state == State.BODY;
    }

    /** The peer refused to talk (greeting or HELO): say QUIT and go. */
    private void refuseSession(final String what)
    {
        final String reason = what + replyResult(RecipientResult.Status.FAILED).diagnostic();
        enter(State.CLOSED);
        if (pending == null && connection.outputSpace() >= QUIT.length)
        {
            connection.write(QUIT);
        }
        connection.closeAfterFlush();
        reportClosed(reason);
    }

    private void reportClosed(final String reason)
    {
        if (!closeReported)
        {
            closeReported = true;
            listener.onClosed(this, reason);
        }
    }

    private void closeBody()
    {
        if (body != null)
        {
            final BodySource source = body;
            body = null;
            source.close();
        }
    }

    private RecipientResult replyResult(final RecipientResult.Status status)
    {
        return new RecipientResult(status, parser.code(), parser.enhancedCode(), parser.detail());
    }

    private String phase()
    {
        switch (state)
        {
            case GREETING:
                return "waiting for the greeting";
            case EHLO:
                return "after EHLO";
            case HELO:
                return "after HELO";
            case STARTTLS:
                return "after STARTTLS";
            case HANDSHAKE:
                return "during the TLS handshake";
            case ENVELOPE:
                return "after " + awaiting;
            case BODY:
                return "while sending the message body";
            case DATA_DONE:
                return "after end of data";
            default:
                return "while " + state.name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private void enter(final State next)
    {
        state = next;
        switch (next)
        {
            case BODY:
                connection.idleTimeoutMs(settings.dataBlockTimeoutMs());
                break;
            case DATA_DONE:
                connection.idleTimeoutMs(settings.dataDoneTimeoutMs());
                break;
            case CLOSED:
                break;
            default:
                connection.idleTimeoutMs(settings.commandTimeoutMs());
                break;
        }
    }

    private void sendCommands()
    {
        startPending(commands, commandsLength);
    }

    /** Queues output and writes what fits now; the rest leaves on {@link #onOutputDrained()}. */
    private void startPending(final byte[] bytes, final int length)
    {
        if (pending != null)
        {
            // a well-behaved peer cannot answer a command it has not received yet
            protocolError("reply before the command was sent");
            return;
        }
        pending = bytes;
        pendingOffset = 0;
        pendingEnd = length;
        flushPending();
    }

    /** @return true when nothing is left pending. */
    private boolean flushPending()
    {
        if (pending == null)
        {
            return true;
        }
        final int length = Math.min(pendingEnd - pendingOffset, connection.outputSpace());
        if (length > 0)
        {
            connection.write(pending, pendingOffset, length);
            pendingOffset += length;
        }
        if (pendingOffset == pendingEnd)
        {
            pending = null;
            return true;
        }
        return false;
    }

    private void appendMail()
    {
        append(MAIL_FROM);
        append(message.reversePath());
        append(ANGLE_CRLF, 0, 1);
        if (peer.size())
        {
            append(SIZE_PARAMETER);
            appendLong(message.messageSize());
        }
        if (message.isEightBit())
        {
            append(BODY_8BITMIME);
        }
        if (message.needsSmtpUtf8())
        {
            append(SMTPUTF8);
        }
        if (peer.dsn())
        {
            // RFC 3461 §5.2.1: what the sender asked for goes on, as it came (ENVID still xtext); to a peer
            // without DSN nothing goes, and the queue manager acts on the request instead
            if (message.dsnRet() != DsnParameters.RET_NONE)
            {
                append(message.dsnRet() == DsnParameters.RET_FULL ? RET_FULL : RET_HDRS);
            }
            if (message.envelopeId() != null)
            {
                append(ENVID);
                append(message.envelopeId());
            }
        }
        append(CRLF);
    }

    private void appendRcpt(final int index)
    {
        append(RCPT_TO);
        append(message.recipient(index));
        append(ANGLE_CRLF, 0, 1);
        if (peer.dsn())
        {
            // RFC 3461 §5.2.1: NOTIFY and ORCPT pass on unchanged
            final int notify = message.notify(index);
            if (notify != 0)
            {
                append(DsnParameters.notifyParameter(notify));
            }
            final byte[] originalRecipient = message.originalRecipient(index);
            if (originalRecipient != null)
            {
                append(ORCPT);
                append(originalRecipient);
            }
        }
        append(CRLF);
    }

    private void append(final byte[] bytes)
    {
        append(bytes, 0, bytes.length);
    }

    private void append(final byte[] bytes, final int offset, final int length)
    {
        ensureCommands(length);
        System.arraycopy(bytes, offset, commands, commandsLength, length);
        commandsLength += length;
    }

    private void appendLong(final long value)
    {
        ensureCommands(20);
        if (value == 0)
        {
            commands[commandsLength++] = '0';
            return;
        }
        int digits = 0;
        for (long v = value; v > 0; v /= 10)
        {
            digits++;
        }
        long v = value;
        for (int i = commandsLength + digits - 1; i >= commandsLength; i--)
        {
            commands[i] = (byte)('0' + v % 10);
            v /= 10;
        }
        commandsLength += digits;
    }

    private void ensureCommands(final int extra)
    {
        if (commandsLength + extra > commands.length)
        {
            final byte[] grown = new byte[Math.max(commands.length * 2, commandsLength + extra)];
            System.arraycopy(commands, 0, grown, 0, commandsLength);
            commands = grown;
        }
    }
}
