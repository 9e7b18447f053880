package dev.relay.net;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;

/**
 * The far end's TLS in tests: an {@link SSLEngine} over plain byte arrays, so a scripted peer (LoopDouble's
 * {@code Peer}, the contract test's socket peer, an SMTP client) can speak TLS without a socket of its own. Bytes
 * from the wire go in with {@link #receive}; {@link #pump} runs the engine (delegated tasks inline) and returns the
 * bytes for the wire; decrypted bytes collect in {@link #takePlaintext()}. Single-threaded.
 */
public final class TlsEndpoint
{
    private final SSLEngine engine;
    private ByteBuffer netIn = ByteBuffer.allocate(64 * 1024);
    private final ByteBuffer plainIn;
    private final ByteArrayOutputStream plaintext = new ByteArrayOutputStream();
    private final ByteArrayOutputStream toSend = new ByteArrayOutputStream();
    private final ByteBuffer netOut;
    private boolean established;
    private boolean peerClosed;
    private boolean closeRequested;
    private String failure;

    public TlsEndpoint(final SSLEngine engine)
    {
        this.engine = engine;
        this.plainIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize() + 1024);
        this.netOut = ByteBuffer.allocate(engine.getSession().getPacketBufferSize() * 2);
        try
        {
            engine.beginHandshake();
        }
        catch (final SSLException ex)
        {
            failure = ex.toString();
        }
    }

    public SSLEngine engine()
    {
        return engine;
    }

    /** Ciphertext from the wire. */
    public void receive(final byte[] bytes, final int offset, final int length)
    {
        if (netIn.remaining() < length)
        {
            final ByteBuffer grown = ByteBuffer.allocate(Math.max(netIn.capacity() * 2, netIn.position() + length));
            netIn.flip();
            grown.put(netIn);
            netIn = grown;
        }
        netIn.put(bytes, offset, length);
    }

    /** Plaintext to send once the handshake is done. */
    public void send(final byte[] bytes)
    {
        toSend.write(bytes, 0, bytes.length);
    }

    /** Sends close_notify at the next {@link #pump}. */
    public void close()
    {
        closeRequested = true;
    }

    public boolean isEstablished()
    {
        return established;
    }

    /** The other side's close_notify arrived. */
    public boolean peerClosed()
    {
        return peerClosed;
    }

    /** Why the engine failed (an alert, bad bytes), or null. */
    public String failure()
    {
        return failure;
    }

    /** Decrypted bytes received so far, taken. */
    public byte[] takePlaintext()
    {
        final byte[] bytes = plaintext.toByteArray();
        plaintext.reset();
        return bytes;
    }

    /** Runs the engine as far as it goes; returns the bytes for the wire (empty when none). */
    public byte[] pump()
    {
        final ByteArrayOutputStream wire = new ByteArrayOutputStream();
        if (failure != null)
        {
            return wire.toByteArray();
        }
        try
        {
            boolean progress = true;
            while (progress)
            {
                progress = false;
                SSLEngineResult.HandshakeStatus status = engine.getHandshakeStatus();
                while (status == SSLEngineResult.HandshakeStatus.NEED_TASK)
                {
                    Runnable task;
                    while ((task = engine.getDelegatedTask()) != null)
                    {
                        task.run();
                    }
                    status = engine.getHandshakeStatus();
                }
                if (status == SSLEngineResult.HandshakeStatus.NEED_WRAP || established && toSend.size() > 0 ||
                    closeRequested && !engine.isOutboundDone())
                {
                    if (closeRequested && toSend.size() == 0 && status != SSLEngineResult.HandshakeStatus.NEED_WRAP)
                    {
                        engine.closeOutbound();
                    }
                    final boolean application = established;
                    final byte[] pending = application ? toSend.toByteArray() : new byte[0];
                    final ByteBuffer source = ByteBuffer.wrap(pending);
                    netOut.clear();
                    final SSLEngineResult result = engine.wrap(source, netOut);
                    onResult(result);
                    if (application)
                    {
                        toSend.reset();
                        toSend.write(pending, source.position(), pending.length - source.position());
                    }
                    wire.write(netOut.array(), 0, netOut.position());
                    progress |= result.bytesProduced() > 0 || result.bytesConsumed() > 0;
                }
                if (netIn.position() > 0 && !peerClosed)
                {
                    netIn.flip();
                    plainIn.clear();
                    final SSLEngineResult result;
                    try
                    {
                        result = engine.unwrap(netIn, plainIn);
                    }
                    finally
                    {
                        netIn.compact();
                    }
                    onResult(result);
                    plaintext.write(plainIn.array(), 0, plainIn.position());
                    if (result.getStatus() == SSLEngineResult.Status.CLOSED)
                    {
                        peerClosed = true;
                    }
                    progress |= result.bytesProduced() > 0 || result.bytesConsumed() > 0;
                }
            }
        }
        catch (final SSLException ex)
        {
            failure = ex.toString();
        }
        return wire.toByteArray();
    }

    private void onResult(final SSLEngineResult result)
    {
        // beginHandshake ran in the constructor: from then on, not handshaking means done
        if (result.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.FINISHED ||
            engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING)
        {
            established = true;
        }
    }
}
