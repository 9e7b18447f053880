package dev.relay.transfer;

import java.util.List;
import java.util.Locale;

/**
 * What an SMTP peer of a {@link TransferClient} offered in its EHLO reply (RFC 5321 §4.1.1.1): SIZE (RFC 1870),
 * 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC 3461) and CHUNKING (RFC 3030); nothing when it only spoke HELO.
 * Filled once while connecting, then only read; by the one thread that uses the client.
 */
final class PeerCapabilities
{
    /** Whether the peer answered EHLO (not just HELO). */
    boolean esmtp;
    boolean sizeOffered;
    /** The SIZE limit announced; 0 when none (no SIZE, or SIZE without a number; RFC 1870 §4). */
    long maxSize;
    boolean eightBitMime;
    boolean smtpUtf8;
    boolean dsn;
    boolean chunking;

    /** Reads the EHLO reply's {@code lines}: after the first, keywords with parameters. */
    void read(final List<String> lines)
    {
        for (int i = 1; i < lines.size(); i++)
        {
            final String line = lines.get(i).length() > 4 ? lines.get(i).substring(4).trim() : "";
            final String[] words = line.split(" +");
            switch (words[0].toUpperCase(Locale.ROOT))
            {
                case "SIZE":
                    sizeOffered = true;
                    maxSize = words.length > 1 && words[1].matches("\\d{1,18}") ? Long.parseLong(words[1]) : 0;
                    break;
                case "8BITMIME":
                    eightBitMime = true;
                    break;
                case "SMTPUTF8":
                    smtpUtf8 = true;
                    break;
                case "DSN":
                    dsn = true;
                    break;
                case "CHUNKING":
                    chunking = true;
                    break;
                default:
                    break;
            }
        }
    }
}
