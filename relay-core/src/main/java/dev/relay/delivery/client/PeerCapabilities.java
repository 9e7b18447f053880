package dev.relay.delivery.client;

import java.util.Locale;

/**
 * What the peer offered in its EHLO reply (RFC 5321 §4.1.1.1): PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME
 * (RFC 6152), SMTPUTF8 (RFC 6531), CHUNKING (RFC 3030), DSN (RFC 3461), STARTTLS (RFC 3207). All false after a
 * HELO fallback, and forgotten when TLS starts (RFC 3207 §4.2). Owned by one client session; read on its loop thread.
 */
public final class PeerCapabilities
{
    private boolean esmtp;
    private boolean pipelining;
    private boolean size;
    private long maxSize;
    private boolean eightBitMime;
    private boolean smtpUtf8;
    private boolean chunking;
    private boolean dsn;
    private boolean startTls;

    public boolean esmtp()
    {
        return esmtp;
    }

    public boolean pipelining()
    {
        return pipelining;
    }

    /** The SIZE extension was offered (then MAIL FROM carries SIZE=). */
    public boolean size()
    {
        return size;
    }

    /** The peer's fixed message size limit, or 0 for none (RFC 1870 §4: SIZE without a number or SIZE 0). */
    public long maxSize()
    {
        return maxSize;
    }

    public boolean eightBitMime()
    {
        return eightBitMime;
    }

    public boolean smtpUtf8()
    {
        return smtpUtf8;
    }

    public boolean chunking()
    {
        return chunking;
    }

    /** The DSN extension was offered: the peer takes RET/ENVID/NOTIFY/ORCPT and the duty to notify with them. */
    public boolean dsn()
    {
        return dsn;
    }

    /** STARTTLS was offered (RFC 3207). */
    public boolean startTls()
    {
        return startTls;
    }

    void clear()
    {
        esmtp = false;
        pipelining = false;
        size = false;
        maxSize = 0;
        eightBitMime = false;
        smtpUtf8 = false;
        chunking = false;
        dsn = false;
        startTls = false;
    }

    /**
     * Reads the keywords of an EHLO reply's text (lines after the first, without their reply codes): the client
     * session's and the spool transfer's one reading of them. Allocates: once per connection.
     */
    public void parseEhlo(final String text)
    {
        clear();
        esmtp = true;
        final String[] lines = text.split("\n");
        for (int i = 1; i < lines.length; i++)
        {
            final String[] words = lines[i].trim().split("[ =]+");
            if (words.length == 0)
            {
                continue;
            }
            switch (words[0].toUpperCase(Locale.ROOT))
            {
                case "PIPELINING":
                    pipelining = true;
                    break;
                case "SIZE":
                    size = true;
                    maxSize = words.length > 1 ? parseSize(words[1]) : 0;
                    break;
                case "8BITMIME":
                    eightBitMime = true;
                    break;
                case "SMTPUTF8":
                    smtpUtf8 = true;
                    break;
                case "CHUNKING":
                    chunking = true;
                    break;
                case "DSN":
                    dsn = true;
                    break;
                case "STARTTLS":
                    startTls = true;
                    break;
                default:
                    break;
            }
        }
    }

    private static long parseSize(final String word)
    {
        long value = 0;
        for (int i = 0; i < word.length(); i++)
        {
            final char c = word.charAt(i);
            if (c < '0' || c > '9')
            {
                return 0;
            }
            value = value * 10 + (c - '0');
            if (value > Long.MAX_VALUE / 20)
            {
                return 0;
            }
        }
        return value;
    }

    @Override
    public String toString()
    {
        return "PeerCapabilities{esmtp=" + esmtp + ", pipelining=" + pipelining + ", size=" + size +
            ", maxSize=" + maxSize + ", 8bitmime=" + eightBitMime + ", smtputf8=" + smtpUtf8 +
            ", chunking=" + chunking + ", dsn=" + dsn + ", starttls=" + startTls + '}';
    }
}
