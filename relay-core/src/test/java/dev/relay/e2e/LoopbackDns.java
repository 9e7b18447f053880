package dev.relay.e2e;

import org.junit.jupiter.api.Assumptions;

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.InetSocketAddress;

/**
 * The zone the e2e tests point {@code delivery.dns.servers} at: {@code dev.relay.delivery.TestDnsServer} (UDP and
 * TCP on a loopback port) driven by reflection, because it is package-private and owned by the MX resolver's tests.
 * Without it the caller's test is skipped. Configure from the test thread; {@link #close()} stops its threads.
 */
final class LoopbackDns implements AutoCloseable
{
    private final Object server;

    private LoopbackDns(final Object server)
    {
        this.server = server;
    }

    static LoopbackDns start() throws Exception
    {
        final Class<?> type;
        try
        {
            type = Class.forName("dev.relay.delivery.TestDnsServer");
        }
        catch (final ClassNotFoundException ex)
        {
            Assumptions.abort("dev.relay.delivery.TestDnsServer is not in this tree: MX tests skipped");
            throw new AssertionError(ex);
        }
        final Constructor<?> constructor = type.getDeclaredConstructor();
        constructor.setAccessible(true);
        return new LoopbackDns(constructor.newInstance());
    }

    LoopbackDns addMx(final String domain, final int preference, final String host)
    {
        call("addMx", new Class<?>[] {String.class, int.class, String.class}, domain, preference, host);
        return this;
    }

    LoopbackDns addA(final String host, final String ip)
    {
        call("addA", new Class<?>[] {String.class, String.class}, host, ip);
        return this;
    }

    /** Makes {@code name} exist without records (every query NODATA). */
    LoopbackDns exists(final String name)
    {
        call("exists", new Class<?>[] {String.class}, name);
        return this;
    }

    LoopbackDns nullMx(final String domain)
    {
        call("nullMx", new Class<?>[] {String.class}, domain);
        return this;
    }

    LoopbackDns nxdomain(final String name)
    {
        call("nxdomain", new Class<?>[] {String.class}, name);
        return this;
    }

    /** Queries for {@code name} of any type. */
    int queries(final String name)
    {
        return (Integer)call("queries", new Class<?>[] {String.class}, name);
    }

    InetSocketAddress address()
    {
        return (InetSocketAddress)call("address", new Class<?>[0]);
    }

    @Override
    public void close()
    {
        call("close", new Class<?>[0]);
    }

    private Object call(final String name, final Class<?>[] types, final Object... args)
    {
        try
        {
            final Method method = server.getClass().getDeclaredMethod(name, types);
            method.setAccessible(true);
            return method.invoke(server, args);
        }
        catch (final InvocationTargetException ex)
        {
            throw new IllegalStateException("TestDnsServer." + name + " failed", ex.getCause());
        }
        catch (final ReflectiveOperationException ex)
        {
            throw new IllegalStateException("TestDnsServer." + name + " is not as expected", ex);
        }
    }
}
