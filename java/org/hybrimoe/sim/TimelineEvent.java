package org.hybrimoe.sim;

/** One block of a Gantt timeline: a lane (GPU, CPU, PCIe), a time span in ms, and a label. */
public record TimelineEvent(String lane, double startMs, double endMs, String label, boolean prefetch) {}
