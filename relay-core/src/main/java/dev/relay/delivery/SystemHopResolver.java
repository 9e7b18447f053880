package dev.relay.delivery;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;

/**
 * Resolves direct next hops ({@code [host]:port} routes): IP literals at once, host names on a small resolver
 * thread (never on the loop). MX hops are handed to {@code mx}.
 */
public final class SystemHopResolver implements HopResolver
{
    private static final long ADDRESS_TTL_MS = 60_000;
    private static final long FAILURE_TTL_MS = 10_000;

    private final ExecutorService executor = Executors.newSingleThreadExecutor(runnable ->
    {
        final Thread thread = new Thread(runnable, "hop-resolver");
        thread.setDaemon(true);
        return thread;
    });
    private final HopResolver mx;

    public SystemHopResolver(final HopResolver mx)
    {
        this.mx = mx;
    }

    @Override
    public void resolve(final NextHop hop, final long nowMs, final Consumer<HopAddresses> callback)
    {
        if (hop.mxLookup())
        {
            mx.resolve(hop, nowMs, callback);
            return;
        }
        if (isIpLiteral(hop.host()))
        {
            try
            {
                final InetAddress address = InetAddress.getByName(hop.host());
                final HopAddress only = new HopAddress(hop.host(), 0, new InetSocketAddress(address, hop.port()));
                callback.accept(HopAddresses.of(List.of(only), Long.MAX_VALUE));
            }
            catch (final UnknownHostException ex)
            {
                callback.accept(HopAddresses.failure(true, "5.1.2", "bad address literal " + hop.host(), nowMs));
            }
            return;
        }
        executor.execute(() ->
        {
            final long now = System.currentTimeMillis();
            try
            {
                final List<HopAddress> addresses = new ArrayList<>();
                for (final InetAddress address : InetAddress.getAllByName(hop.host()))
                {
                    addresses.add(new HopAddress(hop.host(), 0, new InetSocketAddress(address, hop.port())));
                }
                callback.accept(HopAddresses.of(addresses, now + ADDRESS_TTL_MS));
            }
            catch (final UnknownHostException ex)
            {
                callback.accept(HopAddresses.failure(false, "4.4.3",
                    "Host or domain name not found: " + hop.host(), now + FAILURE_TTL_MS));
            }
        });
    }

    static boolean isIpLiteral(final String host)
    {
        if (host.indexOf(':') >= 0)
        {
            return true;
        }
        int dots = 0;
        for (int i = 0; i < host.length(); i++)
        {
            final char c = host.charAt(i);
            if (c == '.')
            {
                dots++;
            }
            else if (c < '0' || c > '9')
            {
                return false;
            }
        }
        return dots == 3;
    }

    @Override
    public void flush()
    {
        mx.flush();
    }

    @Override
    public void close()
    {
        executor.shutdownNow();
        mx.close();
    }
}
