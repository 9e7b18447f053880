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
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The commands that act on a running relay through its admin endpoint on {@code metrics.listen} (loopback only):
 * {@code reload}, {@code spool flush}, and the queue surgery verbs as Postfix's postsuper has them.
 * <pre>
 * spool hold|release|delete|requeue ID...            by queue id ("-" reads ids from standard input, one a line)
 * spool hold|release|delete|requeue --all
 * spool hold|release|delete|requeue [--sender ADDR] [--recipient-domain DOMAIN]   ("&lt;&gt;" is the null sender)
 * </pre>
 * Each sends {@code Authorization: Bearer} with {@code metrics.admin_token} when the file sets one, and the
 * operator's user name and command line, which the relay logs beside every queue id it touches. Prints the
 * relay's answer ({@code Placed on hold: 3 messages}); many queue ids go in batches of {@value #IDS_PER_REQUEST}, and
 * the counts are added up. Exit codes: 0 done, 1 refused or no relay answers, 2 usage.
 * <p>
 * Control thread; a tool, allocates freely.
 */
final class AdminClient
{
    static final List<String> QUEUE_VERBS = List.of("hold", "release", "delete", "requeue");
    /** Queue ids per request: well under the endpoint's body limit. */
    static final int IDS_PER_REQUEST = 10_000;
    /** The operator's command as sent for the log, at most (with "operator=" and the user name). */
    private static final int MAX_OPERATOR_CHARS = 300;
    /** The relay's answer to a queue command: {@code Placed on hold: 3 messages}. */
    private static final Pattern TOUCHED = Pattern.compile("([A-Za-z ]+): (\\d+) messages?");

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

    /**
     * {@code reload}: the running relay (admin endpoint on {@code address}) reads its configuration again. Exit 0
     * when it took it (what it applied and what needs a restart on {@code out}), 2 when it refused it (every error on
     * {@code err}), 1 when no relay answers.
     */
    static int reload(final InetSocketAddress address, final String token, final PrintStream out,
        final PrintStream err)
    {
        final HttpResponse<String> response = post(address, token, "/admin/reload", "", err);
        if (response == null)
        {
            return RelayMain.EXIT_FAILURE;
        }
        if (response.statusCode() == 200)
        {
            out.print(response.body());
            return RelayMain.EXIT_OK;
        }
        err.print(response.body());
        if (response.statusCode() == 422)
        {
            return RelayMain.EXIT_CONFIG;
        }
        err.println("relay: reload failed: HTTP " + response.statusCode());
        return RelayMain.EXIT_FAILURE;
    }

    /** {@code spool VERB ...}: {@code args} are what follows the verb. */
    static int queue(
        final RelayConfig config, final String verb, final List<String> args, final InputStream in,
        final PrintStream out, final PrintStream err)
    {
        final StringBuilder selection = new StringBuilder();
        final List<String> ids = new ArrayList<>();
        for (int i = 0; i < args.size(); i++)
        {
            final String arg = args.get(i);
            if ("--all".equals(arg))
            {
                selection.append("all=yes\n");
            }
            else if (("--sender".equals(arg) || "--recipient-domain".equals(arg)) && i + 1 < args.size())
            {
                selection.append(arg.substring(2)).append('=').append(args.get(++i).replace("\n", "")).append('\n');
            }
            else if ("-".equals(arg))
            {
                try
                {
                    final BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
                    String line;
                    while ((line = lines.readLine()) != null)
                    {
                        if (!line.isBlank() && !id(line.trim(), ids, err))
                        {
                            return RelayMain.EXIT_CONFIG;
                        }
                    }
                }
                catch (final IOException ex)
                {
                    err.println("relay: cannot read queue ids from standard input: " + ex.getMessage());
                    return RelayMain.EXIT_FAILURE;
                }
            }
            else if (arg.startsWith("-") || !id(arg, ids, err))
            {
                return usage(err);
            }
        }
        if (ids.isEmpty() == (selection.length() == 0))
        {
            return usage(err);
        }
        final StringBuilder operator = new StringBuilder("operator=").append(System.getProperty("user.name", "?"))
            .append(": relay spool ").append(verb);
        for (final String arg : args)
        {
            operator.append(' ').append(arg.replace("\n", ""));
        }
        if (operator.length() > MAX_OPERATOR_CHARS)
        {
            // a long list of ids on the command line: the log names the command, each id is logged anyway
            operator.setLength(MAX_OPERATOR_CHARS);
            operator.append("...");
        }
        operator.append('\n');

        // many ids go in batches: each a command of its own, so delivery never waits long for one
        String replied = null;
        long touched = 0;
        int from = 0;
        do
        {
            final StringBuilder body = new StringBuilder(selection);
            final int to = Math.min(ids.size(), from + IDS_PER_REQUEST);
            for (final String id : ids.subList(from, to))
            {
                body.append("id=").append(id).append('\n');
            }
            from = to;
            body.append(operator);
            final HttpResponse<String> response = post(config, "/admin/queue/" + verb, body.toString(), err);
            if (response == null)
            {
                return RelayMain.EXIT_FAILURE;
            }
            final Matcher count = TOUCHED.matcher(response.body().trim());
            if (response.statusCode() != 200 || !count.matches())
            {
                err.println("relay: spool " + verb + " refused: HTTP " + response.statusCode() + " " +
                    response.body().trim() + (replied == null ? "" : " (" + touched + " messages done before)"));
                return RelayMain.EXIT_FAILURE;
            }
            replied = count.group(1);
            touched += Long.parseLong(count.group(2));
        }
        while (from < ids.size());
        out.println("relay: " + replied + ": " + touched + (touched == 1 ? " message" : " messages"));
        return RelayMain.EXIT_OK;
    }

    private static boolean id(final String text, final List<String> ids, final PrintStream err)
    {
        if (QueueIds.parse(text) < 0)
        {
            err.println("relay: not a queue id: " + text);
            return false;
        }
        ids.add(text);
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
        return post(config.metrics().listen(), config.metrics().adminToken(), path, body, err);
    }

    /** POSTs {@code body} to {@code path} of the admin endpoint at {@code address}; null (said why) if none answers. */
    private static HttpResponse<String> post(
        final InetSocketAddress address, final String token, final String path, final String body,
        final PrintStream err)
    {
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
        if (!token.isEmpty())
        {
            request.header("Authorization", "Bearer " + token);
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
