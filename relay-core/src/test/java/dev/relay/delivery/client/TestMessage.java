package dev.relay.delivery.client;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** An {@link OutboundMessage} over byte arrays; its body source hands out at most {@code partBytes} per read. */
final class TestMessage implements OutboundMessage
{
    byte[] reversePath = ascii("a@x");
    byte[][] recipients = {ascii("b@y")};
    byte[] header = ascii("Received: by relay.test\r\n");
    byte[] body = ascii("Subject: t\r\n\r\nhello\r\n");
    boolean dotStuffed = true;
    boolean eightBit;
    boolean smtpUtf8;
    int partBytes = Integer.MAX_VALUE;
    int dsnRet;
    byte[] envelopeId;
    int[] notify;
    byte[][] originalRecipients;
    int opened;
    int closed;

    static TestMessage to(final String... recipients)
    {
        final TestMessage message = new TestMessage();
        message.recipients = new byte[recipients.length][];
        for (int i = 0; i < recipients.length; i++)
        {
            message.recipients[i] = recipients[i].getBytes(StandardCharsets.UTF_8);
        }
        return message;
    }

    TestMessage body(final String text, final boolean stuffed)
    {
        body = text.getBytes(StandardCharsets.ISO_8859_1);
        dotStuffed = stuffed;
        return this;
    }

    TestMessage withHeader(final String text)
    {
        header = ascii(text);
        return this;
    }

    static byte[] ascii(final String text)
    {
        return text.getBytes(StandardCharsets.ISO_8859_1);
    }

    @Override
    public byte[] reversePath()
    {
        return reversePath;
    }

    @Override
    public int recipientCount()
    {
        return recipients.length;
    }

    @Override
    public byte[] recipient(final int index)
    {
        return recipients[index];
    }

    @Override
    public int dsnRet()
    {
        return dsnRet;
    }

    @Override
    public byte[] envelopeId()
    {
        return envelopeId;
    }

    @Override
    public int notify(final int index)
    {
        return notify == null ? 0 : notify[index];
    }

    @Override
    public byte[] originalRecipient(final int index)
    {
        return originalRecipients == null ? null : originalRecipients[index];
    }

    @Override
    public byte[] receivedHeader()
    {
        return header;
    }

    @Override
    public long bodySize()
    {
        return body.length;
    }

    @Override
    public boolean isDotStuffed()
    {
        return dotStuffed;
    }

    @Override
    public boolean isEightBit()
    {
        return eightBit;
    }

    @Override
    public boolean needsSmtpUtf8()
    {
        return smtpUtf8;
    }

    @Override
    public BodySource openBody()
    {
        opened++;
        return new BodySource()
        {
            private int position;

            @Override
            public int read(final ByteBuffer dst)
            {
                if (position == body.length)
                {
                    return -1;
                }
                final int length = Math.min(Math.min(dst.remaining(), body.length - position), partBytes);
                dst.put(body, position, length);
                position += length;
                return length;
            }

            @Override
            public void close()
            {
                closed++;
            }
        };
    }

    String wire()
    {
        return new String(header, StandardCharsets.ISO_8859_1) + new String(body, StandardCharsets.ISO_8859_1);
    }
}
