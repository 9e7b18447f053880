package dev.relay.it;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code smtp.accept=acceptor}: loop 0 accepts and hands connections to the loops in turn. (The default,
 * {@code reuseport}, measured as fast or faster: README, "Protocol choices".)
 */
@Timeout(60)
class InboundAcceptModeTest
{
    @TempDir
    Path tmp;

    @Test
    void singleAcceptorHandsConnectionsToEveryLoop() throws Exception
    {
        final List<String> ids = new ArrayList<>();
        try (InProcessRelay relay = InProcessRelay.start(tmp.resolve("spool"), "smtp.accept", "acceptor",
            "smtp.io_threads", "2"))
        {
            for (int i = 0; i < 20; i++)
            {
                try (SmtpTestClient client = relay.connectEhlo())
                {
                    ids.add(client.sendMessage("a@client.test", List.of("b@ours.test"),
                        ("Subject: " + i + "\r\n\r\nbody " + i + "\r\n").getBytes(StandardCharsets.US_ASCII)));
                    client.command("QUIT").expect(221);
                }
            }
            assertEquals(20, relay.spooled().size());
        }
        assertEquals(20, ids.stream().distinct().count());
    }
}
