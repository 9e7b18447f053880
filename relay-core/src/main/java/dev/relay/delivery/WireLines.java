package dev.relay.delivery;

import dev.relay.smtp.DotStuffing;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

import static dev.relay.delivery.DsnBuilder.MAX_LINE_OCTETS;

/**
 * The lines of a message the relay writes itself ({@link DsnBuilder}), in wire form: each line dot-stuffed
 * (RFC 5321 §4.5.2), split so none exceeds {@link DsnBuilder#MAX_LINE_OCTETS} (a split line goes on as a
 * continuation, never inside a UTF-8 sequence), ended by CRLF; header-style fields folded at spaces.
 * <p>
 * One per message being built, on the building thread; allocates its growing output.
 */
final class WireLines
{
    /** Where a field is folded (RFC 5322 §2.1.1: lines SHOULD be at most 78 characters). */
    private static final int FOLD_COLUMN = 78;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream(4096);

    void text(final String line)
    {
        bytes(line.getBytes(StandardCharsets.UTF_8));
    }

    /** A header-style field, folded at spaces near {@link #FOLD_COLUMN}; continuation lines start with a tab. */
    void field(final String name, final String value)
    {
        final String[] words = value.split(" ", -1);
        final StringBuilder line = new StringBuilder(name);
        boolean first = true;
        for (final String word : words)
        {
            if (word.isEmpty())
            {
                continue;
            }
            if (!first && line.length() + 1 + word.length() > FOLD_COLUMN && line.toString().trim().length() > 0)
            {
                text(line.toString());
                line.setLength(0);
                line.append('\t').append(word);
            }
            else
            {
                line.append(first ? "" : " ").append(word);
            }
            first = false;
        }
        text(line.toString());
    }

    void bytes(final byte[] line)
    {
        int start = 0;
        do
        {
            int room = MAX_LINE_OCTETS;
            if (start > 0)
            {
                out.write(' '); // a continuation of a split line stays part of a folded field
                room--;
            }
            else if (DotStuffing.needsDot(line, 0, line.length))
            {
                out.write('.');
                room--;
            }
            int end = Math.min(line.length, start + room);
            while (end < line.length && end > start + 1 && (line[end] & 0xC0) == 0x80)
            {
                end--; // do not split a UTF-8 sequence
            }
            out.write(line, start, end - start);
            out.write('\r');
            out.write('\n');
            start = end;
        }
        while (start < line.length);
    }

    byte[] toByteArray()
    {
        return out.toByteArray();
    }
}
