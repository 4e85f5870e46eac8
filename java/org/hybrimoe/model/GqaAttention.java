package org.hybrimoe.model;

import java.nio.FloatBuffer;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.RopeStyle;

/**
 * Grouped-query attention (Mixtral, Qwen2/3-MoE, OLMoE): q [n, H, hd], k and v [n, KV, hd] from
 * linears (optional biases), optional q/k RMSNorm (per head as Qwen3, or over the whole
 * projection as OLMoE), rotate_half RoPE, softmax(q.k / sqrt(hd)) over the cache, o_proj.
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

  /** See the class comment; q [H*hd, d], k and v [KV*hd, d], o [d, H*hd]. */
  public GqaAttention(
      Linear q, Linear k, Linear v, Linear o, int heads, int kvHeads, int headDim, QkNorm qkNorm,
      FloatBuffer qNorm, FloatBuffer kNorm, float eps, double ropeTheta) {
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
    float[] f = Act.ropeInvFreq(ropeTheta, headDim);
    this.invFreq = DenseOps.floats(f.length).put(f).flip();
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
    FloatBuffer qb = ctx.floats(Scratch.Slot.Q, (long) n * qd);
    FloatBuffer kb = ctx.floats(Scratch.Slot.K, (long) n * kd);
    FloatBuffer vb = ctx.floats(Scratch.Slot.V, (long) n * kd);
    q.apply(ctx.engine(), x, n, qb);
    k.apply(ctx.engine(), x, n, kb);
    v.apply(ctx.engine(), x, n, vb);
    if (qkNorm == QkNorm.PER_HEAD) {
      DenseOps.rmsnorm(qb, n * heads, headDim, headDim, qNorm, eps, qb, headDim);
      DenseOps.rmsnorm(kb, n * kvHeads, headDim, headDim, kNorm, eps, kb, headDim);
    } else if (qkNorm == QkNorm.FULL) {
      DenseOps.rmsnorm(qb, n, qd, qd, qNorm, eps, qb, qd);
      DenseOps.rmsnorm(kb, n, kd, kd, kNorm, eps, kb, kd);
    }
    DenseOps.rope(qb, n, heads, qd, headDim, headDim, ctx.positions(), invFreq, 1f, RopeStyle.HALF);
    DenseOps.rope(kb, n, kvHeads, kd, headDim, headDim, ctx.positions(), invFreq, 1f, RopeStyle.HALF);
    FloatBuffer ab = ctx.floats(Scratch.Slot.ATTENDED, (long) n * qd);
    DenseOps.attention(
        ctx.engine(), ctx.cache(), layer, qb, kb, vb, n, heads, (float) (1.0 / Math.sqrt(headDim)), ab);
    o.apply(ctx.engine(), ab, n, out);
  }
}
