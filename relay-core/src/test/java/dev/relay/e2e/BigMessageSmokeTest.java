package dev.relay.e2e;

import dev.relay.Relay;
import dev.relay.testing.TestSmtpSink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

@Timeout(120)
class BigMessageSmokeTest
{
    @TempDir
    Path spool;

    @Test
    void bigBodiesArrive() throws Exception
    {
        try (TestSmtpSink sink = TestSmtpSink.start();
             Relay relay = E2e.start(E2e.config(spool, "delivery.routes", "*=127.0.0.1:" + sink.port())))
        {
            final int[] sizes = {100_000, 300_000, 1 << 20, 20 << 20};
            try (SmtpTestClient client = new SmtpTestClient(E2e.smtp(relay)))
            {
                for (int i = 0; i < sizes.length; i++)
                {
                    client.send("a@client.test", List.of("b@example.test"), body(sizes[i], i));
                }
            }
            final List<TestSmtpSink.Received> got = sink.awaitMessages(sizes.length, Duration.ofSeconds(60));
            for (int i = 0; i < sizes.length; i++)
            {
                final byte[] want = body(sizes[i], i);
                final byte[] raw = got.get(i).raw();
                assertArrayEquals(want, Arrays.copyOfRange(raw, raw.length - want.length, raw.length));
            }
        }
    }

    private static byte[] body(final int size, final int seed)
    {
        final StringBuilder text = new StringBuilder("Subject: big " + seed + "\r\n\r\n");
        int line = 0;
        while (text.length() < size)
        {
            text.append(line % 7 == 0 ? ".." : "").append("line ").append(line++).append(' ').append("x".repeat(70))
                .append("\r\n");
        }
        return text.toString().getBytes(StandardCharsets.US_ASCII);
    }
}
