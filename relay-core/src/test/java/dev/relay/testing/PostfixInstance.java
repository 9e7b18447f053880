package dev.relay.testing;

import dev.relay.it.ExternalTool;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A private Postfix instance as a receiving MTA: its own {@code config_directory}, {@code queue_directory} and
 * {@code data_directory} under the test's work directory, {@code smtpd} on {@code 127.0.0.1:PORT} only (no port 25,
 * no pickup of local mail), relaying for one test domain to a {@code pipe(8)} transport that writes each message to
 * {@code out/SENDER.QUEUEID} (one recipient per delivery; the file is renamed into place when whole). Started with
 * {@code postfix -c DIR start}, stopped with {@code postfix -c DIR stop}, and its master killed by PID if it outlives
 * that.
 * <p>
 * What Postfix does to a message on this path: smtpd prepends its own {@code Received:} header ({@link #read}
 * removes it); the pipe without flags writes the message as stored, lines ending in LF, no From_ line, no
 * Delivered-To, no {@code >From} quoting. {@code local_header_rewrite_clients} is empty, so cleanup adds no
 * missing From:/Date:/Message-ID: header and rewrites no address. One change remains: cleanup inserts an empty line
 * when a line that is not a header follows the header section directly, so a message must open with a header section
 * or an empty line to arrive unchanged. smtpd offers PIPELINING, SIZE, 8BITMIME, SMTPUTF8 and CHUNKING, and
 * STARTTLS when started with a certificate ({@link #start(Path, String, long, TestCertificates.PemPair)}:
 * {@code smtpd_tls_security_level = may}, its Received: header then says {@code (using TLSv1.3 with cipher ...)}
 * and {@code ESMTPS}, and its log {@code TLS connection established from ...}).
 * <p>
 * Needs root (the master starts as root, its daemons run as mail_owner {@code postfix}, the pipe as {@code nobody});
 * without root, or without Postfix, the test is skipped (failed under CI=true).
 */
public final class PostfixInstance implements FileReceiver
{
    private static final String HOSTNAME = "postfix.test";
    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(60);

    private final Path postfix;
    private final Path base;
    private final Path out;
    private final int port;
    private final ProcessHandle master;

    private PostfixInstance(final Path postfix, final Path base, final int port, final ProcessHandle master)
    {
        this.postfix = postfix;
        this.base = base;
        this.out = base.resolve("out");
        this.port = port;
        this.master = master;
    }

    /**
     * Sets up and starts an instance in {@code workDir/postfix} that takes mail for {@code domain} from 127.0.0.0/8
     * up to {@code messageSizeLimit} octets. The work directory is opened to other users (mode 755).
     */
    public static PostfixInstance start(final Path workDir, final String domain, final long messageSizeLimit)
        throws IOException, InterruptedException
    {
        return start(workDir, domain, messageSizeLimit, null);
    }

    /** As {@link #start(Path, String, long)}, offering STARTTLS with {@code tls} (a chain and its key) if not null. */
    public static PostfixInstance start(
        final Path workDir, final String domain, final long messageSizeLimit, final TestCertificates.PemPair tls)
        throws IOException, InterruptedException
    {
        return start(workDir, domain, messageSizeLimit, tls, null);
    }

    /**
     * A Postfix that takes mail for {@code domain} from loopback clients and relays it to {@code nextHop} over SMTP
     * with {@code smtp_tls_security_level = encrypt} (STARTTLS or nothing: mail waits in its queue rather than going
     * in plaintext) and {@code smtp_tls_CAfile = caFile} — Postfix as a TLS client of the relay. Nothing is written
     * to {@link #files()}; its {@link #log()} has the {@code TLS connection established} and {@code status=} lines.
     */
    public static PostfixInstance startRelayingTo(
        final Path workDir, final String domain, final InetSocketAddress nextHop, final Path caFile)
        throws IOException, InterruptedException
    {
        return start(workDir, domain, 0, null, new TlsClient(nextHop, caFile));
    }

    private record TlsClient(InetSocketAddress nextHop, Path caFile)
    {
    }

    private static PostfixInstance start(
        final Path workDir, final String domain, final long messageSizeLimit, final TestCertificates.PemPair tls,
        final TlsClient relayTo)
        throws IOException, InterruptedException
    {
        if (!Receivers.isRoot())
        {
            ExternalTool.missing("a private Postfix instance needs root (its master starts as root); run as root " +
                "or in CI");
        }
        final Path postfix = ExternalTool.require("postfix");
        final UserPrincipal mailOwner;
        try
        {
            mailOwner = workDir.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("postfix");
        }
        catch (final IOException ex)
        {
            return ExternalTool.missing("user postfix does not exist (apt-get install postfix creates it): " + ex);
        }
        Receivers.traversable(workDir);
        final Path base = workDir.resolve("postfix");
        final Path conf = Files.createDirectories(base.resolve("conf"));
        Files.createDirectories(base.resolve("queue"));
        final Path data = Files.createDirectories(base.resolve("data"));
        Files.setOwner(data, mailOwner);
        Receivers.traversable(base);
        Receivers.openDirectory(base.resolve("out"));
        final Path deliver = base.resolve("deliver.sh");
        Files.writeString(deliver, """
            #!/bin/sh
            # pipe(8) runs this as nobody, the message on stdin: the file appears whole or not at all
            umask 022
            cat > "$1.tmp" && mv "$1.tmp" "$1"
            """, StandardCharsets.US_ASCII);
        Files.setPosixFilePermissions(deliver, PosixFilePermissions.fromString("rwxr-xr-x"));
        String main = mainCf(base, domain, messageSizeLimit);
        if (tls != null)
        {
            // smtpd reads them as its own user: copies it may read, next to the configuration
            final Path cert = Files.copy(tls.cert(), conf.resolve("smtpd.crt"));
            final Path key = Files.copy(tls.key(), conf.resolve("smtpd.key"));
            Files.setPosixFilePermissions(cert, PosixFilePermissions.fromString("rw-r--r--"));
            Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-r--r--"));
            main = main.replace("smtpd_tls_security_level = none\n", """
                smtpd_tls_security_level = may
                smtpd_tls_cert_file = %s
                smtpd_tls_key_file = %s
                smtpd_tls_loglevel = 1
                smtpd_tls_received_header = yes
                smtpd_tls_session_cache_database =
                """.formatted(cert, key));
        }
        if (relayTo != null)
        {
            // smtp(8) reads the CA file as postfix: a copy it may read, next to the configuration
            final Path ca = Files.copy(relayTo.caFile(), conf.resolve("relay-ca.crt"));
            Files.setPosixFilePermissions(ca, PosixFilePermissions.fromString("rw-r--r--"));
            main = main.replace("relay_transport = fileout\n", "relay_transport = smtp:[" +
                relayTo.nextHop().getAddress().getHostAddress() + "]:" + relayTo.nextHop().getPort() + "\n");
            main = main.replace("smtp_tls_security_level = none\n", """
                smtp_tls_security_level = encrypt
                smtp_tls_CAfile = %s
                smtp_tls_loglevel = 1
                smtp_tls_session_cache_database =
                """.formatted(ca));
        }
        Files.writeString(conf.resolve("main.cf"), main, StandardCharsets.US_ASCII);

        String failure = "";
        for (int attempt = 0; attempt < Receivers.BIND_ATTEMPTS; attempt++)
        {
            final int port = Receivers.freePort();
            Files.writeString(conf.resolve("master.cf"), masterCf(port, base), StandardCharsets.US_ASCII);
            final ExternalTool.Result started = ExternalTool.run(
                List.of(postfix.toString(), "-c", conf.toString(), "start"), workDir, COMMAND_TIMEOUT);
            final Optional<ProcessHandle> master = masterProcess(base);
            if (started.exitCode() == 0 && master.isPresent() &&
                Receivers.awaitGreeting(port, HOSTNAME, master.get()))
            {
                return new PostfixInstance(postfix, base, port, master.get());
            }
            failure = "postfix start: " + started + "\n--- maillog:\n" + Receivers.tail(base.resolve("maillog"));
            new PostfixInstance(postfix, base, port, master.orElse(null)).close();
        }
        throw new IOException("Postfix did not start after " + Receivers.BIND_ATTEMPTS + " ports:\n" + failure);
    }

    private static String mainCf(final Path base, final String domain, final long messageSizeLimit)
    {
        return """
            # a private instance for one test (see PostfixInstance)
            compatibility_level = 3.6
            queue_directory = %1$s/queue
            data_directory = %1$s/data
            mail_owner = postfix
            setgid_group = postdrop
            maillog_file = %1$s/maillog
            maillog_file_prefixes = %1$s
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            myhostname = %2$s
            mydomain = test
            myorigin = %2$s
            mydestination =
            mynetworks = 127.0.0.0/8
            relay_domains = %3$s
            relay_recipient_maps =
            relay_transport = fileout
            default_transport = error:this test instance takes mail for %3$s only
            fileout_destination_recipient_limit = 1
            smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
            smtpd_peername_lookup = no
            # no From:/Date:/Message-ID: added, no address rewritten in headers: the content stays as sent
            local_header_rewrite_clients =
            in_flow_delay = 0
            message_size_limit = %4$d
            queue_minfree = 0
            alias_maps =
            alias_database =
            biff = no
            smtpd_tls_security_level = none
            smtp_tls_security_level = none
            """.formatted(base, HOSTNAME, domain, messageSizeLimit);
    }

    private static String masterCf(final int port, final Path base)
    {
        return """
            # service type  private unpriv  chroot  wakeup  maxproc command + args
            127.0.0.1:%1$d inet n - n - - smtpd
            cleanup   unix  n       -       n       -       0       cleanup
            qmgr      unix  n       -       n       300     1       qmgr
            rewrite   unix  -       -       n       -       -       trivial-rewrite
            bounce    unix  -       -       n       -       0       bounce
            defer     unix  -       -       n       -       0       bounce
            trace     unix  -       -       n       -       0       bounce
            verify    unix  -       -       n       -       1       verify
            flush     unix  n       -       n       1000?   0       flush
            proxymap  unix  -       -       n       -       -       proxymap
            error     unix  -       -       n       -       -       error
            retry     unix  -       -       n       -       -       error
            discard   unix  -       -       n       -       -       discard
            anvil     unix  -       -       n       -       1       anvil
            scache    unix  -       -       n       -       1       scache
            postlog   unix-dgram n  -       n       -       1       postlogd
            tlsmgr    unix  -       -       n       1000?   1       tlsmgr
            smtp      unix  -       -       n       -       -       smtp
            fileout   unix  -       n       n       -       -       pipe
              flags= user=nobody argv=%2$s/deliver.sh %2$s/out/${sender}.${queue_id}
            """.formatted(port, base);
    }

    private static Optional<ProcessHandle> masterProcess(final Path base)
    {
        try
        {
            final String pid = Files.readString(base.resolve("queue/pid/master.pid"), StandardCharsets.US_ASCII);
            return ProcessHandle.of(Long.parseLong(pid.trim()));
        }
        catch (final IOException | NumberFormatException ex)
        {
            return Optional.empty();
        }
    }

    @Override
    public String name()
    {
        return "postfix";
    }

    @Override
    public int port()
    {
        return port;
    }

    @Override
    public boolean chunking()
    {
        return true;
    }

    @Override
    public boolean lfLineEnds()
    {
        return true;
    }

    @Override
    public boolean wantsWellFormed()
    {
        return true;
    }

    @Override
    public List<Path> files() throws IOException
    {
        return Receivers.files(out, ".tmp");
    }

    /** The delivered message without Postfix's own Received: header (first in the file). */
    @Override
    public CapturedMail read(final Path file) throws IOException
    {
        final byte[] delivered = Files.readAllBytes(file);
        final String name = file.getFileName().toString();
        final int dot = name.lastIndexOf('.');
        final int end = CapturedMail.skipField(delivered, 0, "Received");
        final boolean ours = end > 0 &&
            new String(delivered, 0, end, StandardCharsets.ISO_8859_1).contains("by " + HOSTNAME + " (Postfix)");
        final byte[] message = new byte[ours ? delivered.length - end : delivered.length];
        System.arraycopy(delivered, ours ? end : 0, message, 0, message.length);
        return new CapturedMail(dot < 0 ? name : name.substring(0, dot), name, message);
    }

    @Override
    public String log()
    {
        return Receivers.tail(base.resolve("maillog"));
    }

    /** {@code postfix stop}; the master and what is left of its children are killed by PID if they outlive it. */
    @Override
    public void close()
    {
        try
        {
            ExternalTool.run(List.of(postfix.toString(), "-c", base.resolve("conf").toString(), "stop"), base,
                COMMAND_TIMEOUT);
            if (master != null)
            {
                final List<ProcessHandle> children = master.descendants().toList();
                master.onExit().get(10, TimeUnit.SECONDS);
                for (final ProcessHandle child : children)
                {
                    child.destroyForcibly();
                }
            }
        }
        catch (final Exception | AssertionError stopFailed)
        {
            if (master != null)
            {
                master.descendants().forEach(ProcessHandle::destroyForcibly);
                master.destroyForcibly();
            }
        }
    }
}
