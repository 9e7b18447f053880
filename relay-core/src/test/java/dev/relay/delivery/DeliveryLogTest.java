package dev.relay.delivery;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@code delay=} reads as it did with {@code String.format("%.2f")}. */
@Timeout(30)
class DeliveryLogTest
{
    @Test
    void secondsReadAsTheFormatterWroteThem()
    {
        for (long ms = -2_000; ms <= 200_000; ms++)
        {
            assertEquals(String.format(Locale.ROOT, "%.2f", ms / 1000.0), DeliveryLog.seconds(ms), "ms=" + ms);
        }
        for (final long ms : new long[] {86_400_000L, 432_000_005L, 3_600_004L})
        {
            assertEquals(String.format(Locale.ROOT, "%.2f", ms / 1000.0), DeliveryLog.seconds(ms), "ms=" + ms);
        }
    }
}
