package dev.relay.it;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The relay's loopback HTTP port ({@code metrics.listen}) as the process tests and benchmarks use it: one sample of
 * {@code /metrics} by its series name (labels included), and POSTs to {@code /admin/...}.
 */
final class MetricsEndpoint
{
    private static final Pattern SAMPLE = Pattern.compile("(?m)^(relay_[a-z_]+(?:\\{[^}]*})?) ([0-9.eE+]+)$");
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    /** Generous: a relay busy re-reading a backlog on the shared 2-core machine answers slowly. */
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private MetricsEndpoint()
    {
    }

    /** @return the value of {@code series} (e.g. {@code relay_queue_messages{state="deferred"}}); fails without it. */
    static long sample(final int port, final String series) throws Exception
    {
        final HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + port + "/metrics")).timeout(TIMEOUT).build(),
            HttpResponse.BodyHandlers.ofString());
        final Matcher m = SAMPLE.matcher(response.body());
        while (m.find())
        {
            if (m.group(1).equals(series))
            {
                return (long)Double.parseDouble(m.group(2));
            }
        }
        throw new AssertionError("no " + series + " in\n" + response.body());
    }

    /** {@link #sample} for polling: -1 while the relay does not answer (starting, restarting). */
    static long sampleQuietly(final int port, final String series)
    {
        try
        {
            return sample(port, series);
        }
        catch (final Exception | AssertionError ex)
        {
            return -1;
        }
    }

    /** POSTs {@code body} to {@code path}, with an {@code Authorization} header unless null. */
    static HttpResponse<String> post(final int port, final String path, final String body,
        final String authorization) throws Exception
    {
        final HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .POST(HttpRequest.BodyPublishers.ofString(body)).timeout(TIMEOUT);
        if (authorization != null)
        {
            request.header("Authorization", authorization);
        }
        return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** {@code POST /admin/flush}: every deferred message due now; fails unless the relay answers 200. */
    static void flush(final int port) throws Exception
    {
        final HttpResponse<String> response = post(port, "/admin/flush", "", null);
        if (response.statusCode() != 200)
        {
            throw new AssertionError("flush: " + response.statusCode() + " " + response.body());
        }
    }
}
