package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.Locale;
import java.util.SplittableRandom;
import org.hybrimoe.device.DenseDevice;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.WeightType;
import org.hybrimoe.ops.KvCache;

/**
 * One decoder layer's attention sublayer of a real model's shape (random bf16 weights) timed for
 * one decode token at a given context, on the CPU path (projections, RoPE, attention over a host
 * KV cache) and whole on a dense device (its cache in device memory), in the same run. What
 * bench-dense reports as the attention's device-over-CPU ratio.
 */
public final class AttentionBench {
  /** The timed steps, milliseconds per token for one layer on each side. */
  public record Result(String form, int context, double[] cpuMs, double[] deviceMs) {}

  private AttentionBench() {}

  /** The sublayer of shape deepseek-v2-lite (MLA), mixtral-8x7b or qwen2-57b-a14b (GQA). */
  static Attention of(String shape, SplittableRandom r) {
    return switch (shape) {
      case "deepseek-v2-lite" -> new MlaAttention(bf16(r, 16 * 192, 2048, false), null, null, null,
          bf16(r, 576, 2048, false), AttentionSelfCheck.floats(r, 512, 0.5, 1.5), bf16(r, 16 * 256, 512, false),
          bf16(r, 2048, 16 * 128, false), 16, 128, 64, 128, 512, Act.ropeInvFreq(10000, 64), 1f, (float) (1 / Math.sqrt(192)));
      case "mixtral-8x7b" -> gqa(r, 4096, 32, 8, false);
      case "qwen2-57b-a14b" -> gqa(r, 3584, 28, 4, true);
      default -> throw new IllegalArgumentException("no attention shape '" + shape + "'");
    };
  }

  private static GqaAttention gqa(SplittableRandom r, int d, int heads, int kv, boolean bias) {
    return new GqaAttention(bf16(r, heads * 128, d, bias), bf16(r, kv * 128, d, bias), bf16(r, kv * 128, d, bias),
        bf16(r, d, heads * 128, false), heads, kv, 128, GqaAttention.QkNorm.NONE, null, null, 1e-6f,
        new Rope(Act.ropeInvFreq(10000, 128), 1f), 0, 0);
  }

  private static Linear bf16(SplittableRandom r, int out, int in, boolean bias) {
    return AttentionSelfCheck.linear(r, WeightType.BF16, out, in, bias);
  }

  /**
   * Fills both caches with {@code context} positions (in chunks of 128 tokens), then times {@code
   * reps} single-token steps on each side, alternating so that both see the same machine.
   */
  public static Result run(String shape, int context, int reps, Engine engine, DenseDevice device) {
    if (context < 1 || reps < 1) {
      throw new IllegalArgumentException("need a context >= 1 and reps >= 1, got " + context + ", " + reps);
    }
    SplittableRandom r = new SplittableRandom(17);
    Attention a = of(shape.toLowerCase(Locale.ROOT), r);
    DenseOffload on = DenseOffload.over(device, 0); // not closed: the device is the caller's
    on.place(a.linears());
    DenseDevice.Attention da = a.placeOn(on);
    if (da == null) {
      throw new IllegalStateException("the device could not take the " + shape + " attention sublayer");
    }
    int maxSeq = context + reps + 2;
    int d = da.width();
    try (KvCache cpu = KvCache.create(1, maxSeq, a.cacheHeads(), a.cacheKeyDim(), a.cacheValueDim(), KvCache.Dtype.BF16,
            a.cacheValueSharesKey());
        DenseDevice.Kv kv = device.kvCreate(da, 1, maxSeq, KvCache.Dtype.BF16)) {
      Scratch scratch = new Scratch();
      int chunk = 128;
      FloatBuffer x = AttentionSelfCheck.floats(r, (long) chunk * d, -1, 1);
      FloatBuffer y = DenseOps.floats((long) chunk * d);
      IntBuffer pos = DenseOps.ints(chunk);
      int at = 0;
      while (at < context) {
        int n = Math.min(chunk, context - at);
        positions(pos, at, n);
        a.forward(new ForwardContext(engine, cpu, null, pos, scratch, null), 0, x, n, y);
        device.attend(da, kv, 0, x, n, pos, y);
        at += n;
      }
      double[] cpuMs = new double[reps];
      double[] devMs = new double[reps];
      for (int i = 0; i < reps + 1; i++) {
        positions(pos, at + i, 1);
        long t0 = System.nanoTime();
        a.forward(new ForwardContext(engine, cpu, null, pos, scratch, null), 0, x, 1, y);
        long t1 = System.nanoTime();
        device.attend(da, kv, 0, x, 1, pos, y);
        long t2 = System.nanoTime();
        if (i > 0) { // the first step warms both up
          cpuMs[i - 1] = (t1 - t0) / 1e6;
          devMs[i - 1] = (t2 - t1) / 1e6;
        }
      }
      return new Result(a instanceof MlaAttention ? "MLA" : "GQA", context, cpuMs, devMs);
    }
  }

  private static void positions(IntBuffer pos, int first, int n) {
    for (int t = 0; t < n; t++) {
      pos.put(t, first + t);
    }
  }
}
