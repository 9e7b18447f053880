package dev.relay.bench.smtp;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import dev.relay.smtp.MailArguments;
import dev.relay.smtp.ParsedCommand;
import dev.relay.smtp.SmtpCommandParser;
import dev.relay.smtp.SmtpVerb;

/**
 * One pipelined envelope (EHLO, MAIL with SIZE, three RCPT, DATA) parsed from a direct buffer, with and without
 * the MAIL/RCPT argument parsing; the baseline only looks for the line feeds. Expect 0 B/op under {@code -prof gc}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
@State(Scope.Thread)
public class SmtpCommandParserBenchmark
{
    private static final String BATCH =
        "EHLO client.example.org\r\n" +
        "MAIL FROM:<sender.name@mail.example.com> SIZE=1024\r\n" +
        "RCPT TO:<first.recipient@example.net>\r\n" +
        "RCPT TO:<second.recipient@example.net>\r\n" +
        "RCPT TO:<third.recipient@example.net>\r\n" +
        "DATA\r\n";

    private final SmtpCommandParser parser = new SmtpCommandParser(SmtpCommandParser.RFC_MAX_LINE_LENGTH);
    private final ParsedCommand command = new ParsedCommand();
    private final MailArguments arguments = new MailArguments();
    private ByteBuffer buffer;
    private int limit;

    @Setup
    public void setup()
    {
        final byte[] bytes = BATCH.getBytes(StandardCharsets.US_ASCII);
        buffer = ByteBuffer.allocateDirect(4096);
        buffer.put(0, bytes);
        limit = bytes.length;
    }

    @Benchmark
    public int parseBatch()
    {
        int pos = 0;
        int commands = 0;
        while (parser.parse(buffer, pos, limit, command) == SmtpCommandParser.COMMAND)
        {
            commands += command.verb().ordinal();
            pos = command.end();
        }
        return commands;
    }

    @Benchmark
    public int parseBatchWithArguments()
    {
        int pos = 0;
        int result = 0;
        while (parser.parse(buffer, pos, limit, command) == SmtpCommandParser.COMMAND)
        {
            final SmtpVerb verb = command.verb();
            if (verb == SmtpVerb.MAIL)
            {
                result += arguments.parseMail(buffer, command.argStart(), command.argEnd()) + arguments.pathEnd();
            }
            else if (verb == SmtpVerb.RCPT)
            {
                result += arguments.parseRcpt(buffer, command.argStart(), command.argEnd()) + arguments.pathEnd();
            }
            pos = command.end();
        }
        return result;
    }

    /** Baseline: touch every byte once looking for LF, as the cheapest possible line splitter. */
    @Benchmark
    public int baselineFindLineFeeds()
    {
        int lines = 0;
        for (int i = 0; i < limit; i++)
        {
            if (buffer.get(i) == '\n')
            {
                lines++;
            }
        }
        return lines;
    }
}
