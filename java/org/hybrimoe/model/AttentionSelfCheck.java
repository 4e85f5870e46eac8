package org.hybrimoe.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.SplittableRandom;
import org.hybrimoe.device.DenseDevice;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.WeightType;
import org.hybrimoe.ops.KvCache;
import org.hybrimoe.weights.SafetensorsWriter;

/**
 * The small random sublayers {@link DenseOffload} runs on a dense device and on the CPU before it
 * trusts the device with a model (awkward sizes, every weight dtype, each option of the two
 * attention forms), and the comparison itself.
 */
final class AttentionSelfCheck {
  private AttentionSelfCheck() {}

  /** A random [out, in] weight of type t, values in +-0.3. */
  static ByteBuffer weight(SplittableRandom r, WeightType t, int out, int in) {
    ByteBuffer w = ByteBuffer.allocateDirect(out * in * t.bytes()).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < out * in; i++) {
      float v = (float) r.nextDouble(-0.3, 0.3);
      switch (t) {
        case F32 -> w.putFloat(4 * i, v);
        case BF16 -> w.putShort(2 * i, SafetensorsWriter.toBf16(v));
        case F16 -> w.putShort(2 * i, SafetensorsWriter.toF16(v));
      }
    }
    return w;
  }

  /** n floats uniform in [lo, hi). */
  static FloatBuffer floats(SplittableRandom r, long n, double lo, double hi) {
    FloatBuffer b = DenseOps.floats(n);
    for (int i = 0; i < n; i++) {
      b.put(i, (float) r.nextDouble(lo, hi));
    }
    return b;
  }

  /** max |got - want| / (1 + |want|) over count floats; infinite where a NaN appears. */
  static double relativeError(FloatBuffer got, FloatBuffer want, int count) {
    double err = 0;
    for (int i = 0; i < count; i++) {
      double e = Math.abs(got.get(i) - want.get(i)) / (1 + Math.abs(want.get(i)));
      err = Double.isNaN(e) ? Double.POSITIVE_INFINITY : Math.max(err, e);
    }
    return err;
  }

  /** A random [out, in] linear of type t, with a random bias when asked. */
  static Linear linear(SplittableRandom r, WeightType t, int out, int in, boolean bias) {
    return new Linear(weight(r, t, out, in), t, out, in, bias ? floats(r, out, -0.5, 0.5) : null);
  }

  /** GQA of 4 query heads over 2 KV heads of 8 on width 40, biased bf16/f16 projections. */
  static GqaAttention gqa(SplittableRandom r, GqaAttention.QkNorm norm, float clip, int window) {
    int d = 40;
    int heads = 4;
    int kv = 2;
    int hd = 8;
    FloatBuffer qn = switch (norm) {
      case NONE -> null;
      case PER_HEAD -> floats(r, hd, 0.5, 1.5);
      case FULL -> floats(r, heads * hd, 0.5, 1.5);
    };
    FloatBuffer kn = switch (norm) {
      case NONE -> null;
      case PER_HEAD -> floats(r, hd, 0.5, 1.5);
      case FULL -> floats(r, kv * hd, 0.5, 1.5);
    };
    return new GqaAttention(linear(r, WeightType.BF16, heads * hd, d, true), linear(r, WeightType.F16, kv * hd, d, true),
        linear(r, WeightType.F32, kv * hd, d, true), linear(r, WeightType.BF16, d, heads * hd, false), heads, kv, hd,
        norm, qn, kn, 1e-5f, new Rope(Act.ropeInvFreq(10000, hd), 1.1f), clip, window);
  }

  /** MLA of 3 heads (nope 8, rope 4, value 6, latent rank 12) on width 40, q-lora of rank 10 or not. */
  static MlaAttention mla(SplittableRandom r, boolean qLora) {
    int d = 40;
    int heads = 3;
    int nope = 8;
    int rope = 4;
    int vd = 6;
    int rank = 12;
    int qRank = 10;
    int qk = heads * (nope + rope);
    Linear qProj = qLora ? null : linear(r, WeightType.BF16, qk, d, false);
    Linear qA = qLora ? linear(r, WeightType.F16, qRank, d, false) : null;
    FloatBuffer qANorm = qLora ? floats(r, qRank, 0.5, 1.5) : null;
    Linear qB = qLora ? linear(r, WeightType.BF16, qk, qRank, false) : null;
    return new MlaAttention(qProj, qA, qANorm, qB, linear(r, WeightType.BF16, rank + rope, d, false),
        floats(r, rank, 0.5, 1.5), linear(r, qLora ? WeightType.F32 : WeightType.BF16, heads * (nope + vd), rank, false),
        linear(r, WeightType.BF16, d, heads * vd, false), heads, nope, rope, vd, rank, Act.ropeInvFreq(10000, rope), 1.05f, 0.3f);
  }

  /**
   * The largest relative difference between {@code a} on the CPU path and its device copy {@code
   * da} over a 5-token prompt and two decode steps (each with a cache of its own).
   */
  static double compare(Attention a, DenseDevice.Attention da, DenseDevice d, Engine engine, SplittableRandom r) {
    if (da == null) {
      throw new IllegalStateException("the " + d.kind() + " dense device refused a self-check's "
          + a.getClass().getSimpleName() + " (a few KB)");
    }
    int maxSeq = 8;
    int width = da.width();
    double err = 0;
    try (KvCache cpu = KvCache.create(1, maxSeq, a.cacheHeads(), a.cacheKeyDim(), a.cacheValueDim(), KvCache.Dtype.F32,
            a.cacheValueSharesKey());
        DenseDevice.Kv kv = d.kvCreate(da, 1, maxSeq, KvCache.Dtype.F32)) {
      Scratch scratch = new Scratch();
      int at = 0;
      for (int n : new int[] {5, 1, 1}) {
        FloatBuffer x = floats(r, (long) n * width, -1, 1);
        IntBuffer pos = DenseOps.ints(n);
        for (int t = 0; t < n; t++) {
          pos.put(t, at + t);
        }
        FloatBuffer want = DenseOps.floats((long) n * width);
        a.forward(new ForwardContext(engine, cpu, null, pos, scratch, null), 0, x, n, want);
        FloatBuffer got = DenseOps.floats((long) n * width);
        d.attend(da, kv, 0, x, n, pos, got);
        err = Math.max(err, relativeError(got, want, n * width));
        at += n;
      }
    }
    return err;
  }
}
