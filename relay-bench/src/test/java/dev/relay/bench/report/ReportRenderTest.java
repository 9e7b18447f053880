package dev.relay.bench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.imageio.ImageIO;

import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Builds a report from small fixture phases (HdrHistogram {@code .hgrm} files and {@code RESULT}/{@code SINK}/
 * {@code PROCESS} lines, as {@link E2eRun} leaves them) and opens {@code report.html} in headless Chromium: the
 * rendered DOM must hold the table and three SVG plots with a line per run, and the screenshot must show them. The
 * screenshot and DOM are copied to {@code target/report-render/} to look at.
 *
 * <p>Needs Debian's {@code chromium} on the PATH: without it the test fails when {@code CI=true} and is skipped
 * otherwise ({@code apt-get install chromium}).
 */
class ReportRenderTest
{
    private static final long CHROMIUM_TIMEOUT_SECONDS = 30;

    private static final String[] PHASES = {"closed", "open-50"};

    private static final long BODY_BYTES = 2000L * 25121;

    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void reportRendersInHeadlessChromium(@TempDir final Path tmp) throws Exception
    {
        final Path chromium = chromium();

        final Path dir = tmp.resolve("bench-report");
        writeFixture(dir);
        ReportWriter.main(new String[] {"--dir", dir.toString(), "--command", "ops/bench --quick",
            "--commit", "0123456789abcdef", "--settings", "fixture"});
        final Path report = dir.resolve("report.html");
        assertTrue(Files.isRegularFile(report), "report.html written");
        final String summary = Files.readString(dir.resolve("summary.md"));
        assertTrue(summary.contains("| closed |"), "summary.md has the table:\n" + summary);
        assertTrue(summary.contains("| throughput msg/s | MB/s |")
            && summary.contains("| CPU s / 1k msgs | CPU s / GB |"),
            "summary.md has the MB/s and CPU per GB columns beside msg/s and CPU per 1k:\n" + summary);
        assertTrue(summary.contains("| closed | closed, c=50 | 8000 | 100 |"), "MB/s of the closed run:\n" + summary);
        assertTrue(summary.contains("| 0.450 | 17.9 |"), "CPU s per GB of the runs:\n" + summary);
        assertTrue(summary.contains("size mix `realistic` = `1k:1020,2k:3071,") && summary.contains("SPECmail2001")
            && summary.contains("mean 25,121 bytes"), "summary.md says which sizes were sent:\n" + summary);

        final Path shot = tmp.resolve("shot.png");
        final String dom = runChromium(chromium, tmp, report, "--dump-dom");
        runChromium(chromium, tmp, report, "--screenshot=" + shot);

        final Path keep = Path.of("target", "report-render");
        Files.createDirectories(keep);
        Files.writeString(keep.resolve("dom.html"), dom);
        if (Files.isRegularFile(shot))
        {
            Files.copy(shot, keep.resolve("shot.png"), StandardCopyOption.REPLACE_EXISTING);
        }
        Files.copy(report, keep.resolve("report.html"), StandardCopyOption.REPLACE_EXISTING);

        checkDom(dom);
        checkScreenshot(shot);
    }

    // ---- fixture ----

    /** Two phases like E2eRun's: closed loop, then open loop at half the rate, with a slower tail in the second. */
    private static void writeFixture(final Path dir) throws IOException
    {
        for (int phase = 0; phase < PHASES.length; phase++)
        {
            final Path p = dir.resolve(PHASES[phase]);
            Files.createDirectories(p);
            final Histogram accept = new Histogram(3_600_000_000_000L, 3);
            final Histogram txn = new Histogram(3_600_000_000_000L, 3);
            final Histogram e2e = new Histogram(3_600_000_000_000L, 3);
            for (int i = 1; i <= 2000; i++)
            {
                // 0.2 .. ~2 ms, with a tail of a few slow ones (ns); the second phase is 1.5x slower
                final double scale = phase == 0 ? 1.0 : 1.5;
                final long base = (long)(scale * (200_000 + (i % 100) * 18_000L));
                final long tail = i % 500 == 0 ? (long)(scale * 6_000_000) : i % 97 == 0 ? (long)(scale * 3_000_000) : 0;
                accept.recordValue(base + tail);
                txn.recordValue(base + tail + 50_000);
                e2e.recordValue(2 * base + tail + 300_000);
            }
            write(p.resolve("accept.hgrm"), accept);
            write(p.resolve("txn.hgrm"), txn);
            write(p.resolve("e2e.hgrm"), e2e);
            final double rate = phase == 0 ? 0 : 4000;
            // 2000 messages of the realistic mix's mean size (25121 bytes) in 0.5 s: 100.484 MB/s; 0.9 CPU s for
            // 50.242 MB: 17.9 CPU s per GB
            final String result = String.format(Locale.ROOT,
                "RESULT messages=2000 errors=0 msg_errors=0 conn_errors=0 unfinished=0 seconds=0.500 "
                    + "msgs_per_sec=%.1f body_bytes=%d mb_per_sec=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
                    + "p999_ms=%.3f max_ms=%.3f txn_p50_ms=%.3f txn_p99_ms=%.3f txn_p999_ms=%.3f txn_max_ms=%.3f",
                phase == 0 ? 8000.0 : 3999.5, BODY_BYTES, BODY_BYTES / 0.5 / 1e6, ms(accept, 50), ms(accept, 90),
                ms(accept, 99), ms(accept, 99.9), accept.getMaxValue() / 1e6, ms(txn, 50), ms(txn, 99),
                ms(txn, 99.9), txn.getMaxValue() / 1e6);
            final String sink = String.format(Locale.ROOT,
                "SINK e2e_count=%d e2e_p50_ms=%.3f e2e_p90_ms=%.3f e2e_p99_ms=%.3f e2e_p999_ms=%.3f e2e_max_ms=%.3f "
                    + "mismatches=0",
                e2e.getTotalCount(), ms(e2e, 50), ms(e2e, 90), ms(e2e, 99), ms(e2e, 99.9), e2e.getMaxValue() / 1e6);
            final String process = String.format(Locale.ROOT,
                "PROCESS phase=%s rate=%.1f cpu_s=0.900 cpu_s_per_1k=0.4500 cpu_s_per_gb=%.4f peak_rss_kb=262144 "
                    + "delivered=2000 undelivered=0 mix=realistic mean_size=25121", PHASES[phase], rate,
                0.9 * 1e9 / BODY_BYTES);
            Files.writeString(p.resolve("phase.txt"), String.join("\n", result, sink, process) + "\n");
        }
    }

    private static void write(final Path file, final Histogram h) throws IOException
    {
        try (PrintStream ps = new PrintStream(file.toFile(), StandardCharsets.US_ASCII))
        {
            h.outputPercentileDistribution(ps, 1e6);
        }
    }

    private static double ms(final Histogram h, final double percentile)
    {
        return h.getValueAtPercentile(percentile) / 1e6;
    }

    // ---- chromium ----

    private static Path chromium()
    {
        final String path = System.getenv().getOrDefault("PATH", "");
        for (final String name : new String[] {"chromium", "chromium-browser"})
        {
            for (final String d : path.split(File.pathSeparator))
            {
                final Path candidate = Path.of(d.isEmpty() ? "." : d, name);
                if (Files.isRegularFile(candidate) && Files.isExecutable(candidate))
                {
                    return candidate;
                }
            }
        }
        final String msg = "headless Chromium is needed to check report.html renders, and `chromium` is not on the "
            + "PATH (Debian: apt-get install -y chromium)";
        if ("true".equalsIgnoreCase(System.getenv("CI")))
        {
            fail(msg + "; CI=true, so this is a failure, not a skip");
        }
        Assumptions.assumeTrue(false, msg + "; skipped (CI is not true)");
        return null;
    }

    /** Runs one headless Chromium command on the report; its stdout (the DOM for --dump-dom). Bounded, then killed. */
    private static String runChromium(final Path chromium, final Path tmp, final Path report, final String command)
        throws IOException, InterruptedException
    {
        final Path profile = Files.createTempDirectory(tmp, "chromium-profile");
        final Path out = Files.createTempFile(tmp, "chromium", ".out");
        final Path err = Files.createTempFile(tmp, "chromium", ".err");
        final List<String> args = new ArrayList<>(List.of(chromium.toString(), "--headless", "--no-sandbox",
            "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile, "--window-size=1280,2000"));
        args.add(command);
        args.add(report.toUri().toString());
        final ProcessBuilder pb = new ProcessBuilder(args).redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().put("HOME", profile.toString());   // keeps ~/.config, ~/.cache, crash dumps in the temp dir
        final Process p = pb.start();
        try
        {
            if (!p.waitFor(CHROMIUM_TIMEOUT_SECONDS, TimeUnit.SECONDS))
            {
                fail("chromium " + command + " did not finish within " + CHROMIUM_TIMEOUT_SECONDS + " s; stderr:\n"
                    + tail(err));
            }
            assertEquals(0, p.exitValue(), () -> "chromium " + command + " exit status; stderr:\n" + tail(err));
            return Files.readString(out, StandardCharsets.UTF_8);
        }
        finally
        {
            // children first (they are only descendants while the parent lives), then the browser process itself
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            p.waitFor(5, TimeUnit.SECONDS);
        }
    }

    private static String tail(final Path file)
    {
        try
        {
            final String s = Files.readString(file, StandardCharsets.UTF_8);
            return s.length() > 4000 ? s.substring(s.length() - 4000) : s;
        }
        catch (final IOException e)
        {
            return "(unreadable: " + e + ")";
        }
    }

    // ---- checks ----

    private static void checkDom(final String dom)
    {
        assertTrue(dom.contains("<h1>relay benchmark report</h1>"), "rendered DOM has the heading:\n" + head(dom));
        // the parser's DOM, not the source: <tbody> is implied by the HTML parser
        assertTrue(dom.contains("<table><tbody><tr><th>run</th>"), "rendered DOM has the table:\n" + head(dom));
        for (final String phase : PHASES)
        {
            assertTrue(dom.contains("<tr><td>" + phase + "</td>"), "a table row for " + phase);
        }
        assertTrue(dom.contains("<td>closed, c=50</td>") && dom.contains("<td>4000</td>"), "offered rates in the table");
        assertTrue(dom.contains("<th>MB/s</th>") && dom.contains("<th>CPU s / GB</th>"), "MB/s and CPU per GB columns");
        assertTrue(dom.contains("<td>100</td>") && dom.contains("<td>17.9</td>"), "MB/s and CPU per GB figures");
        assertTrue(dom.contains("size mix realistic = 1k:1020,"), "the size mix is named above the table");

        final Matcher svg = Pattern.compile("<svg\\b.*?</svg>", Pattern.DOTALL).matcher(dom);
        int plots = 0;
        while (svg.find())
        {
            plots++;
            final String s = svg.group();
            final Matcher d = Pattern.compile("<(?:path|polyline)\\b[^>]*\\b(?:d|points)=\"([^\"]*)\"").matcher(s);
            int lines = 0;
            while (d.find())
            {
                lines++;
                final String data = d.group(1);
                assertTrue(data.split("[ML ]").length > 10, "a plot line with points: " + data);
                assertFalse(data.contains("NaN") || data.contains("Infinity"), "plot coordinates are numbers: " + data);
            }
            assertEquals(PHASES.length, lines, "one line per run in plot " + plots + ":\n" + s);
            for (final String phase : PHASES)
            {
                assertTrue(s.contains(">" + phase + "</text>"), "legend entry " + phase + " in plot " + plots);
            }
        }
        assertEquals(3, plots, "accept, txn and e2e plots");

        for (final String bad : new String[] {"NaN", "Infinity", "undefined", "This page contains the following errors",
            "ERR_FILE_NOT_FOUND", "ERR_ACCESS_DENIED", "Exception"})
        {
            assertFalse(dom.contains(bad), "no \"" + bad + "\" in the rendered DOM");
        }
        assertFalse(dom.contains("<td>-</td>"), "no missing figures in the table");
    }

    private static String head(final String s)
    {
        return s.length() > 2000 ? s.substring(0, 2000) + "..." : s;
    }

    /** Not blank: enough non-white pixels and colours, and the first two run colours (the plot lines) are there. */
    private static void checkScreenshot(final Path shot) throws IOException
    {
        assertTrue(Files.isRegularFile(shot) && Files.size(shot) > 0, "chromium wrote " + shot);
        final BufferedImage img = ImageIO.read(shot.toFile());
        assertNotNull(img, "screenshot is a PNG ImageIO can read");
        assertEquals(1280, img.getWidth(), "screenshot width");
        final Set<Integer> colours = new HashSet<>();
        long nonWhite = 0;
        long blue = 0;
        long red = 0;
        for (int y = 0; y < img.getHeight(); y++)
        {
            for (int x = 0; x < img.getWidth(); x++)
            {
                final int rgb = img.getRGB(x, y) & 0xffffff;
                colours.add(rgb);
                if (rgb != 0xffffff)
                {
                    nonWhite++;
                }
                if (near(rgb, 0x1f77b4))
                {
                    blue++;
                }
                if (near(rgb, 0xd62728))
                {
                    red++;
                }
            }
        }
        final long pixels = (long)img.getWidth() * img.getHeight();
        final String stats = String.format(Locale.ROOT, "%dx%d, %d colours, %d non-white pixels (%.2f%%), "
            + "%d blue, %d red", img.getWidth(), img.getHeight(), colours.size(), nonWhite, 100.0 * nonWhite / pixels,
            blue, red);
        System.err.println("ReportRenderTest: screenshot " + stats);
        assertTrue(colours.size() > 50, "screenshot has text and plots (distinct colours): " + stats);
        assertTrue(nonWhite > pixels / 100, "screenshot is not blank (over 1% non-white): " + stats);
        // each plot draws a 1.5 px line and a 3 px legend swatch per run, three plots
        assertTrue(blue > 300 && red > 300, "both runs' plot lines are drawn: " + stats);
    }

    private static boolean near(final int rgb, final int target)
    {
        return Math.abs(((rgb >> 16) & 0xff) - ((target >> 16) & 0xff)) <= 24
            && Math.abs(((rgb >> 8) & 0xff) - ((target >> 8) & 0xff)) <= 24
            && Math.abs((rgb & 0xff) - (target & 0xff)) <= 24;
    }
}
