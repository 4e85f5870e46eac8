package org.hybrimoe.hybrid;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.hybrimoe.policy.sched.LayerPlan;
import org.hybrimoe.sim.GanttSvg;
import org.hybrimoe.sim.TimelineEvent;

/**
 * What one MoE layer really did, next to what its plan predicted: per plan expert the measured
 * start and end, per plan transfer the measured start and end (a prefetch's arrive later, when it
 * has finished: NaN until then), all in ms on the engine's clock ({@link HybridEngine#clockMs}).
 *
 * <p>GPU expert times: where the device times each expert (the emulated device) they are its own;
 * where it times one launch over a wave of experts (CUDA), the wave's measured span is shared out
 * in proportion to the plan's predicted durations ({@link #perExpertGpuTimes} says which).
 */
public final class LayerTimeline {
  private final LayerPlan plan;
  private final double begin;
  private final double end;
  private final double[] start;
  private final double[] stop;
  private final double[] xferStart;
  private final double[] xferEnd;
  private final int waves;
  private final boolean perExpertGpuTimes;

  LayerTimeline(LayerPlan plan, double begin, double end, double[] start, double[] stop, double[] xferStart,
      double[] xferEnd, int waves, boolean perExpertGpuTimes) {
    this.plan = plan;
    this.begin = begin;
    this.end = end;
    this.start = start;
    this.stop = stop;
    this.xferStart = xferStart;
    this.xferEnd = xferEnd;
    this.waves = waves;
    this.perExpertGpuTimes = perExpertGpuTimes;
  }

  /** The plan that ran (predicted times are in it, from the MoE block's start). */
  public LayerPlan plan() {
    return plan;
  }

  /** Measured duration of the layer's MoE block: from the call until its output was complete. */
  public double measuredMs() {
    return end - begin;
  }

  /** The plan's predicted makespan. */
  public double predictedMs() {
    return plan.makespan();
  }

  public double begin() {
    return begin;
  }

  public double end() {
    return end;
  }

  public double expertStart(int i) {
    return start[i];
  }

  public double expertEnd(int i) {
    return stop[i];
  }

  public double transferStart(int j) {
    return xferStart[j];
  }

  public double transferEnd(int j) {
    return xferEnd[j];
  }

  /** Device waves the layer needed (more than one when staging slots were reused). */
  public int waves() {
    return waves;
  }

  public boolean perExpertGpuTimes() {
    return perExpertGpuTimes;
  }

  /** A finished prefetch's measured times (they arrive after the layer). */
  void completeTransfer(int j, double s, double e) {
    xferStart[j] = s;
    xferEnd[j] = e;
  }

  /** Busy ms of a device (LayerPlan.CPU or GPU) as measured. */
  public double measuredBusy(int device) {
    double b = 0;
    for (int i = 0; i < plan.size(); i++) {
      if (plan.device(i) == device && !Double.isNaN(start[i])) {
        b += stop[i] - start[i];
      }
    }
    return b;
  }

  /** The measured events, in ms from {@code zero} on the engine's clock (lanes GPU, CPU, PCIe). */
  public List<TimelineEvent> measuredEvents(double zero) {
    List<TimelineEvent> out = new ArrayList<>();
    int l = plan.layer();
    for (int i = 0; i < plan.size(); i++) {
      if (Double.isNaN(start[i])) {
        continue;
      }
      out.add(new TimelineEvent(lane(plan.device(i)), start[i] - zero, stop[i] - zero, label(l, i), false));
    }
    for (int j = 0; j < plan.transfers(); j++) {
      if (Double.isNaN(xferStart[j])) {
        continue;
      }
      out.add(new TimelineEvent("PCIe", xferStart[j] - zero, xferEnd[j] - zero, transferLabel(j),
          plan.transferKind(j) == LayerPlan.PREFETCH));
    }
    return out;
  }

  /** An SVG Gantt chart: what was measured (from the layer's start) above what the plan predicted. */
  public String toSvg(String title) {
    return GanttSvg.measuredVsPredicted(title, measuredEvents(begin()), predictedEvents(0));
  }

  /** The plan's predicted events, placed at {@code offset} ms (the layer's measured start from zero). */
  public List<TimelineEvent> predictedEvents(double offset) {
    List<TimelineEvent> out = new ArrayList<>();
    int l = plan.layer();
    for (int i = 0; i < plan.size(); i++) {
      out.add(new TimelineEvent(lane(plan.device(i)), offset + plan.start(i), offset + plan.end(i), label(l, i), false));
    }
    for (int j = 0; j < plan.transfers(); j++) {
      out.add(new TimelineEvent("PCIe", offset + plan.transferStart(j), offset + plan.transferEnd(j), transferLabel(j),
          plan.transferKind(j) == LayerPlan.PREFETCH));
    }
    return out;
  }

  private static String lane(int device) {
    return device == LayerPlan.GPU ? "GPU" : "CPU";
  }

  private String label(int l, int i) {
    int id = plan.expert(i);
    return id >= 0 ? "L" + l + " e" + id + (plan.load(i) > 1 ? " x" + plan.load(i) : "") : "L" + l + " shared" + (-1 - id);
  }

  private String transferLabel(int j) {
    String kind = plan.transferKind(j) == LayerPlan.PREFETCH
        ? (plan.transferLayer(j) == plan.layer() ? "fill " : "pf ") : "";
    return kind + "L" + plan.transferLayer(j) + " e" + plan.transferExpert(j);
  }

  @Override
  public String toString() {
    return String.format("LayerTimeline[layer %d: measured %.3f ms, predicted %.3f ms, %d waves, transfers %s]",
        plan.layer(), measuredMs(), predictedMs(), waves, Arrays.toString(xferEnd));
  }
}
