package dev.relay.smtp;

import dev.relay.config.SmtpServerSettings;
import dev.relay.net.Connection;
import dev.relay.net.ConnectionHandler;

import javax.net.ssl.SSLEngine;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.Locale;

import static dev.relay.smtp.CommandBytes.copy;
import static dev.relay.smtp.CommandBytes.firstTokenEnd;
import static dev.relay.smtp.CommandBytes.indexOf;
import static dev.relay.smtp.CommandBytes.lowerCaseAscii;
import static dev.relay.smtp.LogText.ipText;
import static dev.relay.smtp.LogText.printable;

/**
 * The server side of one SMTP conversation (RFC 5321, with PIPELINING RFC 2920, SIZE RFC 1870, 8BITMIME
 * RFC 6152, SMTPUTF8 RFC 6531, CHUNKING RFC 3030, DSN RFC 3461, ENHANCEDSTATUSCODES RFC 2034, STARTTLS RFC 3207,
 * AUTH PLAIN and LOGIN RFC 4954).
 * <p>
 * Listeners ({@link Connection#listenerTag()}): {@link #SMTP_LISTENER} offers STARTTLS when TLS is configured and,
 * with {@code smtp.tls.required}, answers 530 5.7.0 to every command but EHLO, HELO, STARTTLS, NOOP and QUIT until
 * it; {@link #SUBMISSION_LISTENER} (RFC 6409) always does that, and wants AUTH before MAIL;
 * {@link #SUBMISSIONS_LISTENER} (RFC 8314) starts TLS before the greeting and wants AUTH before MAIL. AUTH is
 * offered under TLS only (unless {@code smtp.auth.allow_plaintext}); an authenticated client may relay anywhere.
 * STARTTLS forgets everything the client said before (RFC 3207 §4.2): EHLO, AUTH, the transaction; the connection
 * drops whatever was pipelined after it. {@code AUTH} states: {@code AUTH} (a response line to a 334 challenge is
 * awaited) and {@code AUTH_CHECK} (the password is checked off the loop; no input is processed).
 * <p>
 * States: {@code CONNECTED} (greeted, no HELO/EHLO yet) → {@code READY} → {@code MAIL} (sender known) →
 * {@code RCPT} (≥ 1 recipient) → {@code DATA} or {@code BDAT} (body arriving) → {@code COMMITTING} (waiting for
 * the spool to make the message durable; no input is processed, so no later reply overtakes the 250) → {@code
 * READY}. {@code CLOSING} once QUIT, a fatal error or the drain ends the conversation.
 * <p>
 * Every complete command in a read is handled before the replies leave, in one write (PIPELINING). A command is
 * handled only when {@link SmtpReplies#MAX_REPLY_BYTES} of output space is free; otherwise input stays buffered
 * and the loop stops reading until the client takes its replies.
 * <p>
 * One state machine, kept whole in one file past the ~500-line rule of issue 10: its states are the {@link State}
 * values above; its events are the loop's callbacks ({@code onOpen}, {@code onInput}, {@code onTimeout}, {@code
 * onDrain}, {@code onTlsEstablished}, {@code onTlsFailed}, {@code onClose}), the spool's {@link #onCommitted} and
 * the {@link Authenticator}'s answer; every change of state goes through {@code enter}. What is not the
 * conversation lives beside it: command grammar ({@link SmtpCommandParser}, {@link MailArguments}), body scanning
 * ({@link DataScanner}, {@link BdatContentScanner}), reply texts ({@link SmtpReplies}), byte and log helpers
 * ({@link CommandBytes}, {@link LogText}).
 * <p>
 * Called only on the owning loop thread (the spool and the authenticator call back on it). Allocates per transaction (envelope addresses, Received header), not
 * per command or per body byte (DSN's ENVID and ORCPT are copied only when given).
 */
public final class SmtpSession implements ConnectionHandler, MessageSink.CommitListener
{
    enum State
    {
        CONNECTED, READY, MAIL, RCPT, DATA, BDAT, COMMITTING, AUTH, AUTH_CHECK, CLOSING
    }

    /** Listener tag of {@code smtp.listen}. */
    public static final int SMTP_LISTENER = 0;
    /** Listener tag of {@code submission.listen} (RFC 6409). */
    public static final int SUBMISSION_LISTENER = 1;
    /** Listener tag of {@code submissions.listen} (RFC 8314, implicit TLS). */
    public static final int SUBMISSIONS_LISTENER = 2;

    private static final int AUTH_PLAIN = 1;
    private static final int AUTH_LOGIN_USER = 2;
    private static final int AUTH_LOGIN_PASSWORD = 3;

    private final SessionContext context;
    private final SmtpServerSettings settings;
    private final SmtpReplies replies;
    private final Connection connection;
    private final SmtpCommandParser parser;
    private final ParsedCommand command = new ParsedCommand();
    private final MailArguments arguments = new MailArguments();
    private final DataScanner scanner = new DataScanner();
    private final InboundMessage message = new InboundMessage();
    private final byte[] queuedReply = new byte[SmtpReplies.QUEUED_PREFIX.length + 13 + 2];
    private final boolean clientMayRelay;
    private final boolean rateLimited;
    /** Tarpitted: stop consuming input in this read; the connection resumes us after the delay. */
    private boolean holdInput;
    private final String clientIp;
    /** Commands other than PRE_TLS ones get 530 before STARTTLS (smtp.tls.required, submission). */
    private final boolean tlsRequiredHere;
    /** MAIL needs AUTH first (submission listeners). */
    private final boolean authRequired;
    private final boolean implicitTls;
    private final Authenticator.Listener onAuthResult = this::onAuthResult;

    private State state = State.CONNECTED;
    /** STARTTLS was accepted (or the listener is implicit TLS): the conversation is, or is becoming, encrypted. */
    private boolean tls;
    private String authUser;
    private String authMechanism;
    /** AUTH exchange in progress: which response is awaited. */
    private int authStep;
    private String authLoginUser;
    private int countAuth;
    private int countStartTls;
    private boolean esmtp;
    private byte[] heloName;
    private int errors;
    private boolean draining;
    private boolean timedOut;
    /** When the session began waiting for the command line now arriving (smtp.timeout.command runs from here). */
    private long commandStartMs;

    // transaction
    private boolean transactionOpen;
    private boolean bodyFailed;
    private boolean storageFailed;
    private boolean tooBig;
    private long endOfDataNs;

    // BDAT chunk in progress
    private long bdatRemaining;
    private long bdatChunkSize;
    private boolean bdatLast;
    private boolean bdatDiscard;
    private byte[] bdatDiscardReply;
    private State stateBeforeBdat;
    private final BdatContentScanner bdatScanner = new BdatContentScanner();

    // Postfix-style per-connection command counts for the disconnect log line
    private int countEhlo;
    private int countHelo;
    private int countMail;
    private int countRcpt;
    private int countData;
    private int countBdat;
    private int countRset;
    private int countQuit;
    private int countOther;
    private int countRejected;

    public SmtpSession(final SessionContext context, final Connection connection)
    {
        this.context = context;
        this.settings = context.settings;
        this.replies = context.replies;
        this.connection = connection;
        this.parser = new SmtpCommandParser(settings.maxCommandLength());
        this.clientMayRelay = settings.relay().networks().contains(connection.remoteAddressBytes());
        this.rateLimited = context.limiter != null && !context.limiter.isExempt(connection.remoteAddress().getAddress());
        this.clientIp = ipText(connection.remoteAddressBytes());
        final int listener = connection.listenerTag();
        this.implicitTls = listener == SUBMISSIONS_LISTENER && context.tlsEngines != null;
        this.tlsRequiredHere = listener == SUBMISSION_LISTENER || listener == SMTP_LISTENER && context.tlsRequired;
        this.authRequired = listener == SUBMISSION_LISTENER || listener == SUBMISSIONS_LISTENER;
        message.owner(this);
    }

    State state()
    {
        return state;
    }

    @Override
    public void onOpen()
    {
        if (implicitTls)
        {
            // RFC 8314 §3.3: TLS from the first byte; the greeting leaves encrypted once the handshake is done
            tls = true;
            connection.startTls(context.tlsEngines.get(), context.tlsHandshakeTimeoutMs);
        }
        awaitCommand();
        connection.write(replies.greeting);
    }

    @Override
    public void onTlsEstablished()
    {
        // the command timeout starts again now: the handshake had its own
        awaitCommand();
        context.events.onTlsEstablished(clientDescription(), connection.tlsProtocol(), connection.tlsCipher());
    }

    @Override
    public void onTlsFailed(final String reason)
    {
        context.events.onTlsFailed(clientDescription(), reason);
    }

    @Override
    public int onInput(final ByteBuffer buffer, final int from, final int to)
    {
        holdInput = false;
        int position = from;
        while (position < to && !holdInput)
        {
            final int next;
            switch (state)
            {
                case DATA:
                    next = onDataBytes(buffer, position, to);
                    break;
                case BDAT:
                    next = onBdatBytes(buffer, position, to);
                    break;
                case AUTH:
                    if (connection.outputSpace() < SmtpReplies.MAX_REPLY_BYTES)
                    {
                        return position;
                    }
                    next = onAuthResponseBytes(buffer, position, to);
                    break;
                case COMMITTING:
                case AUTH_CHECK:
                case CLOSING:
                    return position;
                default:
                    if (connection.outputSpace() < SmtpReplies.MAX_REPLY_BYTES)
                    {
                        return position;
                    }
                    next = onCommandBytes(buffer, position, to);
                    break;
            }
            if (next == position)
            {
                return position;
            }
            position = next;
        }
        return position;
    }

    private int onCommandBytes(final ByteBuffer buffer, final int from, final int to)
    {
        final int result = parser.parse(buffer, from, to, command);
        switch (result)
        {
            case SmtpCommandParser.COMMAND:
                if (draining)
                {
                    shutDown();
                }
                else
                {
                    onCommand(buffer);
                }
                break;
            case SmtpCommandParser.LINE_TOO_LONG:
                error(SmtpReplies.LINE_TOO_LONG);
                break;
            case SmtpCommandParser.BARE_LF:
                error(SmtpReplies.BARE_LF_COMMAND);
                break;
            case SmtpCommandParser.BAD_BYTES:
                error(SmtpReplies.BAD_BYTES_COMMAND);
                break;
            default:
                // NEED_MORE: a line that trickles in (slowloris) keeps the socket active, so the idle timer alone
                // never fires; the whole command must arrive within smtp.timeout.command.
                if (connection.nowMs() - commandStartMs >= settings.commandTimeoutMs())
                {
                    onTimeout();
                }
                return command.end();
        }
        commandStartMs = connection.nowMs();
        return command.end();
    }

    /** The command phase (re)starts: idle timeout and the deadline for the next whole command line. */
    private void awaitCommand()
    {
        connection.idleTimeoutMs(settings.commandTimeoutMs());
        commandStartMs = connection.nowMs();
    }

    private void onCommand(final ByteBuffer buffer)
    {
        if (tlsRequiredHere && !tls && !command.verb().allowedBeforeTls())
        {
            // RFC 3207 §4: a server that requires TLS answers 530 to anything else before STARTTLS
            countOther++;
            error(SmtpReplies.MUST_STARTTLS);
            return;
        }
        switch (command.verb())
        {
            case EHLO:
                countEhlo++;
                onHelo(buffer, true);
                break;
            case HELO:
                countHelo++;
                onHelo(buffer, false);
                break;
            case MAIL:
                countMail++;
                onMail(buffer);
                break;
            case RCPT:
                countRcpt++;
                onRcpt(buffer);
                break;
            case DATA:
                countData++;
                onData();
                break;
            case BDAT:
                countBdat++;
                onBdat(buffer);
                break;
            case RSET:
                countRset++;
                if (hasArguments())
                {
                    error(SmtpReplies.NO_ARGUMENTS);
                    break;
                }
                resetTransaction();
                if (state != State.CONNECTED)
                {
                    enter(State.READY);
                }
                reply(SmtpReplies.OK);
                break;
            case NOOP:
                countOther++;
                reply(SmtpReplies.OK);
                break;
            case QUIT:
                countQuit++;
                reply(SmtpReplies.BYE);
                close();
                break;
            case VRFY:
                countOther++;
                reply(SmtpReplies.VRFY);
                break;
            case HELP:
                countOther++;
                reply(SmtpReplies.HELP);
                break;
            case STARTTLS:
                countStartTls++;
                onStartTls();
                break;
            case AUTH:
                countAuth++;
                onAuth(buffer);
                break;
            case EXPN:
                countOther++;
                error(SmtpReplies.NOT_IMPLEMENTED);
                break;
            default:
                countOther++;
                error(SmtpReplies.UNKNOWN_COMMAND);
                break;
        }
    }

    private void onHelo(final ByteBuffer buffer, final boolean extended)
    {
        if (!hasArguments())
        {
            error(SmtpReplies.HELO_SYNTAX);
            return;
        }
        // RFC 5321 §4.1.4: EHLO/HELO in a transaction resets it.
        resetTransaction();
        heloName = copy(buffer, command.argStart(), firstTokenEnd(buffer, command.argStart(), command.argEnd()));
        esmtp = extended;
        enter(State.READY);
        reply(extended ? ehloReply() : replies.helo);
    }

    /** EHLO's reply as things stand: STARTTLS until TLS is on, AUTH where it is offered (RFC 4954 §3). */
    private byte[] ehloReply()
    {
        final boolean offerStartTls = context.tlsEngines != null && !tls;
        final boolean offerAuth = authUser == null && authOffered();
        if (offerStartTls)
        {
            return offerAuth ? replies.ehloStartTlsAuth : replies.ehloStartTls;
        }
        return offerAuth ? replies.ehloAuth : replies.ehlo;
    }

    /** AUTH is configured and the channel is private enough for passwords (TLS, or plaintext allowed). */
    private boolean authOffered()
    {
        return context.authenticator != null && (tls || context.authAllowPlaintext);
    }

    /** RFC 3207: 220, then TLS; everything known about the client is forgotten (§4.2). */
    private void onStartTls()
    {
        if (context.tlsEngines == null || implicitTls)
        {
            error(SmtpReplies.NOT_IMPLEMENTED);
            return;
        }
        if (tls)
        {
            error(SmtpReplies.TLS_ALREADY_ACTIVE);
            return;
        }
        if (hasArguments())
        {
            error(SmtpReplies.STARTTLS_SYNTAX);
            return;
        }
        final SSLEngine engine;
        try
        {
            engine = context.tlsEngines.get();
        }
        catch (final RuntimeException ex)
        {
            countRejected++;
            reply(SmtpReplies.TLS_UNAVAILABLE);
            return;
        }
        reply(SmtpReplies.READY_FOR_TLS);
        resetTransaction();
        heloName = null;
        esmtp = false;
        authUser = null;
        authMechanism = null;
        tls = true;
        enter(State.CONNECTED);
        // nothing after the STARTTLS line is read as a command: the connection discards it (CVE-2011-0411)
        holdInput = true;
        connection.startTls(engine, context.tlsHandshakeTimeoutMs);
    }

    /** RFC 4954 §4: AUTH mechanism [initial-response]. */
    private void onAuth(final ByteBuffer buffer)
    {
        if (context.authenticator == null)
        {
            error(SmtpReplies.AUTH_NOT_ENABLED);
            return;
        }
        if (!authOffered())
        {
            error(SmtpReplies.AUTH_NEEDS_TLS);
            return;
        }
        if (state == State.CONNECTED)
        {
            error(SmtpReplies.SEND_HELO_FIRST);
            return;
        }
        if (authUser != null)
        {
            error(SmtpReplies.AUTH_ALREADY);
            return;
        }
        if (state != State.READY)
        {
            error(SmtpReplies.AUTH_IN_TRANSACTION);
            return;
        }
        final int start = command.argStart();
        final int end = command.argEnd();
        final int mechanismEnd = firstTokenEnd(buffer, start, end);
        if (mechanismEnd == start)
        {
            error(SmtpReplies.AUTH_SYNTAX);
            return;
        }
        final String mechanism = new String(copy(buffer, start, mechanismEnd), StandardCharsets.US_ASCII)
            .toUpperCase(Locale.ROOT);
        int initialStart = mechanismEnd;
        while (initialStart < end && (buffer.get(initialStart) == ' ' || buffer.get(initialStart) == '\t'))
        {
            initialStart++;
        }
        final boolean hasInitial = initialStart < end;
        final int step;
        if ("PLAIN".equals(mechanism))
        {
            step = AUTH_PLAIN;
        }
        else if ("LOGIN".equals(mechanism))
        {
            step = AUTH_LOGIN_USER;
        }
        else
        {
            error(SmtpReplies.AUTH_MECHANISM);
            return;
        }
        if (rateLimited && !context.limiter.mayAuthenticate(connection.remoteAddress().getAddress(),
            connection.nowMs()))
        {
            // password guessing: no more checks for this address for a while (Postfix anvil)
            context.events.onAuthFailed(clientDescription(), mechanism, "", "too many failures from this address");
            error(SmtpReplies.AUTH_TOO_MANY_FAILURES);
            return;
        }
        authMechanism = mechanism;
        authStep = step;
        authLoginUser = null;
        enter(State.AUTH);
        if (!hasInitial)
        {
            reply(step == AUTH_PLAIN ? SmtpReplies.AUTH_CHALLENGE_EMPTY : SmtpReplies.AUTH_CHALLENGE_USERNAME);
            return;
        }
        // RFC 4954 §4: "=" is an empty initial response
        onAuthResponse(buffer, initialStart, end);
    }

    /** A line answering a 334 challenge. */
    private int onAuthResponseBytes(final ByteBuffer buffer, final int from, final int to)
    {
        final int result = parser.parse(buffer, from, to, command);
        switch (result)
        {
            case SmtpCommandParser.COMMAND:
                onAuthResponse(buffer, command.lineStart(), command.end() - 2);
                break;
            case SmtpCommandParser.LINE_TOO_LONG:
            case SmtpCommandParser.BARE_LF:
            case SmtpCommandParser.BAD_BYTES:
                endAuthExchange();
                error(SmtpReplies.AUTH_BAD_BASE64);
                break;
            default:
                if (connection.nowMs() - commandStartMs >= settings.commandTimeoutMs())
                {
                    onTimeout();
                }
                return command.end();
        }
        commandStartMs = connection.nowMs();
        return command.end();
    }

    private void onAuthResponse(final ByteBuffer buffer, final int start, final int end)
    {
        final byte[] line = copy(buffer, start, end);
        if (line.length == 1 && line[0] == '*')
        {
            // RFC 4954 §4: the client cancels
            endAuthExchange();
            error(SmtpReplies.AUTH_ABORTED);
            return;
        }
        final byte[] decoded;
        try
        {
            decoded = line.length == 1 && line[0] == '=' ? new byte[0] : Base64.getDecoder().decode(line);
        }
        catch (final IllegalArgumentException ex)
        {
            endAuthExchange();
            error(SmtpReplies.AUTH_BAD_BASE64);
            return;
        }
        switch (authStep)
        {
            case AUTH_PLAIN:
                checkPlain(decoded);
                break;
            case AUTH_LOGIN_USER:
                authLoginUser = new String(decoded, StandardCharsets.UTF_8);
                Arrays.fill(decoded, (byte)0);
                authStep = AUTH_LOGIN_PASSWORD;
                reply(SmtpReplies.AUTH_CHALLENGE_PASSWORD);
                break;
            default:
                check(authLoginUser, decoded);
                break;
        }
    }

    /** RFC 4616: [authzid] NUL authcid NUL passwd; acting for another identity is not supported. */
    private void checkPlain(final byte[] decoded)
    {
        final int first = indexOf(decoded, 0, 0);
        final int second = first < 0 ? -1 : indexOf(decoded, 0, first + 1);
        if (second < 0)
        {
            endAuthExchange();
            error(SmtpReplies.AUTH_BAD_BASE64);
            return;
        }
        final String authorize = new String(decoded, 0, first, StandardCharsets.UTF_8);
        final String user = new String(decoded, first + 1, second - first - 1, StandardCharsets.UTF_8);
        final byte[] password = Arrays.copyOfRange(decoded, second + 1, decoded.length);
        Arrays.fill(decoded, (byte)0);
        if (!authorize.isEmpty() && !authorize.equals(user))
        {
            authFailed(user, "authorization identity differs");
            return;
        }
        check(user, password);
    }

    /** The password is checked off the loop; nothing else happens on this connection until the answer. */
    private void check(final String user, final byte[] password)
    {
        authLoginUser = user;
        enter(State.AUTH_CHECK);
        connection.pauseInput();
        context.authenticator.verify(user, password, onAuthResult);
    }

    /** The answer of the check, on the loop thread. */
    private void onAuthResult(final int result)
    {
        if (state != State.AUTH_CHECK)
        {
            // the connection closed (or drained) meanwhile
            return;
        }
        final String user = authLoginUser;
        enter(State.READY);
        connection.resumeInput();
        if (result == Authenticator.OK)
        {
            authUser = user;
            authStep = 0;
            authLoginUser = null;
            reply(SmtpReplies.AUTH_OK);
            context.events.onAuthenticated(clientDescription(), authMechanism, printable(user));
        }
        else if (result == Authenticator.TEMPORARY)
        {
            endAuthExchange();
            countRejected++;
            reply(SmtpReplies.AUTH_TEMPORARY);
            context.events.onAuthFailed(clientDescription(), authMechanism, printable(user), "temporary failure");
        }
        else
        {
            authFailed(user, "authentication failure");
        }
        if (draining)
        {
            shutDown();
        }
    }

    /** 535; the failure counts toward the tarpit, smtp.max_errors and the address's AUTH failure rate. */
    private void authFailed(final String user, final String reason)
    {
        final String mechanism = authMechanism;
        endAuthExchange();
        if (rateLimited)
        {
            context.limiter.countAuthFailure(connection.remoteAddress().getAddress(), connection.nowMs());
        }
        context.events.onAuthFailed(clientDescription(), mechanism, printable(user), reason);
        error(SmtpReplies.AUTH_FAILED);
    }

    private void endAuthExchange()
    {
        authStep = 0;
        authLoginUser = null;
        authMechanism = null;
        if (state == State.AUTH || state == State.AUTH_CHECK)
        {
            enter(State.READY);
        }
    }

    private void onMail(final ByteBuffer buffer)
    {
        if (state == State.CONNECTED)
        {
            error(SmtpReplies.SEND_HELO_FIRST);
            return;
        }
        if (state != State.READY)
        {
            error(SmtpReplies.NESTED_MAIL);
            return;
        }
        if (authRequired && authUser == null)
        {
            // RFC 6409 §4.1 / RFC 8314: submission needs an authenticated client
            error(SmtpReplies.AUTH_REQUIRED);
            return;
        }
        final int result = arguments.parseMail(buffer, command.argStart(), command.argEnd());
        if (result != MailArguments.OK)
        {
            error(argumentError(result, true));
            return;
        }
        if (arguments.size() > settings.maxMessageSize())
        {
            error(SmtpReplies.SIZE_EXCEEDED_DECLARED);
            return;
        }
        if (rateLimited && !context.limiter.tryMessage(connection.remoteAddress().getAddress(), connection.nowMs()))
        {
            countRejected++;
            reply(SmtpReplies.TOO_MUCH_MAIL);
            return;
        }
        message.reset();
        message.reversePath(copy(buffer, arguments.pathStart(), arguments.pathEnd()));
        message.dsnRet(arguments.ret());
        if (arguments.envidStart() >= 0)
        {
            message.envelopeId(copy(buffer, arguments.envidStart(), arguments.envidEnd()));
        }
        if (arguments.body8bit())
        {
            message.addFlags(InboundMessage.FLAG_8BITMIME);
        }
        if (arguments.smtputf8())
        {
            message.addFlags(InboundMessage.FLAG_SMTPUTF8);
        }
        enter(State.MAIL);
        reply(SmtpReplies.OK_SENDER);
    }

    private void onRcpt(final ByteBuffer buffer)
    {
        if (state == State.CONNECTED)
        {
            error(SmtpReplies.SEND_HELO_FIRST);
            return;
        }
        if (transactionOpen)
        {
            error(SmtpReplies.BDAT_IN_PROGRESS);
            return;
        }
        if (state != State.MAIL && state != State.RCPT)
        {
            error(SmtpReplies.NEED_MAIL);
            return;
        }
        final int result = arguments.parseRcpt(buffer, command.argStart(), command.argEnd());
        if (result != MailArguments.OK)
        {
            error(argumentError(result, false));
            return;
        }
        if (message.recipients().size() >= settings.maxRecipients())
        {
            // RFC 5321 §4.5.3.1.8: 452 and the client sends the rest in another transaction; not an error.
            countRejected++;
            reply(SmtpReplies.TOO_MANY_RECIPIENTS);
            return;
        }
        final byte[] recipient;
        if (arguments.domainStart() < 0)
        {
            // <postmaster> without a domain (RFC 5321 §4.5.1): ours, whoever the client is.
            recipient = ("postmaster@" + settings.hostname()).getBytes(StandardCharsets.US_ASCII);
        }
        else
        {
            if (!clientMayRelay && authUser == null && !settings.relay().isRelayDomain(
                lowerCaseAscii(buffer, arguments.domainStart(), arguments.pathEnd())))
            {
                error(SmtpReplies.RELAY_DENIED);
                return;
            }
            recipient = copy(buffer, arguments.pathStart(), arguments.pathEnd());
        }
        final byte[] originalRecipient =
            arguments.orcptStart() < 0 ? null : copy(buffer, arguments.orcptStart(), arguments.orcptEnd());
        message.addRecipient(recipient, arguments.notifyBits(), originalRecipient);
        enter(State.RCPT);
        reply(SmtpReplies.OK_RECIPIENT);
    }

    private void onData()
    {
        if (hasArguments())
        {
            error(SmtpReplies.NO_ARGUMENTS);
            return;
        }
        if (transactionOpen)
        {
            error(SmtpReplies.DATA_AFTER_BDAT);
            return;
        }
        if (!requireRecipients())
        {
            return;
        }
        if (!openTransaction())
        {
            countRejected++;
            reply(SmtpReplies.STORAGE);
            return;
        }
        scanner.reset();
        connection.idleTimeoutMs(settings.dataTimeoutMs());
        enter(State.DATA);
        reply(SmtpReplies.START_DATA);
    }

    private void onBdat(final ByteBuffer buffer)
    {
        final int result = arguments.parseBdat(buffer, command.argStart(), command.argEnd());
        if (result != MailArguments.OK)
        {
            // Without a valid size the chunk's end is unknown; what follows is read as commands and, if it is
            // garbage, runs into the error limit.
            error(SmtpReplies.BDAT_SYNTAX);
            return;
        }
        bdatRemaining = arguments.bdatSize();
        bdatChunkSize = bdatRemaining;
        bdatLast = arguments.bdatLast();
        bdatDiscard = false;
        bdatDiscardReply = null;
        // RFC 3030 §2: the chunk follows whatever the reply; a refused BDAT still has its octets read and dropped.
        if (state == State.CONNECTED)
        {
            discardChunk(SmtpReplies.SEND_HELO_FIRST);
        }
        else if (state == State.READY)
        {
            discardChunk(SmtpReplies.NEED_MAIL);
        }
        else if (state == State.MAIL)
        {
            discardChunk(SmtpReplies.NEED_RCPT);
        }
        else if (!transactionOpen)
        {
            if (openTransaction())
            {
                message.addFlags(InboundMessage.FLAG_BDAT);
                bdatScanner.reset();
            }
            else
            {
                discardChunk(SmtpReplies.STORAGE);
            }
        }
        stateBeforeBdat = state;
        connection.idleTimeoutMs(settings.dataTimeoutMs());
        enter(State.BDAT);
        if (bdatRemaining == 0)
        {
            endOfChunk();
        }
    }

    private void discardChunk(final byte[] reply)
    {
        bdatDiscard = true;
        bdatDiscardReply = reply;
    }

    private boolean requireRecipients()
    {
        if (state == State.CONNECTED)
        {
            error(SmtpReplies.SEND_HELO_FIRST);
            return false;
        }
        if (state == State.READY)
        {
            error(SmtpReplies.NEED_MAIL);
            return false;
        }
        if (state == State.MAIL)
        {
            error(SmtpReplies.NEED_RCPT);
            return false;
        }
        return true;
    }

    /** Opens the spool transaction for the envelope collected so far; false when the spool refuses. */
    private boolean openTransaction()
    {
        final long nowMs = connection.nowMs();
        message.queueId(context.queueIds.next(nowMs));
        message.receivedAtMs(nowMs);
        message.clientAddress(connection.remoteAddressBytes());
        message.heloName(heloName);
        message.authenticated(authMechanism, authUser == null ? null : printable(authUser));
        message.receivedHeader(context.receivedHeader.build(message, esmtp, clientIp,
            tls ? connection.tlsProtocol() : null, connection.tlsCipher(), authUser != null));
        bodyFailed = false;
        storageFailed = false;
        tooBig = false;
        if (!context.sink.begin(message))
        {
            return false;
        }
        transactionOpen = true;
        return true;
    }

    private int onDataBytes(final ByteBuffer buffer, final int from, final int to)
    {
        final int result = scanner.scan(buffer, from, to);
        appendBody(buffer, from, scanner.bodyEnd());
        if (result == DataScanner.END_FOUND)
        {
            endOfData(scanner.sawBareLf() || scanner.sawBareCr(), scanner.sawNul(), scanner.receivedHeaders(),
                scanner.sawEightBit());
        }
        return scanner.resumeAt();
    }

    private int onBdatBytes(final ByteBuffer buffer, final int from, final int to)
    {
        final int end = (int)Math.min(to, from + bdatRemaining);
        if (!bdatDiscard)
        {
            bdatScanner.scan(buffer, from, end);
            appendBody(buffer, from, end);
        }
        bdatRemaining -= end - from;
        if (bdatRemaining == 0)
        {
            endOfChunk();
        }
        return end;
    }

    private void endOfChunk()
    {
        if (bdatDiscard)
        {
            enter(stateBeforeBdat);
            awaitCommand();
            error(bdatDiscardReply);
            return;
        }
        if (bdatLast)
        {
            endOfData(bdatScanner.sawBareLineEnd(), bdatScanner.sawNul(), bdatScanner.receivedHeaders(),
                bdatScanner.sawEightBit());
            return;
        }
        awaitCommand();
        if (bodyFailed)
        {
            // RFC 3030 §3: refuse the chunk that broke the limit and end the transaction; later chunks get 503.
            final byte[] refusal = storageFailed ? SmtpReplies.STORAGE : SmtpReplies.SIZE_EXCEEDED;
            countRejected++;
            context.events.onMessageRejected(message, clientIp,
                storageFailed ? "spool append failed" : "message size exceeds limit");
            resetTransaction();
            enter(State.READY);
            reply(refusal);
            return;
        }
        enter(State.RCPT);
        writeChunkReply();
    }

    private void writeChunkReply()
    {
        final byte[] text = ("250 2.0.0 " + bdatChunkSize + " octets received\r\n").getBytes(StandardCharsets.US_ASCII);
        reply(text);
    }

    private void appendBody(final ByteBuffer buffer, final int from, final int to)
    {
        final int length = to - from;
        if (length <= 0 || bodyFailed)
        {
            return;
        }
        if (message.bodyBytes() + length > settings.maxMessageSize())
        {
            // Keep reading to the end of data and answer 552 then (RFC 1870 §6.2), spooling nothing more.
            tooBig = true;
            bodyFailed = true;
            context.sink.abort(message);
            transactionOpen = false;
            return;
        }
        if (!context.sink.append(message, buffer, from, to))
        {
            storageFailed = true;
            bodyFailed = true;
            context.sink.abort(message);
            transactionOpen = false;
            return;
        }
        message.addBodyBytes(length);
    }

    private void endOfData(final boolean bareLineEnd, final boolean nul, final int receivedHeaders, final boolean eightBit)
    {
        awaitCommand();
        if (eightBit)
        {
            message.addFlags(InboundMessage.FLAG_8BIT_CONTENT);
        }
        final byte[] refusal;
        final String reason;
        if (storageFailed)
        {
            refusal = SmtpReplies.STORAGE;
            reason = "spool append failed";
        }
        else if (tooBig)
        {
            refusal = SmtpReplies.SIZE_EXCEEDED;
            reason = "message size exceeds limit";
        }
        else if (bareLineEnd)
        {
            refusal = SmtpReplies.BARE_LINE_END_DATA;
            reason = "bare <LF> or <CR> in content";
        }
        else if (nul)
        {
            refusal = SmtpReplies.NUL_DATA;
            reason = "NUL in content";
        }
        else if (receivedHeaders > settings.maxHops())
        {
            refusal = SmtpReplies.TOO_MANY_HOPS;
            reason = "too many hops (" + receivedHeaders + " Received headers)";
        }
        else
        {
            refusal = null;
            reason = null;
        }
        if (refusal != null)
        {
            if (transactionOpen)
            {
                context.sink.abort(message);
                transactionOpen = false;
            }
            countRejected++;
            context.events.onMessageRejected(message, clientIp, reason);
            resetTransaction();
            enter(State.READY);
            reply(refusal);
            return;
        }
        endOfDataNs = System.nanoTime();
        enter(State.COMMITTING);
        connection.pauseInput();
        if (!context.sink.complete(message, this))
        {
            transactionOpen = false;
            countRejected++;
            context.events.onMessageRejected(message, clientIp, "spool commit failed");
            resetTransaction();
            enter(State.READY);
            connection.resumeInput();
            reply(SmtpReplies.STORAGE);
        }
    }

    @Override
    public void onCommitted(final InboundMessage committed, final boolean durable)
    {
        transactionOpen = false;
        if (state != State.COMMITTING)
        {
            // The client went away while the spool synced: the message is queued all the same (it may arrive twice
            // if the client retries, as with any MTA that lost the connection before its 250).
            if (durable)
            {
                context.events.onMessageAccepted(committed, clientIp, System.nanoTime() - endOfDataNs);
            }
            return;
        }
        if (durable)
        {
            writeQueuedReply(committed.queueIdText());
            context.events.onMessageAccepted(committed, clientIp, System.nanoTime() - endOfDataNs);
        }
        else
        {
            countRejected++;
            context.events.onMessageRejected(committed, clientIp, "spool sync failed");
            reply(SmtpReplies.STORAGE);
        }
        resetTransaction();
        enter(State.READY);
        if (draining)
        {
            shutDown();
            return;
        }
        connection.resumeInput();
    }

    private void writeQueuedReply(final String queueId)
    {
        final byte[] prefix = SmtpReplies.QUEUED_PREFIX;
        System.arraycopy(prefix, 0, queuedReply, 0, prefix.length);
        for (int i = 0; i < 13; i++)
        {
            queuedReply[prefix.length + i] = (byte)queueId.charAt(i);
        }
        queuedReply[prefix.length + 13] = '\r';
        queuedReply[prefix.length + 14] = '\n';
        connection.write(queuedReply);
    }

    @Override
    public void onTimeout()
    {
        timedOut = true;
        if (state == State.CLOSING)
        {
            return;
        }
        abortIfOpen();
        if (connection.outputSpace() >= replies.timeout.length)
        {
            connection.write(replies.timeout);
        }
        close();
    }

    @Override
    public void onDrain()
    {
        draining = true;
        if (state == State.COMMITTING || state == State.DATA || state == State.BDAT || state == State.CLOSING ||
            state == State.AUTH_CHECK)
        {
            return;
        }
        shutDown();
    }

    private void shutDown()
    {
        abortIfOpen();
        if (connection.outputSpace() >= replies.shuttingDown.length)
        {
            connection.write(replies.shuttingDown);
        }
        close();
    }

    @Override
    public void onClose()
    {
        abortIfOpen();
        if (state != State.COMMITTING)
        {
            enter(State.CLOSING);
        }
        context.events.onDisconnect(clientDescription(), summary(), timedOut, connection.tlsProtocol() != null);
    }

    private void abortIfOpen()
    {
        if (transactionOpen && state != State.COMMITTING)
        {
            context.sink.abort(message);
            transactionOpen = false;
        }
    }

    private void resetTransaction()
    {
        if (transactionOpen && state != State.COMMITTING)
        {
            context.sink.abort(message);
        }
        transactionOpen = false;
        message.reset();
    }

    private void error(final byte[] reply)
    {
        countRejected++;
        reply(reply);
        if (++errors > context.softErrorLimit && context.errorDelayMs > 0 && errors < settings.maxErrors())
        {
            // Postfix smtpd_error_sleep_time: a client that keeps erring is slowed down, not served at full speed
            holdInput = true;
            connection.pauseInputFor(context.errorDelayMs);
        }
        if (errors >= settings.maxErrors())
        {
            // Postfix smtpd_hard_error_limit: a client this confused is disconnected.
            abortIfOpen();
            connection.write(replies.tooManyErrors);
            close();
        }
    }

    private void reply(final byte[] reply)
    {
        connection.write(reply);
    }

    private void close()
    {
        enter(State.CLOSING);
        connection.closeAfterFlush();
    }

    private void enter(final State next)
    {
        state = next;
    }

    private boolean hasArguments()
    {
        return command.argEnd() > command.argStart();
    }

    private byte[] argumentError(final int result, final boolean sender)
    {
        switch (result)
        {
            case MailArguments.SYNTAX_PATH:
                return sender ? SmtpReplies.BAD_SENDER : SmtpReplies.BAD_RECIPIENT;
            case MailArguments.UNKNOWN_PARAM:
                return SmtpReplies.UNKNOWN_PARAMETER;
            case MailArguments.BAD_PARAM_VALUE:
                return SmtpReplies.BAD_PARAMETER;
            case MailArguments.ADDRESS_TOO_LONG:
                return SmtpReplies.ADDRESS_TOO_LONG;
            case MailArguments.NEEDS_SMTPUTF8:
                return SmtpReplies.NEEDS_SMTPUTF8;
            default:
                return sender ? SmtpReplies.MAIL_SYNTAX : SmtpReplies.RCPT_SYNTAX;
        }
    }

    private String clientDescription()
    {
        final String helo = heloName == null ? "unknown" : new String(heloName, StandardCharsets.ISO_8859_1);
        return helo + "[" + clientIp + "]";
    }

    private String summary()
    {
        final StringBuilder text = new StringBuilder(96);
        appendCount(text, "ehlo", countEhlo);
        appendCount(text, "helo", countHelo);
        appendCount(text, "mail", countMail);
        appendCount(text, "rcpt", countRcpt);
        appendCount(text, "data", countData);
        appendCount(text, "bdat", countBdat);
        appendCount(text, "rset", countRset);
        appendCount(text, "starttls", countStartTls);
        appendCount(text, "auth", countAuth);
        appendCount(text, "quit", countQuit);
        appendCount(text, "other", countOther);
        appendCount(text, "rejected", countRejected);
        text.append("commands=").append(countEhlo + countHelo + countMail + countRcpt + countData + countBdat +
            countRset + countQuit + countOther + countStartTls + countAuth);
        return text.toString();
    }

    private static void appendCount(final StringBuilder text, final String name, final int count)
    {
        if (count > 0)
        {
            text.append(name).append('=').append(count).append(' ');
        }
    }
}
