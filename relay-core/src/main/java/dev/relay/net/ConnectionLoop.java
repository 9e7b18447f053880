package dev.relay.net;

import java.nio.ByteBuffer;
import java.util.concurrent.Executor;

/**
 * What a {@link NioConnection} asks of the loop that owns it: its clock, its buffer pools, its lists (dirty, resumed,
 * tarpitted), its timeouts, interest ops and the TLS events and close that the loop handles.
 * <p>
 * The seam that lets one connection class serve two loops: {@link SelectorLoop} over sockets, and the test double
 * {@code LoopDouble} over memory, whose connections are NioConnections too (over an in-memory
 * {@link java.nio.channels.SocketChannel}), so the connection's steps (read, deliver, compact, flush, pause and
 * resume, close grace, TLS wrap and unwrap) exist once. An abstract class, not an interface: the methods stay
 * package-private, and with SelectorLoop the only subclass loaded in the relay every call from the connection binds
 * to one target (class hierarchy analysis), as the direct calls did. Loop thread only.
 */
abstract class ConnectionLoop
{
    /** The loop's clock (epoch milliseconds, read once per pass). */
    abstract long nowMs();

    /** This loop's index among the relay's loops ({@link Connection#loopIndex()}). */
    abstract int index();

    /** Runs {@code command} on the loop in a later pass (the end of a delegated TLS task comes back this way). */
    abstract void execute(Runnable command);

    abstract int writeBufferSize();

    abstract int readBufferSize();

    abstract ByteBuffer acquireReadBuffer();

    abstract void releaseReadBuffer(ByteBuffer buffer);

    abstract ByteBuffer acquireWriteBuffer();

    abstract void releaseWriteBuffer(ByteBuffer buffer);

    /** The TLS wire buffers of this loop's connections. */
    abstract BufferPool tlsPool();

    /** Where the TLS engine's delegated tasks run. */
    abstract Executor tlsTaskExecutor();

    /** Queues the connection for a flush at the end of this pass. */
    abstract void markDirty(NioConnection connection);

    /** Tarpit: input resumes at {@code atMs}. */
    abstract void resumeLater(NioConnection connection, long atMs);

    /** Queues the connection to have its buffered input offered again in this pass. */
    abstract void queueResume(NioConnection connection);

    /** The interest ops follow from the connection's state (paused, output pending, closing, TLS). */
    abstract void updateInterest(NioConnection connection);

    /** The connection's timeout starts again from now: on a new phase and whenever bytes move. */
    abstract void restartTimeout(NioConnection connection);

    /** TLS starts: the whole handshake must be done within {@code timeoutMs}. */
    abstract void startHandshake(NioConnection connection, long timeoutMs);

    /** The handshake is done: the idle timeout runs again, held output leaves, the handler is told. */
    abstract void tlsEstablished(NioConnection connection);

    /** TLS failed: the peer gets the engine's alert if it takes it, the handler the reason, then close. */
    abstract void tlsFailed(NioConnection connection, String reason);

    /** The connection is closing: it gets at most the close grace to flush. */
    abstract void startCloseGrace(NioConnection connection);

    /** Closes the connection now: buffers back, timeout cancelled, the handler's {@code onClose}. */
    abstract void close(NioConnection connection);
}
