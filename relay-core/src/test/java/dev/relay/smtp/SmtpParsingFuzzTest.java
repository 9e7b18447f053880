package dev.relay.smtp;

import java.util.SplittableRandom;

import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.Test;

/**
 * Fuzzes the command parser, MAIL/RCPT/BDAT arguments and the DATA scanner together: no exception, every index
 * within its range, and the same results whatever the split of the input ({@link FuzzChecks}).
 * <p>
 * Jazzer's {@code @FuzzTest} has two modes. By default (plain {@code mvn test}, CI) it runs in regression mode:
 * only the seeds in {@code src/test/resources/dev/relay/smtp/SmtpParsingFuzzTestInputs/fuzz/} and any saved
 * findings, in milliseconds. Real coverage-guided fuzzing is switched on by the environment variable
 * {@code JAZZER_FUZZ=1} (jazzer-junit 0.24 reads only that variable, not a system property) and is bounded by
 * {@code maxDuration}; surefire passes its environment to the forked JVM, so
 * <pre>JAZZER_FUZZ=1 mvn -o -pl relay-core test -Dtest=SmtpParsingFuzzTest</pre>
 * fuzzes for 10 s (Jazzer fuzzes only one {@code @FuzzTest} per JVM, hence one target for all three parsers).
 * It needs no stdin and runs as root. Findings are written as reproducers under the Inputs directory above.
 * To fuzz longer, append a libFuzzer flag through Jazzer's JUnit configuration parameters (read from system
 * properties; a later {@code -max_total_time} overrides {@code maxDuration}):
 * <pre>JAZZER_FUZZ=1 mvn -o -pl relay-core test -Dtest=InboundSessionFuzzTest \
 *     -Djazzer.internal.arg.0=fuzz -Djazzer.internal.arg.1=-max_total_time=600</pre>
 * The other targets: {@code BodyScannerFuzzTest}, {@code ClientSessionFuzzTest},
 * {@code dev.relay.delivery.DsnBuilderFuzzTest}; each class's seeds run in every build.
 * <p>
 * Because CI runs regression mode only, {@link #boundedRandomInputs()} also throws a fixed-seed, time-boxed
 * stream of random and mutated SMTP inputs at the same checks on every build.
 */
class SmtpParsingFuzzTest
{
    private static final byte[][] FRAGMENTS = {
        "MAIL FROM:<a@b.c> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1),
        "RCPT TO:<\"q\\\"x\"@[IPv6:::1]>\r\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1),
        "BDAT 100 LAST\r\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1),
        "\r\n.\r\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1),
        "Received: x\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1),
        {'\r'}, {'\n'}, {'.'}, {0}, {(byte)0xC3, (byte)0xA9}, {'<'}, {'>'}, {'@'}, {' '}, {':'},
    };

    @FuzzTest(maxDuration = "10s")
    void fuzz(final byte[] data)
    {
        final int cut = data.length == 0 ? 0 : (data[0] & 0xFF) % (data.length + 1);
        final int maxLine = data.length < 2 ? SmtpCommandParser.RFC_MAX_LINE_LENGTH : 3 + (data[1] & 0x3F);
        FuzzChecks.checkAll(data, cut, maxLine);
        FuzzChecks.checkAll(data, data.length / 2, SmtpCommandParser.RFC_MAX_LINE_LENGTH);
    }

    @Test
    void boundedRandomInputs()
    {
        final SplittableRandom random = new SplittableRandom(0x5EED);
        final long deadline = System.nanoTime() + 2_000_000_000L;
        int runs = 0;
        while (runs < 200_000 && (runs < 1_000 || System.nanoTime() < deadline))
        {
            final byte[] data = new byte[random.nextInt(160)];
            int i = 0;
            while (i < data.length)
            {
                if (random.nextInt(3) == 0)
                {
                    data[i++] = (byte)random.nextInt(256);
                }
                else
                {
                    final byte[] fragment = FRAGMENTS[random.nextInt(FRAGMENTS.length)];
                    final int n = Math.min(fragment.length, data.length - i);
                    System.arraycopy(fragment, 0, data, i, n);
                    i += n;
                }
            }
            FuzzChecks.checkAll(data, random.nextInt(data.length + 1), 3 + random.nextInt(80));
            runs++;
        }
    }
}
