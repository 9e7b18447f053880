package dev.relay.smtp;

import dev.relay.net.Connection;
import dev.relay.net.ConnectionHandler;

import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The server side of one SMTP conversation (RFC 5321, with PIPELINING RFC 2920, SIZE RFC 1870, 8BITMIME
 * RFC 6152, SMTPUTF8 RFC 6531, CHUNKING RFC 3030, DSN RFC 3461, ENHANCEDSTATUSCODES RFC 2034).
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
 * Called only on the owning loop thread. Allocates per transaction (envelope addresses, Received header), not
 * per command or per body byte (DSN's ENVID and ORCPT are copied only when given).
 */
public final class SmtpSession implements ConnectionHandler, MessageSink.CommitListener
{
    enum State
    {
        CONNECTED, READY, MAIL, RCPT, DATA, BDAT, COMMITTING, CLOSING
    }

    private final SessionContext context;
    private final SmtpSettings settings;
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

    private State state = State.CONNECTED;
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
        this.clientMayRelay = settings.relayClient().test(connection.remoteAddressBytes());
        this.rateLimited = context.limiter != null && !context.limiter.isExempt(connection.remoteAddress().getAddress());
        this.clientIp = ipText(connection.remoteAddressBytes());
        message.owner(this);
    }

    State state()
    {
        return state;
    }

    @Override
    public void onOpen()
    {
        awaitCommand();
        connection.write(replies.greeting);
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
                case COMMITTING:
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
            case EXPN:
            case STARTTLS:
            case AUTH:
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
        reply(extended ? replies.ehlo : replies.helo);
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
            if (!clientMayRelay && !settings.relayDomain().test(
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
        message.receivedHeader(context.receivedHeader.build(message, esmtp, clientIp));
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
        if (state == State.COMMITTING || state == State.DATA || state == State.BDAT || state == State.CLOSING)
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
        context.events.onDisconnect(clientDescription(), summary(), timedOut);
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
        appendCount(text, "quit", countQuit);
        appendCount(text, "other", countOther);
        appendCount(text, "rejected", countRejected);
        text.append("commands=").append(
            countEhlo + countHelo + countMail + countRcpt + countData + countBdat + countRset + countQuit + countOther);
        return text.toString();
    }

    private static void appendCount(final StringBuilder text, final String name, final int count)
    {
        if (count > 0)
        {
            text.append(name).append('=').append(count).append(' ');
        }
    }

    private static int firstTokenEnd(final ByteBuffer buffer, final int start, final int end)
    {
        for (int i = start; i < end; i++)
        {
            final byte b = buffer.get(i);
            if (b == ' ' || b == '\t')
            {
                return i;
            }
        }
        return end;
    }

    private static byte[] copy(final ByteBuffer buffer, final int start, final int end)
    {
        final byte[] bytes = new byte[Math.max(0, end - start)];
        for (int i = 0; i < bytes.length; i++)
        {
            bytes[i] = buffer.get(start + i);
        }
        return bytes;
    }

    private static String lowerCaseAscii(final ByteBuffer buffer, final int start, final int end)
    {
        final byte[] bytes = copy(buffer, start, end);
        return MailAddresses.domain(bytes, 0, bytes.length);
    }

    private static String ipText(final byte[] address)
    {
        try
        {
            return InetAddress.getByAddress(address).getHostAddress();
        }
        catch (final java.net.UnknownHostException ex)
        {
            return "unknown";
        }
    }
}
