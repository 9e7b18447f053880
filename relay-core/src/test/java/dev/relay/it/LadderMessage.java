package dev.relay.it;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One message of the size ladder ({@link SizeLadder}): the shape of its body, how the client hands it to the relay
 * (DATA or BDAT, where it pauses, how it cuts BDAT chunks), the receivers it is for, and, once sent, its sender
 * (unique: receivers' copies are matched by it) and the SHA-256 each receiver must end up with.
 */
final class LadderMessage
{
    final boolean bdat;
    final int size;
    final String label;
    final List<String> domains;
    int[] dotLines = new int[0];
    boolean dotFiller;
    boolean openEnd;
    /** Offsets in the stream (BDAT command and body, or body and end of data) where the client pauses. */
    int[] splits = new int[0];
    /** BDAT in three chunks, cut between a CR and its LF and just before a dotted line. */
    boolean chunkSplits;

    // once made and sent
    String sender;
    List<String> domainsSent = List.of();
    private String contentSha256;
    private String stuffedSha256;
    private boolean wellFormed;

    LadderMessage(final boolean bdat, final int size, final String label, final List<String> domains)
    {
        this.bdat = bdat;
        this.size = size;
        this.label = label;
        this.domains = domains;
    }

    /** The body, from a seed of its sender's; keeps its digests. */
    SizedBody makeBody(final String sender)
    {
        this.sender = sender;
        final SizedBody body = SizedBody.of(sender, size, sender.hashCode(), !bdat, dotLines, dotFiller, openEnd);
        contentSha256 = body.contentSha256;
        stuffedSha256 = body.stuffedContentSha256();
        wellFormed = body.wellFormed;
        return body;
    }

    /** The receivers it goes to, of those there: not one that would change it ({@link Inbox#wantsWellFormed}). */
    List<String> recipientsFor(final Map<String, Inbox> inboxes)
    {
        final List<String> to = new ArrayList<>();
        for (final String domain : domains)
        {
            final Inbox inbox = inboxes.get(domain);
            if (inbox != null && (wellFormed || !inbox.wantsWellFormed()))
            {
                to.add(domain);
            }
        }
        return to;
    }

    /** The SHA-256 a receiver must hold after the relay's Received: header. */
    String expectedSha256(final boolean chunking)
    {
        return bdat && !chunking ? stuffedSha256 : contentSha256;
    }

    String row()
    {
        return String.format("%-4s %9d  %-30s", bdat ? "BDAT" : "DATA", size, label);
    }
}
