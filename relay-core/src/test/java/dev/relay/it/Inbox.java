package dev.relay.it;

import dev.relay.testing.CapturedMail;
import dev.relay.testing.FileReceiver;
import dev.relay.testing.TestSmtpSink;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A receiver as {@link SizeRun} reads it: what arrived since it last looked, and what it does to a message on the
 * way ({@link #chunking()}, {@link #lfLineEnds()}, {@link #wantsWellFormed()}). Used on the test thread only.
 */
interface Inbox extends AutoCloseable
{
    /** One message found at a receiver; {@code complete}: it cannot change any more ({@code bdat}: null if unknown). */
    record Arrival(String mailFrom, String where, byte[] data, Boolean bdat, boolean complete)
    {
    }

    String name();

    /** At most nine characters, for the table. */
    String shortName();

    int port();

    /** It offers CHUNKING: a BDAT-received body reaches it as BDAT, raw; otherwise as DATA, stuffed. */
    boolean chunking();

    /** It stores lines with LF where the wire had CRLF. */
    boolean lfLineEnds();

    /** It changes a message that does not open with a header section (or an empty line) and end with CRLF. */
    boolean wantsWellFormed();

    /** What arrived and was not {@link #done} yet. */
    List<Arrival> poll() throws IOException;

    /** The arrival was judged for good: {@link #poll} does not offer it again. */
    void done(Arrival arrival);

    /** Its own log, for a failure message. */
    String log();

    @Override
    void close();

    /** A {@link TestSmtpSink}: every message is complete when recorded, with the way it came (BDAT or DATA). */
    final class Sink implements Inbox
    {
        private final String name;
        private final TestSmtpSink sink;
        private final boolean chunking;

        Sink(final String name, final TestSmtpSink sink, final boolean chunking)
        {
            this.name = name;
            this.sink = sink;
            this.chunking = chunking;
        }

        @Override
        public String name()
        {
            return name;
        }

        @Override
        public String shortName()
        {
            return chunking ? "sink+CH" : "sink";
        }

        @Override
        public int port()
        {
            return sink.port();
        }

        @Override
        public boolean chunking()
        {
            return chunking;
        }

        @Override
        public boolean lfLineEnds()
        {
            return false;
        }

        @Override
        public boolean wantsWellFormed()
        {
            return false;
        }

        @Override
        public List<Arrival> poll()
        {
            final List<Arrival> arrivals = new ArrayList<>();
            for (final TestSmtpSink.Received r : sink.takeMessages())
            {
                arrivals.add(new Arrival(r.mailFrom(), "connection " + r.connectionId() + " transaction " +
                    r.transactionIndex(), r.content(), r.bdat(), true));
            }
            return arrivals;
        }

        @Override
        public void done(final Arrival arrival)
        {
            // taken from the sink already
        }

        @Override
        public String log()
        {
            return sink.connectionsAccepted() + " connections";
        }

        @Override
        public void close()
        {
            sink.close();
        }
    }

    /** A {@link FileReceiver}: a file that is not right yet is read again at the next poll (it may be growing). */
    final class Files implements Inbox
    {
        private final FileReceiver receiver;
        private final Set<String> done = new HashSet<>();

        Files(final FileReceiver receiver)
        {
            this.receiver = receiver;
        }

        @Override
        public String name()
        {
            return receiver.name();
        }

        @Override
        public String shortName()
        {
            return receiver.name();
        }

        @Override
        public int port()
        {
            return receiver.port();
        }

        @Override
        public boolean chunking()
        {
            return receiver.chunking();
        }

        @Override
        public boolean lfLineEnds()
        {
            return receiver.lfLineEnds();
        }

        @Override
        public boolean wantsWellFormed()
        {
            return receiver.wantsWellFormed();
        }

        @Override
        public List<Arrival> poll() throws IOException
        {
            final List<Arrival> arrivals = new ArrayList<>();
            for (final Path file : receiver.files())
            {
                if (done.contains(file.toString()))
                {
                    continue;
                }
                final CapturedMail mail = receiver.read(file);
                if (mail != null)
                {
                    arrivals.add(new Arrival(mail.mailFrom(), file.toString(), mail.data(), null, false));
                }
            }
            return arrivals;
        }

        @Override
        public void done(final Arrival arrival)
        {
            done.add(arrival.where());
        }

        @Override
        public String log()
        {
            return receiver.log();
        }

        @Override
        public void close()
        {
            receiver.close();
        }
    }
}
