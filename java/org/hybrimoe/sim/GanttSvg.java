package org.hybrimoe.sim;

import java.util.List;
import java.util.Locale;

/**
 * Draws a simulated timeline as an SVG Gantt chart: one lane each for the GPU, the CPU and the PCIe
 * link, one labelled block per expert computation or transfer (prefetches and cache fills hatched
 * in a lighter colour), so that a reader sees at a glance where each device idles, as in the
 * paper's figures explaining the method. Idle time is the white between blocks.
 */
public final class GanttSvg {
  private static final String[] LANES = {"GPU", "CPU", "PCIe"};
  /** Lanes of a measured timeline drawn above the predicted one ({@link #measuredVsPredicted}). */
  public static final String[] PAIRED_LANES = {
    "GPU measured", "GPU predicted", "CPU measured", "CPU predicted", "PCIe measured", "PCIe predicted"
  };
  private static final int LANE_H = 46;
  private static final int WIDTH = 1400;

  private GanttSvg() {}

  /** The SVG document for the events (lanes GPU, CPU, PCIe), titled. */
  public static String render(String title, List<TimelineEvent> events) {
    return render(title, events, LANES);
  }

  /**
   * Measured and predicted timelines of the same work on one time axis, each lane of the measured
   * one above its prediction: lanes are renamed "GPU measured", "GPU predicted", ...
   */
  public static String measuredVsPredicted(String title, List<TimelineEvent> measured, List<TimelineEvent> predicted) {
    List<TimelineEvent> all = new java.util.ArrayList<>();
    for (TimelineEvent e : measured) {
      all.add(new TimelineEvent(e.lane() + " measured", e.startMs(), e.endMs(), e.label(), e.prefetch()));
    }
    for (TimelineEvent e : predicted) {
      all.add(new TimelineEvent(e.lane() + " predicted", e.startMs(), e.endMs(), e.label(), e.prefetch()));
    }
    return render(title, all, PAIRED_LANES);
  }

  /** The SVG document for the events on the given lanes, titled. */
  public static String render(String title, List<TimelineEvent> events, String[] lanes) {
    int longest = 0;
    for (String l : lanes) {
      longest = Math.max(longest, l.length());
    }
    int left = Math.max(60, 12 + 7 * longest);
    double end = 0;
    for (TimelineEvent e : events) {
      end = Math.max(end, e.endMs());
    }
    end = Math.max(end, 1e-6);
    double scale = (WIDTH - left - 20) / end;
    int height = 60 + lanes.length * (LANE_H + 10) + 40;
    StringBuilder sb = new StringBuilder();
    sb.append(String.format(Locale.ROOT,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"10\">%n",
        WIDTH, height));
    sb.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"20\" font-size=\"14\">%s</text>%n", left, escape(title)));
    for (int li = 0; li < lanes.length; li++) {
      int y = 40 + li * (LANE_H + 10);
      sb.append(String.format(Locale.ROOT,
          "<text x=\"8\" y=\"%d\" font-size=\"12\">%s</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#f4f4f4\" stroke=\"#ccc\"/>%n",
          y + LANE_H / 2 + 4, lanes[li], left, y, WIDTH - left - 20, LANE_H));
      double busy = 0;
      for (TimelineEvent e : events) {
        if (!e.lane().equals(lanes[li])) {
          continue;
        }
        busy += e.endMs() - e.startMs();
        double x = left + e.startMs() * scale;
        double w = Math.max(1, (e.endMs() - e.startMs()) * scale);
        String fill = color(e);
        sb.append(String.format(Locale.ROOT,
            "<g><title>%s: %.3f-%.3f ms</title><rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\" stroke=\"#333\" stroke-width=\"0.5\"/>",
            escape(e.label()), e.startMs(), e.endMs(), x, y + 2, w, LANE_H - 4, fill));
        if (w > 6.5 * Math.min(e.label().length(), 12)) {
          sb.append(String.format(Locale.ROOT, "<text x=\"%.2f\" y=\"%d\">%s</text>", x + 2, y + LANE_H / 2 + 4,
              escape(e.label())));
        } else if (w > 14) {
          sb.append(String.format(Locale.ROOT, "<text x=\"%.2f\" y=\"%d\" font-size=\"8\" transform=\"rotate(-90 %.2f %d)\">%s</text>",
              x + w / 2 + 3, y + LANE_H - 4, x + w / 2 + 3, y + LANE_H - 4, escape(shortLabel(e.label()))));
        }
        sb.append("</g>\n");
      }
      sb.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" fill=\"#555\">busy %.2f of %.2f ms (%.0f%% idle)</text>%n",
          left + 4, y + LANE_H + 9, busy, end, 100 * (1 - busy / end)));
    }
    int ay = 40 + lanes.length * (LANE_H + 10) + 14;
    for (int i = 0; i <= 10; i++) {
      double t = end * i / 10;
      double x = left + t * scale;
      sb.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"36\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
          + "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.2f ms</text>%n", x, x, ay - 10, x, ay, t));
    }
    sb.append(String.format(Locale.ROOT,
        "<text x=\"%d\" y=\"%d\" fill=\"#555\">blue: routed expert, green: shared expert, grey: attention and router, orange: demand transfer, yellow: prefetch or cache fill</text>%n",
        left, ay + 18));
    sb.append("</svg>\n");
    return sb.toString();
  }

  private static String color(TimelineEvent e) {
    if (e.lane().startsWith("PCIe")) {
      return e.prefetch() ? "#f6d55c" : "#ed8c3b";
    }
    if (e.label().contains("attn")) {
      return "#bbbbbb";
    }
    if (e.label().contains("shared")) {
      return "#6cc08b";
    }
    return e.lane().startsWith("GPU") ? "#5b8def" : "#8fb3f5";
  }

  private static String shortLabel(String s) {
    int sp = s.lastIndexOf(' ');
    return sp >= 0 && s.startsWith("L") ? s.substring(s.indexOf(' ') + 1) : s;
  }

  private static String escape(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }
}
