package dev.relay.bench.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import javax.xml.parsers.DocumentBuilderFactory;

import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;

/** SoakPlot: CSV with empty cells, axis rounding, and an SVG that parses and refers to nothing outside itself. */
class SoakPlotTest
{
    private static final List<String> CSV = List.of(
        "time_s,rss_mib,heap_used_mib,heap_after_gc_mib,fds,threads,queue,delivered",
        "0,107.4,8.2,14.1,23,31,0,0",
        "10,213.5,69.7,,67,32,0,9806",
        "20,244.2,12.4,,67,32,3,19854",
        "60.3,246.9,75.6,9.0,47,31,0,60000");

    @Test
    void readsEmptyCellsAsMissing()
    {
        final SoakPlot.Table t = SoakPlot.read(CSV);
        assertEquals(8, t.names().size());
        assertEquals(4, t.rows());
        assertTrue(Double.isNaN(t.columns().get(3)[1]));
        assertEquals(9.0, t.columns().get(3)[3]);
        assertEquals(60.3, t.columns().get(0)[3]);
    }

    @Test
    void roundsAxesUp()
    {
        assertEquals(1, SoakPlot.niceCeil(0));
        assertEquals(250, SoakPlot.niceCeil(246.9));
        assertEquals(600, SoakPlot.niceCeil(600.3 / 1.01));
        assertEquals(300, SoakPlot.niceCeil(256.6));
        assertEquals(100, SoakPlot.niceCeil(100));
        assertEquals(60_000, SoakPlot.niceCeil(60_000));
        assertEquals(80_000, SoakPlot.niceCeil(60_001));
        assertEquals(0.4, SoakPlot.niceCeil(0.35), 1e-12);
    }

    @Test
    void writesWellFormedSelfContainedSvg() throws Exception
    {
        final String svg = SoakPlot.svg(SoakPlot.read(CSV), "soak <test> & more");
        final Document doc = DocumentBuilderFactory.newInstance()
            .newDocumentBuilder().parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
        assertEquals("svg", doc.getDocumentElement().getTagName());
        assertEquals(7, doc.getElementsByTagName("polyline").getLength());
        assertEquals(2, doc.getElementsByTagName("circle").getLength()); // only the sparse column gets dots
        assertFalse(svg.contains("href"));
        assertFalse(svg.contains("url("));
        assertFalse(svg.contains("<script"));
        assertTrue(svg.contains("start 107  end 247  max 247"));
    }
}
