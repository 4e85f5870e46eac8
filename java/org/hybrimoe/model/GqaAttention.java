package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.util.List;
import org.hybrimoe.device.DenseDevice;
import org.hybrimoe.ops.DenseOps.RopeStyle;
import org.hybrimoe.ops.DenseOps;

/**
 * Grouped-query attention (Mixtral, Qwen2/3-MoE, OLMoE): q [n, H, hd], k and v [n, KV, hd] from
 * linears (optional biases), optional q/k RMSNorm (per head as Qwen3, or over the whole
 * projection as OLMoE), optional clamping of q, k and v to +-clip_qkv after the norms (OLMoE),
 * rotate_half RoPE with the config's {@link Rope} scaling, softmax(q.k / sqrt(hd)) over the
 * cache (or its last {@code window} positions: sliding-window attention), o_proj.
 */
public final class GqaAttention implements Attention {
  /** Where q/k normalisation applies. */
  public enum QkNorm {
    NONE,
    PER_HEAD,
    FULL
  }

  private final Linear q;
  private final Linear k;
  private final Linear v;
  private final Linear o;
  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final QkNorm qkNorm;
  private final FloatBuffer qNorm; // [hd] (PER_HEAD) or [H * hd] (FULL), null for NONE
  private final FloatBuffer kNorm;
  private final float eps;
  private final FloatBuffer invFreq; // [hd / 2]
  private final float ropeScale; // on cos and sin (YaRN's attention factor), 1 otherwise
  private final float clip; // q, k, v clamped to [-clip, clip]; 0 for none
  private final int window; // sliding window in positions; 0 for none

  /**
   * See the class comment; q [H*hd, d], k and v [KV*hd, d], o [d, H*hd]; rope for dimension hd;
   * clip 0 for none; window 0 for none.
   */
  public GqaAttention(
      Linear q, Linear k, Linear v, Linear o, int heads, int kvHeads, int headDim, QkNorm qkNorm,
      FloatBuffer qNorm, FloatBuffer kNorm, float eps, Rope rope, float clip, int window) {
    if (window < 0) {
      throw new IllegalArgumentException("window must be >= 0, got " + window);
    }
    if (rope.invFreq().length != headDim / 2) {
      throw new IllegalArgumentException("rope has " + rope.invFreq().length + " frequencies for head_dim " + headDim);
    }
    if (!(clip >= 0)) {
      throw new IllegalArgumentException("clip must be >= 0, got " + clip);
    }
    this.q = q;
    this.k = k;
    this.v = v;
    this.o = o;
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.qkNorm = qkNorm;
    this.qNorm = qNorm;
    this.kNorm = kNorm;
    this.eps = eps;
    this.invFreq = rope.invFreqBuffer();
    this.ropeScale = rope.scale();
    this.clip = clip;
    this.window = window;
  }

  @Override
  public List<Linear> linears() {
    return List.of(q, k, v, o);
  }

  @Override
  public DenseDevice.Attention placeOn(DenseOffload dense) {
    DenseDevice.Weight wq = dense.weightOf(q);
    DenseDevice.Weight wk = dense.weightOf(k);
    DenseDevice.Weight wv = dense.weightOf(v);
    DenseDevice.Weight wo = dense.weightOf(o);
    if (wq == null || wk == null || wv == null || wo == null) {
      return null;
    }
    int norm = switch (qkNorm) {
      case NONE -> DenseDevice.QK_NORM_NONE;
      case PER_HEAD -> DenseDevice.QK_NORM_PER_HEAD;
      case FULL -> DenseDevice.QK_NORM_FULL;
    };
    return dense.device().addGqa(wq, wk, wv, wo, heads, kvHeads, headDim, norm, qNorm, kNorm, eps, invFreq, ropeScale,
        clip, window, scale());
  }

  private float scale() {
    return (float) (1.0 / Math.sqrt(headDim));
  }

  @Override
  public int cacheHeads() {
    return kvHeads;
  }

  @Override
  public int cacheKeyDim() {
    return headDim;
  }

  @Override
  public int cacheValueDim() {
    return headDim;
  }

  @Override
  public void forward(ForwardContext ctx, int layer, FloatBuffer x, int n, FloatBuffer out) {
    int qd = heads * headDim;
    int kd = kvHeads * headDim;
    // q [n, H*hd], k and v [n, KV*hd] in turn in one buffer: one device call takes all three.
    FloatBuffer qkv = ctx.floats(Scratch.Slot.Q, (long) n * (qd + 2 * kd));
    ctx.linears(x, n, qkv, q, k, v);
    FloatBuffer qb = qkv.slice(0, n * qd);
    FloatBuffer kb = qkv.slice(n * qd, n * kd);
    FloatBuffer vb = qkv.slice(n * (qd + kd), n * kd);
    if (qkNorm == QkNorm.PER_HEAD) {
      DenseOps.rmsnorm(qb, n * heads, headDim, headDim, qNorm, eps, qb, headDim);
      DenseOps.rmsnorm(kb, n * kvHeads, headDim, headDim, kNorm, eps, kb, headDim);
    } else if (qkNorm == QkNorm.FULL) {
      DenseOps.rmsnorm(qb, n, qd, qd, qNorm, eps, qb, qd);
      DenseOps.rmsnorm(kb, n, kd, kd, kNorm, eps, kb, kd);
    }
    if (clip > 0) {
      clamp(qb, (long) n * qd, clip);
      clamp(kb, (long) n * kd, clip);
      clamp(vb, (long) n * kd, clip);
    }
    DenseOps.rope(qb, n, heads, qd, headDim, headDim, ctx.positions(), invFreq, ropeScale, RopeStyle.HALF);
    DenseOps.rope(kb, n, kvHeads, kd, headDim, headDim, ctx.positions(), invFreq, ropeScale, RopeStyle.HALF);
    FloatBuffer ab = ctx.floats(Scratch.Slot.ATTENDED, (long) n * qd);
    DenseOps.attention(
        ctx.engine(), ctx.cache(), layer, qb, kb, vb, n, heads, scale(), window, ab);
    ctx.linear(o, ab, n, out);
  }

  private static void clamp(FloatBuffer b, long n, float c) {
    for (int i = 0; i < n; i++) {
      b.put(i, Math.max(-c, Math.min(c, b.get(i))));
    }
  }
}
