package dev.relay.testing;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * A real SMTP server on 127.0.0.1 that keeps every message it accepts as one file ({@link SmtpSinkProcess},
 * {@link PostfixInstance}, {@link AiosmtpdProcess}). Started and stopped by the test; {@code close()} stops its
 * processes by PID.
 */
public interface FileReceiver extends AutoCloseable
{
    /** What the test calls it in messages. */
    String name();

    int port();

    /** Whether it offers CHUNKING (RFC 3030), so the relay sends a BDAT-received body as BDAT. */
    boolean chunking();

    /**
     * Whether it stores lines with LF ends (Unix text, as Postfix and smtp-sink do) rather than the CRLF of the
     * wire. The test then compares after turning every LF back into CRLF: exact for content without bare CR or LF.
     */
    boolean lfLineEnds();

    /**
     * Whether it changes a message that does not open with a header section (or an empty line) and end with CRLF
     * (Postfix does: see {@link PostfixInstance}); such messages are not sent to it.
     */
    boolean wantsWellFormed();

    /** The files that hold a message or may soon; a file is listed again until it is gone. */
    List<Path> files() throws IOException;

    /** The message in {@code file}, or null while it is not complete. */
    CapturedMail read(Path file) throws IOException;

    /** The end of its own log, for a failure message. */
    String log();

    @Override
    void close();
}
