package dev.relay;

import dev.relay.config.RelayConfig;
import dev.relay.smtp.QueueIds;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

/**
 * The commands that act on a running relay through its admin endpoint on {@code metrics.listen} (loopback only):
 * {@code spool flush}, and the queue surgery verbs as Postfix's postsuper has them.
 * <pre>
 * spool hold|release|delete|requeue ID...            by queue id ("-" reads ids from standard input, one a line)
 * spool hold|release|delete|requeue --all
 * spool hold|release|delete|requeue [--sender ADDR] [--recipient-domain DOMAIN]   ("&lt;&gt;" is the null sender)
 * </pre>
 * Each sends {@code Authorization: Bearer} with {@code metrics.admin_token} when the file sets one, and the
 * operator's user name and command line, which the relay logs beside every queue id it touches. Prints the
 * relay's answer ({@code Placed on hold: 3 messages}). Exit codes: 0 done, 1 refused or no relay answers, 2 usage.
 * <p>
 * Control thread; a tool, allocates freely.
 */
final class AdminClient
{
    static final List<String> QUEUE_VERBS = List.of("hold", "release", "delete", "requeue");

    private AdminClient()
    {
    }

    /** {@code spool flush}: deferred mail due now. */
    static int flush(final RelayConfig config, final PrintStream out, final PrintStream err)
    {
        final HttpResponse<String> response = post(config, "/admin/flush", "", err);
        if (response == null)
        {
            return RelayMain.EXIT_FAILURE;
        }
        if (response.statusCode() == 200)
        {
            out.println("relay: deferred mail flushed");
            return RelayMain.EXIT_OK;
        }
        err.println("relay: flush refused: HTTP " + response.statusCode() + " " + response.body().trim());
        return RelayMain.EXIT_FAILURE;
    }

    /** {@code spool VERB ...}: {@code args} are what follows the verb. */
    static int queue(
        final RelayConfig config, final String verb, final List<String> args, final InputStream in,
        final PrintStream out, final PrintStream err)
    {
        final StringBuilder body = new StringBuilder();
        boolean byId = false;
        boolean selected = false;
        for (int i = 0; i < args.size(); i++)
        {
            final String arg = args.get(i);
            if ("--all".equals(arg))
            {
                body.append("all=yes\n");
                selected = true;
            }
            else if (("--sender".equals(arg) || "--recipient-domain".equals(arg)) && i + 1 < args.size())
            {
                body.append(arg.substring(2)).append('=').append(args.get(++i).replace("\n", "")).append('\n');
                selected = true;
            }
            else if ("-".equals(arg))
            {
                try
                {
                    final BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
                    String line;
                    while ((line = lines.readLine()) != null)
                    {
                        if (!line.isBlank() && !id(line.trim(), body, err))
                        {
                            return RelayMain.EXIT_CONFIG;
                        }
                        byId = true;
                    }
                }
                catch (final IOException ex)
                {
                    err.println("relay: cannot read queue ids from standard input: " + ex.getMessage());
                    return RelayMain.EXIT_FAILURE;
                }
            }
            else if (arg.startsWith("-") || !id(arg, body, err))
            {
                return usage(err);
            }
            else
            {
                byId = true;
            }
        }
        if (byId == selected)
        {
            return usage(err);
        }
        body.append("operator=").append(System.getProperty("user.name", "?")).append(": relay spool ").append(verb);
        for (final String arg : args)
        {
            body.append(' ').append(arg.replace("\n", ""));
        }
        body.append('\n');
        final HttpResponse<String> response = post(config, "/admin/queue/" + verb, body.toString(), err);
        if (response == null)
        {
            return RelayMain.EXIT_FAILURE;
        }
        if (response.statusCode() == 200)
        {
            out.println("relay: " + response.body().trim());
            return RelayMain.EXIT_OK;
        }
        err.println("relay: spool " + verb + " refused: HTTP " + response.statusCode() + " " + response.body().trim());
        return RelayMain.EXIT_FAILURE;
    }

    private static boolean id(final String text, final StringBuilder body, final PrintStream err)
    {
        if (QueueIds.parse(text) < 0)
        {
            err.println("relay: not a queue id: " + text);
            return false;
        }
        body.append("id=").append(text).append('\n');
        return true;
    }

    private static int usage(final PrintStream err)
    {
        err.println("usage: relay spool hold|release|delete|requeue ID... | - | --all | [--sender ADDR] " +
            "[--recipient-domain DOMAIN]");
        return RelayMain.EXIT_CONFIG;
    }

    /** POSTs {@code body} to {@code path}; null (and a message) when no relay answers. */
    private static HttpResponse<String> post(
        final RelayConfig config, final String path, final String body, final PrintStream err)
    {
        final InetSocketAddress address = config.metricsListen();
        if (address == null)
        {
            err.println("relay: this command needs metrics.listen (the admin endpoint); it is off");
            return null;
        }
        // the admin endpoint answers loopback peers only: a wildcard bind is reached on 127.0.0.1
        final String host = address.getAddress().isAnyLocalAddress() ? "127.0.0.1" :
            address.getAddress().getHostAddress();
        final URI uri = URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" +
            address.getPort() + path);
        final HttpRequest.Builder request = HttpRequest.newBuilder(uri).timeout(Duration.ofMinutes(3))
            .header("Content-Type", "text/plain; charset=utf-8")
            .POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
        if (!config.metricsAdminToken().isEmpty())
        {
            request.header("Authorization", "Bearer " + config.metricsAdminToken());
        }
        try
        {
            return HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()
                .send(request.build(), HttpResponse.BodyHandlers.ofString());
        }
        catch (final IOException ex)
        {
            err.println("relay: no running relay answers at " + uri + ": " + ex.getMessage());
            return null;
        }
        catch (final InterruptedException ex)
        {
            Thread.currentThread().interrupt();
            return null;
        }
    }
}
