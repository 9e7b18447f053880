package dev.relay.bench.e2e;

import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;

/**
 * One client connection of a {@link ClientLoop}: its state ({@link ClientLoop.State}), the transaction in flight,
 * the capabilities its server offered, and its buffers: replies in, the command and header buffers and the
 * duplicates of the run's message bodies that go out in one gathering write. A bag of fields the loop edits.
 * <p>
 * Owned by its loop's thread; allocates its buffers and body duplicates once, when the loop is built.
 */
final class ClientConnection
{
    /** Replies; with TLS room for a whole record's plaintext, so that unwrap never waits for space. */
    final ByteBuffer in;
    final ByteBuffer cmd = ByteBuffer.allocateDirect(4096);
    final ByteBuffer hdr = ByteBuffer.allocateDirect(BenchMessages.MAX_HEADER_BYTES);
    final ByteBuffer empty = ByteBuffer.allocateDirect(0);
    final ByteBuffer[] out = {cmd, hdr, empty};
    final ByteBuffer[][] stuffed;
    final ByteBuffer[][] raw;
    ClientLoop.State state = ClientLoop.State.CLOSED;
    SocketChannel channel;
    SelectionKey key;
    TlsTransport tls;
    boolean pipelining;
    boolean chunking;
    boolean bodyInFlight;
    long seq;
    long intendedNs;
    long eodNs;
    long deadlineNs = Long.MAX_VALUE;
    int step;
    int lastSentStep;
    int messagesOnConn;

    /** Which of the run's connection slots this is: with {@code --tls-resume} it keys the slot's session. */
    final int slot;

    /**
     * @param withTls the run speaks STARTTLS: the reply buffer holds a whole record's plaintext.
     */
    ClientConnection(final int slot, final BenchMessages messages, final boolean withTls)
    {
        this.slot = slot;
        this.in = ByteBuffer.allocate(withTls ? 17 * 1024 : 8192);
        this.stuffed = new ByteBuffer[messages.mix().count()][BenchMessages.VARIANTS];
        this.raw = new ByteBuffer[messages.mix().count()][BenchMessages.VARIANTS];
        cmd.flip();
        hdr.flip();
        for (int i = 0; i < stuffed.length; i++)
        {
            for (int v = 0; v < BenchMessages.VARIANTS; v++)
            {
                stuffed[i][v] = messages.stuffed(i, v).duplicate();
                raw[i][v] = messages.raw(i, v).duplicate();
            }
        }
    }
}
