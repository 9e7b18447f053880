package dev.relay.config;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConfigRoutesTest
{
    private static RelayConfig routes(final String value) throws ConfigException
    {
        return RelayConfig.fromMap(Map.of("delivery.routes", value));
    }

    @Test
    void hostForms() throws Exception
    {
        final RelayConfig c = routes(
            "a.example=mx.a.example, b.example=[mail.b.example], c.example=[10.0.0.3]:2525, " +
            "d.example=relay.d.example:587, e.example=[2001:db8::5]:26, f.example=10.0.0.6, G.Example=MX.G.Example");

        assertEquals(List.of(
            new Route("a.example", "mx.a.example", 25, false),
            new Route("b.example", "mail.b.example", 25, true),
            new Route("c.example", "10.0.0.3", 2525, true),
            new Route("d.example", "relay.d.example", 587, true),
            new Route("e.example", "2001:db8::5", 26, true),
            new Route("f.example", "10.0.0.6", 25, true),
            new Route("g.example", "mx.g.example", 25, false)), c.queue().routing().routes());
    }

    @Test
    void precedenceExactThenLongestSuffixThenCatchAll() throws Exception
    {
        final RelayConfig c = routes(
            "*=smarthost:587, .example.com=[suffix], .deep.example.com=[deep], example.com=[exact], " +
            "deep.example.com=[deep-exact]");

        assertEquals("exact", c.queue().routing().routeFor("example.com").host());
        assertEquals("suffix", c.queue().routing().routeFor("www.example.com").host());
        assertEquals("suffix", c.queue().routing().routeFor("a.b.example.com").host());
        assertEquals("deep-exact", c.queue().routing().routeFor("deep.example.com").host());
        assertEquals("deep", c.queue().routing().routeFor("x.deep.example.com").host());
        assertEquals("deep", c.queue().routing().routeFor("y.x.deep.example.com").host());
        assertEquals("smarthost", c.queue().routing().routeFor("example.org").host());
        assertEquals("smarthost", c.queue().routing().routeFor("notexample.com").host());
        assertEquals("smarthost", c.queue().routing().routeFor("localhost").host());
        assertEquals(587, c.queue().routing().routeFor("example.org").port());
    }

    @Test
    void unroutedMeansMxLookup() throws Exception
    {
        final RelayConfig c = routes("example.com=[exact], .example.net=[suffix]");

        assertNull(c.queue().routing().routeFor("example.org"));
        assertNull(c.queue().routing().routeFor("example.net"), ".example.net covers subdomains only");
        assertNull(c.queue().routing().routeFor("www.example.com"));
        assertSame(c.queue().routing().routes().get(1), c.queue().routing().routeFor("a.example.net"));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "example.com|is not domain=host[:port]",
        "example.com=|bad host",
        "=host|bad domain",
        "bad_domain=host|bad domain",
        "example.com=host:0|bad port",
        "example.com=host:99999|bad port",
        "example.com=2001:db8::1|IPv6 in brackets",
        "example.com=[host|missing ']'",
        "example.com=[host]x|after ']'",
        "example.com=a, example.com=b|routed twice",
        "*.example.com=host|bad domain"
    })
    void badRoutes(final String value, final String reason)
    {
        final ConfigException ex = assertThrows(ConfigException.class, () -> routes(value));

        assertEquals(1, ex.problems().size());
        final String problem = ex.problems().get(0);
        assertTrue(problem.startsWith("map:0: delivery.routes: \"" + value + "\" is not a route list"), problem);
        assertTrue(problem.contains(reason), problem);
    }
}
