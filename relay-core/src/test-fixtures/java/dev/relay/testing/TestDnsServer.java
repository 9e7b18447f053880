package dev.relay.testing;

import org.xbill.DNS.AAAARecord;
import org.xbill.DNS.ARecord;
import org.xbill.DNS.CNAMERecord;
import org.xbill.DNS.DClass;
import org.xbill.DNS.Flags;
import org.xbill.DNS.Header;
import org.xbill.DNS.MXRecord;
import org.xbill.DNS.Message;
import org.xbill.DNS.Name;
import org.xbill.DNS.Opcode;
import org.xbill.DNS.Rcode;
import org.xbill.DNS.Record;
import org.xbill.DNS.SOARecord;
import org.xbill.DNS.Section;
import org.xbill.DNS.TextParseException;
import org.xbill.DNS.Type;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.BindException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A tiny authoritative DNS server for tests: UDP and TCP on one loopback port, every name in one zone configured
 * in code, answers built with dnsjava's {@link Message}.
 * <p>
 * A name with records answers them (NOERROR/NODATA, with an SOA in the authority section, when it lacks the asked
 * type); an unknown name is NXDOMAIN; a {@link #cname} chain is followed inside the zone. Faults per name:
 * {@link #servfail}, {@link #nxdomain}, {@link #delay}, {@link #garbage} (random bytes), {@link #truncate} (UDP
 * answer empty with TC set, the full answer over TCP).
 * Every query is counted per name and type. {@link #answerDelay} holds every answer back a while, so that queries
 * overlap and {@link #peakOutstanding()} shows how many a client had in flight at once (queries read and not yet
 * answered: a lower bound of the client's count, exact while the server keeps up with reading).
 * <p>
 * Sized for many names: the zone is a hash map (10,000 domains with an MX host each is 20,000 names) and one UDP
 * thread reads, answers or schedules each query in microseconds.
 * <p>
 * Shared with relay-bench through relay-core's test-helpers jar ({@code ops/bench --domains N} answers its MX
 * lookups with it); never part of the relay.
 * <p>
 * Thread: configure from any thread (the zone is concurrent); a UDP thread, a TCP accept thread and a timer
 * thread serve queries until {@link #close()}.
 */
public final class TestDnsServer implements AutoCloseable
{
    public static final long DEFAULT_TTL = 300;

    private static final class Node
    {
        final List<Record> records = new CopyOnWriteArrayList<>();
        volatile boolean nxdomain;
        volatile boolean servfail;
        volatile boolean garbage;
        volatile boolean truncate;
        volatile long delayMs;
    }

    private final Map<Name, Node> zone = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> queries = new ConcurrentHashMap<>();
    private final AtomicInteger totalQueries = new AtomicInteger();
    private final Set<Socket> connections = ConcurrentHashMap.newKeySet();
    private final DatagramSocket udp;
    private final ServerSocket tcp;
    private final ScheduledExecutorService timer;
    private final Thread udpThread;
    private final Thread tcpThread;
    private final AtomicInteger outstanding = new AtomicInteger();
    private final AtomicInteger peakOutstanding = new AtomicInteger();
    private volatile long answerDelayMs;
    private volatile long negativeTtl = DEFAULT_TTL;
    private volatile boolean closed;

    /** Listens on 127.0.0.1, UDP and TCP on one ephemeral port. */
    public TestDnsServer() throws IOException
    {
        this(0);
    }

    /**
     * Listens on 127.0.0.1:{@code port}, UDP and TCP (0: an ephemeral port free for both); a process that starts
     * after the relay (ops/bench) tells it the port in advance.
     */
    public TestDnsServer(final int port) throws IOException
    {
        DatagramSocket boundUdp = null;
        ServerSocket boundTcp = null;
        for (int attempt = 0; attempt < (port == 0 ? 20 : 1) && boundUdp == null; attempt++)
        {
            boundTcp = new ServerSocket(port, 50, InetAddress.getLoopbackAddress());
            try
            {
                boundUdp = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(),
                    boundTcp.getLocalPort()));
            }
            catch (final BindException ex)
            {
                boundTcp.close();
            }
        }
        if (boundUdp == null)
        {
            throw new BindException("no port free for both UDP and TCP");
        }
        udp = boundUdp;
        tcp = boundTcp;
        timer = Executors.newSingleThreadScheduledExecutor((runnable) ->
        {
            final Thread thread = new Thread(runnable, "test-dns-timer");
            thread.setDaemon(true);
            return thread;
        });
        udpThread = new Thread(this::serveUdp, "test-dns-udp");
        udpThread.setDaemon(true);
        udpThread.start();
        tcpThread = new Thread(this::serveTcp, "test-dns-tcp");
        tcpThread.setDaemon(true);
        tcpThread.start();
    }

    public InetSocketAddress address()
    {
        return new InetSocketAddress(InetAddress.getLoopbackAddress(), udp.getLocalPort());
    }

    public TestDnsServer addMx(final String domain, final int preference, final String host)
    {
        return addMx(domain, preference, host, DEFAULT_TTL);
    }

    public TestDnsServer addMx(final String domain, final int preference, final String host, final long ttl)
    {
        return add(new MXRecord(name(domain), DClass.IN, ttl, preference, name(host)));
    }

    /** RFC 7505: a single MX of preference 0 with exchange ".". */
    public TestDnsServer nullMx(final String domain)
    {
        return add(new MXRecord(name(domain), DClass.IN, DEFAULT_TTL, 0, Name.root));
    }

    public TestDnsServer addA(final String host, final String ip)
    {
        return addA(host, ip, DEFAULT_TTL);
    }

    public TestDnsServer addA(final String host, final String ip, final long ttl)
    {
        return add(new ARecord(name(host), DClass.IN, ttl, address(ip)));
    }

    public TestDnsServer addAaaa(final String host, final String ip)
    {
        return addAaaa(host, ip, DEFAULT_TTL);
    }

    public TestDnsServer addAaaa(final String host, final String ip, final long ttl)
    {
        return add(new AAAARecord(name(host), DClass.IN, ttl, address(ip)));
    }

    /** An alias: queries for {@code alias} answer the CNAME, then {@code target}'s records of the asked type. */
    public TestDnsServer cname(final String alias, final String target)
    {
        return add(new CNAMERecord(name(alias), DClass.IN, DEFAULT_TTL, name(target)));
    }

    /** Makes {@code name} exist without records (every query NODATA). */
    public TestDnsServer exists(final String name)
    {
        node(name);
        return this;
    }

    public TestDnsServer nxdomain(final String name)
    {
        node(name).nxdomain = true;
        return this;
    }

    public TestDnsServer servfail(final String name)
    {
        node(name).servfail = true;
        return this;
    }

    public TestDnsServer delay(final String name, final long delayMs)
    {
        node(name).delayMs = delayMs;
        return this;
    }

    public TestDnsServer garbage(final String name)
    {
        node(name).garbage = true;
        return this;
    }

    /** Clears delay, garbage and servfail of {@code name}: it answers normally again. */
    public TestDnsServer heal(final String name)
    {
        final Node node = node(name);
        node.delayMs = 0;
        node.garbage = false;
        node.servfail = false;
        return this;
    }

    public TestDnsServer truncate(final String name)
    {
        node(name).truncate = true;
        return this;
    }

    /** Every answer waits this long (added to a name's own {@link #delay}); 0 answers at once. */
    public TestDnsServer answerDelay(final long delayMs)
    {
        answerDelayMs = delayMs;
        return this;
    }

    /** Queries read and not yet answered, now. */
    public int outstanding()
    {
        return outstanding.get();
    }

    /** The most queries that were ever read and not yet answered at once. */
    public int peakOutstanding()
    {
        return peakOutstanding.get();
    }

    /** TTL and MINIMUM of the SOA sent with NXDOMAIN and NODATA answers. */
    public TestDnsServer negativeTtl(final long seconds)
    {
        negativeTtl = seconds;
        return this;
    }

    /** Queries for {@code name} of any type, UDP and TCP. */
    public int queries(final String name)
    {
        int sum = 0;
        final String prefix = key(name) + "/";
        for (final Map.Entry<String, AtomicInteger> entry : queries.entrySet())
        {
            sum += entry.getKey().startsWith(prefix) ? entry.getValue().get() : 0;
        }
        return sum;
    }

    public int queries(final String name, final int type)
    {
        final AtomicInteger count = queries.get(key(name) + "/" + Type.string(type));
        return count == null ? 0 : count.get();
    }

    public int totalQueries()
    {
        return totalQueries.get();
    }

    public void close() throws IOException
    {
        closed = true;
        udp.close();
        tcp.close();
        for (final Socket socket : connections)
        {
            socket.close();
        }
        timer.shutdownNow();
        try
        {
            udpThread.join(5_000);
            tcpThread.join(5_000);
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
        }
    }

    private TestDnsServer add(final Record record)
    {
        node(record.getName().toString()).records.add(record);
        return this;
    }

    private Node node(final String name)
    {
        return zone.computeIfAbsent(name(name), (ignored) -> new Node());
    }

    private static Name name(final String text)
    {
        try
        {
            return Name.fromString(text, Name.root);
        }
        catch (final TextParseException ex)
        {
            throw new IllegalArgumentException(text, ex);
        }
    }

    private static InetAddress address(final String ip)
    {
        try
        {
            return InetAddress.getByName(ip);
        }
        catch (final IOException ex)
        {
            throw new IllegalArgumentException(ip, ex);
        }
    }

    /** Lower case, without a trailing dot: how queries are counted (as the resolver normalizes names). */
    private static String key(final String name)
    {
        final String lower = name.trim().toLowerCase(Locale.ROOT);
        return lower.endsWith(".") && lower.length() > 1 ? lower.substring(0, lower.length() - 1) : lower;
    }

    private void serveUdp()
    {
        final byte[] buffer = new byte[4096];
        while (!closed)
        {
            final DatagramPacket packet = new DatagramPacket(buffer, buffer.length);
            try
            {
                udp.receive(packet);
            }
            catch (final IOException ex)
            {
                return;
            }
            final byte[] query = java.util.Arrays.copyOfRange(buffer, 0, packet.getLength());
            final InetSocketAddress from = (InetSocketAddress)packet.getSocketAddress();
            respond(query, false, (bytes) -> udp.send(new DatagramPacket(bytes, bytes.length, from)));
        }
    }

    private void serveTcp()
    {
        while (!closed)
        {
            final Socket socket;
            try
            {
                socket = tcp.accept();
            }
            catch (final IOException ex)
            {
                return;
            }
            connections.add(socket);
            final Thread thread = new Thread(() -> serveConnection(socket), "test-dns-tcp-conn");
            thread.setDaemon(true);
            thread.start();
        }
    }

    private void serveConnection(final Socket socket)
    {
        try (socket)
        {
            final DataInputStream in = new DataInputStream(socket.getInputStream());
            final DataOutputStream out = new DataOutputStream(socket.getOutputStream());
            while (!closed)
            {
                final byte[] query = new byte[in.readUnsignedShort()];
                in.readFully(query);
                respond(query, true, (bytes) ->
                {
                    synchronized (out)
                    {
                        out.writeShort(bytes.length);
                        out.write(bytes);
                        out.flush();
                    }
                });
            }
        }
        catch (final EOFException | SocketException ex)
        {
            // peer or close() ended the connection
        }
        catch (final IOException ex)
        {
            // test server: nothing to report
        }
        finally
        {
            connections.remove(socket);
        }
    }

    private interface Sender
    {
        void send(byte[] bytes) throws IOException;
    }

    private void respond(final byte[] queryBytes, final boolean overTcp, final Sender sender)
    {
        final Message query;
        try
        {
            query = new Message(queryBytes);
        }
        catch (final IOException ex)
        {
            return;
        }
        final Record question = query.getQuestion();
        if (question == null)
        {
            return;
        }
        final Name qname = question.getName();
        totalQueries.incrementAndGet();
        queries.computeIfAbsent(key(qname.toString()) + "/" + Type.string(question.getType()),
            (ignored) -> new AtomicInteger()).incrementAndGet();

        final Node node = zone.get(qname);
        final byte[] answer;
        if (node != null && node.garbage)
        {
            answer = new byte[ThreadLocalRandom.current().nextInt(1, 200)];
            ThreadLocalRandom.current().nextBytes(answer);
        }
        else
        {
            answer = answer(query, question, node, overTcp).toWire();
        }

        peakOutstanding.accumulateAndGet(outstanding.incrementAndGet(), Math::max);
        final Runnable send = () ->
        {
            // counted out before it leaves: the client may ask its next query before send() returns here
            outstanding.decrementAndGet();
            try
            {
                sender.send(answer);
            }
            catch (final IOException ex)
            {
                // socket closed: the client is gone
            }
        };
        final long delayMs = (node == null ? 0 : node.delayMs) + answerDelayMs;
        if (delayMs > 0)
        {
            timer.schedule(send, delayMs, TimeUnit.MILLISECONDS);
        }
        else
        {
            send.run();
        }
    }

    private Message answer(final Message query, final Record question, final Node node, final boolean overTcp)
    {
        final Message response = new Message(query.getHeader().getID());
        final Header header = response.getHeader();
        header.setFlag(Flags.QR);
        header.setFlag(Flags.AA);
        if (query.getHeader().getFlag(Flags.RD))
        {
            header.setFlag(Flags.RD);
        }
        header.setOpcode(Opcode.QUERY);
        response.addRecord(question, Section.QUESTION);

        if (node != null && node.servfail)
        {
            header.setRcode(Rcode.SERVFAIL);
            return response;
        }
        if (node == null || node.nxdomain)
        {
            header.setRcode(Rcode.NXDOMAIN);
            response.addRecord(soa(), Section.AUTHORITY);
            return response;
        }
        if (node.truncate && !overTcp)
        {
            header.setFlag(Flags.TC);
            return response;
        }
        Node current = node;
        for (int hop = 0; hop < 8 && current != null; hop++)
        {
            Name next = null;
            boolean any = false;
            for (final Record record : current.records)
            {
                if (record.getType() == question.getType() || question.getType() == Type.ANY)
                {
                    response.addRecord(record, Section.ANSWER);
                    any = true;
                }
                else if (record instanceof CNAMERecord)
                {
                    response.addRecord(record, Section.ANSWER);
                    next = ((CNAMERecord)record).getTarget();
                }
            }
            if (any || next == null)
            {
                if (!any)
                {
                    response.addRecord(soa(), Section.AUTHORITY);
                }
                break;
            }
            current = zone.get(next);
            if (current == null || current.nxdomain)
            {
                header.setRcode(Rcode.NXDOMAIN);
                response.addRecord(soa(), Section.AUTHORITY);
                break;
            }
        }
        return response;
    }

    private SOARecord soa()
    {
        final long ttl = negativeTtl;
        return new SOARecord(Name.root, DClass.IN, ttl, name("ns.test."), name("hostmaster.test."), 1, 3600, 600,
            86400, ttl);
    }

    public List<String> names()
    {
        final List<String> names = new ArrayList<>();
        for (final Name name : zone.keySet())
        {
            names.add(name.toString(true).toLowerCase(Locale.ROOT));
        }
        return names;
    }
}
