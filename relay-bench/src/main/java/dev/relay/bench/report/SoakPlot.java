package dev.relay.bench.report;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Plots a soak CSV (as written by {@code ops/soak}) as one self-contained SVG: no scripts, fonts, styles or images
 * from elsewhere. The first column is the x axis (seconds); every further column gets its own panel with its own y
 * axis from 0 to a rounded maximum, laid out two panels per row. An empty cell is a missing sample (e.g.
 * {@code heap_after_gc_mib}, measured once a minute): the line joins the samples that are present and each one gets a
 * dot. Each panel's title shows the column name and its first, last and largest value.
 *
 * <pre>
 * java -cp relay-bench/target/relay-bench.jar dev.relay.bench.report.SoakPlot soak.csv soak.svg [--title TEXT]
 * </pre>
 */
public final class SoakPlot
{
    private static final int PANEL_W = 520;
    private static final int PANEL_H = 220;
    private static final int COLS = 2;
    private static final int LEFT = 64;
    private static final int RIGHT = 16;
    private static final int TOP = 30;
    private static final int BOTTOM = 36;
    private static final int HEADER = 40;
    private static final String[] COLOURS = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
        "#e377c2", "#17becf"};

    private SoakPlot()
    {
    }

    /** A parsed CSV: column names and, per column, one value per row ({@code NaN} where the cell is empty). */
    record Table(List<String> names, List<double[]> columns)
    {
        int rows()
        {
            return columns.isEmpty() ? 0 : columns.get(0).length;
        }
    }

    static Table read(final List<String> lines)
    {
        if (lines.isEmpty())
        {
            throw new IllegalArgumentException("empty CSV");
        }
        final List<String> names = List.of(lines.get(0).trim().split(",", -1));
        final List<String[]> rows = new ArrayList<>();
        for (final String line : lines.subList(1, lines.size()))
        {
            if (!line.isBlank())
            {
                rows.add(line.trim().split(",", -1));
            }
        }
        final List<double[]> columns = new ArrayList<>();
        for (int c = 0; c < names.size(); c++)
        {
            final double[] values = new double[rows.size()];
            for (int r = 0; r < rows.size(); r++)
            {
                final String[] row = rows.get(r);
                final String cell = c < row.length ? row[c].trim() : "";
                values[r] = cell.isEmpty() ? Double.NaN : Double.parseDouble(cell);
            }
            columns.add(values);
        }
        return new Table(names, columns);
    }

    /** The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k that is at least {@code v} (1 for {@code v <= 0}). */
    static double niceCeil(final double v)
    {
        if (!(v > 0))
        {
            return 1;
        }
        final double p = Math.pow(10, Math.floor(Math.log10(v)));
        for (final double m : new double[] {1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10})
        {
            if (m * p >= v * (1 - 1e-12))
            {
                return m * p;
            }
        }
        return 10 * p;
    }

    static String fmt(final double v)
    {
        if (Double.isNaN(v))
        {
            return "-";
        }
        if (v == Math.rint(v) && Math.abs(v) < 1e15)
        {
            return String.format(Locale.ROOT, "%d", (long)v);
        }
        return String.format(Locale.ROOT, Math.abs(v) >= 100 ? "%.0f" : "%.1f", v);
    }

    private static String esc(final String s)
    {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }

    static String svg(final Table t, final String title)
    {
        final int panels = Math.max(0, t.names().size() - 1);
        final int rowsOfPanels = (panels + COLS - 1) / COLS;
        final int width = COLS * PANEL_W;
        final int height = HEADER + Math.max(1, rowsOfPanels) * PANEL_H;
        final double[] x = t.columns().isEmpty() ? new double[0] : t.columns().get(0);
        double xMax = 0;
        for (final double v : x)
        {
            if (!Double.isNaN(v))
            {
                xMax = Math.max(xMax, v);
            }
        }
        xMax = niceCeil(xMax / 1.01); // the last row comes a moment after a round time: let it stick out by <1%
        final StringBuilder sb = new StringBuilder(64 * 1024);
        sb.append(String.format(Locale.ROOT,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                + "font-family=\"sans-serif\" font-size=\"11\">%n", width, height, width, height));
        sb.append(String.format(Locale.ROOT, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>%n", width, height));
        sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">%s</text>%n",
            LEFT, esc(title)));
        for (int p = 0; p < panels; p++)
        {
            final int ox = (p % COLS) * PANEL_W;
            final int oy = HEADER + (p / COLS) * PANEL_H;
            panel(sb, ox, oy, t.names().get(p + 1), x, xMax, t.columns().get(p + 1), COLOURS[p % COLOURS.length]);
        }
        sb.append("</svg>\n");
        return sb.toString();
    }

    private static void panel(final StringBuilder sb, final int ox, final int oy, final String name, final double[] x,
        final double xMax, final double[] y, final String colour)
    {
        final int pw = PANEL_W - LEFT - RIGHT;
        final int ph = PANEL_H - TOP - BOTTOM;
        final int px = ox + LEFT;
        final int py = oy + TOP;
        double first = Double.NaN;
        double last = Double.NaN;
        double max = Double.NaN;
        int present = 0;
        for (final double v : y)
        {
            if (!Double.isNaN(v))
            {
                first = Double.isNaN(first) ? v : first;
                last = v;
                max = Double.isNaN(max) ? v : Math.max(max, v);
                present++;
            }
        }
        final double yMax = niceCeil(Double.isNaN(max) ? 0 : max);
        sb.append(String.format(Locale.ROOT, "<g><text x=\"%d\" y=\"%d\" font-size=\"12\" font-weight=\"bold\">%s"
            + "<tspan font-weight=\"normal\" fill=\"#555555\">  start %s  end %s  max %s</tspan></text>%n",
            px, oy + 20, esc(name), fmt(first), fmt(last), fmt(max)));
        sb.append(String.format(Locale.ROOT,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999999\"/>%n", px, py, pw, ph));
        for (int i = 0; i <= 4; i++)
        {
            final double gy = py + ph - ph * i / 4.0;
            final double gx = px + pw * i / 4.0;
            sb.append(String.format(Locale.ROOT,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                    + "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n",
                px, gy, px + pw, gy, px - 4, gy + 4, fmt(yMax * i / 4)));
            sb.append(String.format(Locale.ROOT,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e5e5e5\"/>"
                    + "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>%n",
                gx, py, gx, py + ph, gx, py + ph + 14, fmt(xMax * i / 4)));
        }
        sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#555555\">time (s)"
            + "</text>%n", px + pw / 2, py + ph + 28));
        final StringBuilder points = new StringBuilder();
        final StringBuilder dots = new StringBuilder();
        for (int i = 0; i < y.length && i < x.length; i++)
        {
            if (Double.isNaN(y[i]) || Double.isNaN(x[i]))
            {
                continue;
            }
            final double sx = px + pw * x[i] / xMax;
            final double sy = py + ph - ph * y[i] / yMax;
            points.append(String.format(Locale.ROOT, "%.1f,%.1f ", sx, sy));
            if (present < y.length)
            {
                dots.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>",
                    sx, sy, colour));
            }
        }
        if (points.length() > 0)
        {
            sb.append(String.format(Locale.ROOT,
                "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"%s\"/>%n", colour,
                points.toString().trim()));
        }
        if (dots.length() > 0)
        {
            sb.append(dots).append('\n');
        }
        sb.append("</g>\n");
    }

    public static void main(final String[] args) throws IOException
    {
        String title = null;
        final List<String> files = new ArrayList<>();
        for (int i = 0; i < args.length; i++)
        {
            if ("--title".equals(args[i]) && i + 1 < args.length)
            {
                title = args[++i];
            }
            else
            {
                files.add(args[i]);
            }
        }
        if (files.size() != 2)
        {
            System.err.println("usage: SoakPlot SOAK.csv OUT.svg [--title TEXT]");
            System.exit(2);
        }
        final Path csv = Path.of(files.get(0));
        final Table t = read(Files.readAllLines(csv, StandardCharsets.UTF_8));
        final String svg = svg(t, title != null ? title : "soak: " + csv.getFileName());
        Files.writeString(Path.of(files.get(1)), svg, StandardCharsets.UTF_8);
    }
}
