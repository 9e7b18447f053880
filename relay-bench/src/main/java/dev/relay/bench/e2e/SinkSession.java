package dev.relay.bench.e2e;

import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;
import java.util.zip.CRC32C;

/**
 * One SMTP session of {@link BenchSink}: its state ({@link #COMMAND}, {@link #DATA} or {@link #BDAT}), the
 * envelope so far, the message being read (header fields of interest, length, CRC32C of the un-stuffed body) and
 * its buffers. A bag of fields the sink's loop edits; no behaviour but its resets.
 * <p>
 * Owned by the sink's loop thread; allocates its buffers and CRC once, at accept.
 */
final class SinkSession
{
    static final int COMMAND = 0;
    static final int DATA = 1;
    static final int BDAT = 2;

    final SocketChannel channel;
    final ByteBuffer in = ByteBuffer.allocate(64 * 1024);
    final ByteBuffer out = ByteBuffer.allocate(4096);
    final byte[] header = new byte[1000];
    final CRC32C crc = new CRC32C();
    SelectionKey key;
    TlsTransport tls;
    boolean startTls;
    int mode = COMMAND;
    boolean mail;
    int rcpts;
    boolean quit;
    boolean inMessage;
    boolean inHeaders;
    boolean lineStart;
    int headerLength;
    long wireBytes;
    long bodyLength;
    long sentMicros;
    boolean hasSum;
    int expectedSum;
    long expectedLength;
    long bdatRemaining;
    boolean bdatLast;
    boolean bdatReject;

    SinkSession(final SocketChannel channel)
    {
        this.channel = channel;
    }

    void reset()
    {
        mail = false;
        rcpts = 0;
        inMessage = false;
        mode = COMMAND;
    }

    void beginMessage()
    {
        inMessage = true;
        inHeaders = true;
        lineStart = true;
        headerLength = 0;
        wireBytes = 0;
        bodyLength = 0;
        sentMicros = -1;
        hasSum = false;
        expectedLength = -1;
        crc.reset();
    }
}
