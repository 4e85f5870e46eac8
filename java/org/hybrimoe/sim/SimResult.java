package org.hybrimoe.sim;

/**
 * What one simulated run yields (per bundle, cache ratio, phase, input length).
 *
 * @param ms TTFT of a prompt (prefill, mean over prompts) or time per decode token
 * @param hitRate fraction of activated (layer, expert) computations whose expert was on the GPU or
 *     on its way there when the layer was planned
 * @param bytesMoved host-to-device bytes per prompt (prefill) or per token (decode)
 * @param prefetchUsed prefetched experts used before eviction (whole run)
 * @param prefetchWasted prefetched experts evicted or dropped unused (whole run)
 * @param gpuBusyMs GPU busy time per prompt or token (non-MoE work included)
 * @param cpuBusyMs CPU busy time per prompt or token
 * @param linkBusyMs PCIe busy time per prompt or token
 * @param accuracy measured look-ahead accuracy per distance 1..D (empty without prefetch)
 */
public record SimResult(String bundle, double cacheRatio, String phase, int inputLength, double ms, double hitRate,
    double bytesMoved, long prefetchUsed, long prefetchWasted, double gpuBusyMs, double cpuBusyMs, double linkBusyMs,
    double[] accuracy) {}
