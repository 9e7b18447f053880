package dev.relay.bench.report;

import java.util.List;
import java.util.Locale;

import dev.relay.bench.report.ReportWriter.Run;

import static dev.relay.bench.report.ReportWriter.esc;

/**
 * The latency plots of the {@link ReportWriter}'s HTML report: one SVG per distribution ({@code accept},
 * {@code txn}, {@code e2e}), a line per run, latency in ms over the percentile on HdrHistogram's log scale (90%,
 * 99%, 99.9%... evenly spaced), with a legend. No plotting library: the report stays one self-contained file.
 * <p>
 * Stateless; any thread; allocates the text it returns.
 */
final class LatencyPlot
{
    private static final String[] COLORS = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

    private LatencyPlot()
    {
    }

    /** x = log10(1/(1-percentile)), capped at 6 nines; y linear in ms from 0. */
    static String svg(final String title, final String key, final List<Run> runs)
    {
        final int w = 640;
        final int h = 360;
        final int left = 60;
        final int right = 130;
        final int top = 30;
        final int bottom = 45;
        double maxX = 3;
        double maxY = 0;
        for (final Run r : runs)
        {
            for (final double[] p : r.curves().getOrDefault(key, List.of()))
            {
                maxX = Math.max(maxX, x(p[0]));
                maxY = Math.max(maxY, p[1]);
            }
        }
        maxX = Math.min(6, Math.ceil(maxX));
        maxY = niceCeiling(maxY);
        final double sx = (w - left - right) / maxX;
        final double sy = (h - top - bottom) / maxY;
        final StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            + "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">%n", w, h, w, h));
        sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"18\" font-size=\"13\" font-weight=\"bold\">%s</text>%n",
            left, esc(title)));
        final String[] labels = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"};
        for (int i = 0; i <= (int)maxX; i++)
        {
            final double gx = left + i * sx;
            sb.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                + "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", gx, top, gx, h - bottom, gx,
                h - bottom + 14, labels[i]));
        }
        for (int i = 0; i <= 5; i++)
        {
            final double v = maxY * i / 5;
            final double gy = h - bottom - v * sy;
            sb.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                + "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n", left, gy, w - right, gy, left - 5,
                gy + 4, trim(v)));
        }
        sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile</text>"
            + "<text x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\" text-anchor=\"middle\">latency (ms)</text>%n",
            left + (w - left - right) / 2, h - 8, top + (h - top - bottom) / 2, top + (h - top - bottom) / 2));
        int color = 0;
        for (final Run r : runs)
        {
            final List<double[]> points = r.curves().get(key);
            if (points == null || points.isEmpty())
            {
                continue;
            }
            final String c = COLORS[color % COLORS.length];
            final StringBuilder path = new StringBuilder();
            for (final double[] p : points)
            {
                path.append(path.length() == 0 ? "M" : "L").append(String.format(Locale.ROOT, "%.1f,%.1f",
                    left + Math.min(x(p[0]), maxX) * sx, h - bottom - p[1] * sy));
            }
            sb.append("<path fill=\"none\" stroke-width=\"1.5\" stroke=\"").append(c).append("\" d=\"")
                .append(path).append("\"/>\n");
            sb.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                + "stroke-width=\"3\"/><text x=\"%d\" y=\"%d\">%s</text>%n", w - right + 10, top + 10 + 16 * color,
                w - right + 28, top + 10 + 16 * color, c, w - right + 33, top + 14 + 16 * color, esc(r.name())));
            color++;
        }
        return sb.append("</svg>\n").toString();
    }

    private static double x(final double percentile)
    {
        return -Math.log10(Math.max(1 - percentile, 1e-6));
    }

    private static double niceCeiling(final double v)
    {
        if (v <= 0)
        {
            return 1;
        }
        final double magnitude = Math.pow(10, Math.floor(Math.log10(v)));
        for (final double step : new double[] {1, 2, 2.5, 5, 10})
        {
            if (step * magnitude >= v)
            {
                return step * magnitude;
            }
        }
        return 10 * magnitude;
    }

    private static String trim(final double v)
    {
        return v == Math.rint(v) ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.3g", v);
    }

}
