package dev.relay.it;

import dev.relay.spool.SpoolReader;
import dev.relay.spool.SpooledMessage;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The complete messages in a spool directory, read with a read-only {@link SpoolReader} (works while the relay
 * runs, in this process or another, and after it stopped or was killed).
 */
final class SpoolContents
{
    /** Bodies up to this size are kept on the heap; larger ones only by their SHA-256. */
    static final int KEEP_BODY_BYTES = 4 * 1024 * 1024;

    private SpoolContents()
    {
    }

    /** One complete message as stored. */
    record Stored(String queueId, String from, List<String> recipients, long bodyBytes, byte[] body,
        String bodySha256, String receivedHeader)
    {
        String bodyText()
        {
            return new String(body, StandardCharsets.ISO_8859_1);
        }
    }

    static List<Stored> read(final Path spoolDir) throws IOException
    {
        final List<Stored> out = new ArrayList<>();
        try (SpoolReader reader = SpoolReader.open(spoolDir))
        {
            final List<SpooledMessage> messages = new ArrayList<>();
            while (reader.poll(messages::add, 1024) > 0)
            {
                // to the end of what is there now
            }
            for (final SpooledMessage m : messages)
            {
                final MessageDigest sha = sha256();
                final byte[] body = m.bodyBytes() <= KEEP_BODY_BYTES ? new byte[(int)m.bodyBytes()] : null;
                final byte[] chunk = new byte[64 * 1024];
                final long[] at = new long[1];
                reader.readBody(m, (bytes, offset, length) ->
                {
                    for (int done = 0; done < length; )
                    {
                        final int n = Math.min(chunk.length, length - done);
                        bytes.read(offset + done, chunk, 0, n);
                        sha.update(chunk, 0, n);
                        if (body != null)
                        {
                            System.arraycopy(chunk, 0, body, (int)at[0], n);
                        }
                        at[0] += n;
                        done += n;
                    }
                });
                assertEquals(m.bodyBytes(), at[0], "body bytes read for " + m.queueIdText());
                final List<String> rcpts = new ArrayList<>();
                for (final byte[] r : m.recipients())
                {
                    rcpts.add(new String(r, StandardCharsets.UTF_8));
                }
                out.add(new Stored(m.queueIdText(), new String(m.reversePath(), StandardCharsets.UTF_8), rcpts,
                    m.bodyBytes(), body, HexFormat.of().formatHex(sha.digest()),
                    new String(m.receivedHeader(), StandardCharsets.ISO_8859_1)));
            }
        }
        return out;
    }

    /** The one stored message with this queue id; fails when absent. */
    static Stored find(final Path spoolDir, final String queueId) throws IOException
    {
        for (final Stored s : read(spoolDir))
        {
            if (s.queueId().equals(queueId))
            {
                return s;
            }
        }
        return fail("queue id " + queueId + " not in the spool " + spoolDir);
    }

    static MessageDigest sha256()
    {
        try
        {
            return MessageDigest.getInstance("SHA-256");
        }
        catch (final NoSuchAlgorithmException ex)
        {
            throw new IllegalStateException(ex);
        }
    }
}
