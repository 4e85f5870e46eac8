package org.hybrimoe.model;

import java.nio.FloatBuffer;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.RopeStyle;

/**
 * DeepSeek-V2 multi-head latent attention, computed in its expanded form (per-head keys and values
 * in the cache):
 *
 * <pre>
 *   q      = q_proj(x)  or  q_b_proj(rmsnorm(q_a_proj(x)))          [n, H, nope + rope]
 *   [c|pe] = kv_a_proj_with_mqa(x)                                  [n, rank + rope]
 *   kv     = kv_b_proj(rmsnorm(c))                                  [n, H, nope + vd]
 *   k      = [k_nope | rope(pe)] per head, v from kv; q's rope part rotated (interleaved pairs)
 *   out    = o_proj(softmax(q.k * scale) v)                         scale = (nope+rope)^-0.5 * m^2
 * </pre>
 *
 * The two latent norms use eps 1e-6 (as DeepSeek's code constructs them). With YaRN, cos/sin carry
 * YaRN's mscale ratio and the softmax scale its mscale_all_dim factor squared (see {@link Yarn}).
 */
public final class MlaAttention implements Attention {
  static final float LATENT_EPS = 1e-6f;

  private final Linear qProj; // [H*(nope+rope), d], or null with q-lora
  private final Linear qA; // [qRank, d]
  private final FloatBuffer qANorm; // [qRank]
  private final Linear qB; // [H*(nope+rope), qRank]
  private final Linear kvA; // [rank + rope, d]
  private final FloatBuffer kvANorm; // [rank]
  private final Linear kvB; // [H*(nope+vd), rank]
  private final Linear o; // [d, H*vd]
  private final int heads;
  private final int nope;
  private final int rope;
  private final int vd;
  private final int rank;
  private final FloatBuffer invFreq; // [rope / 2]
  private final float ropeScale;
  private final float softmaxScale;

  /** qProj is null when qA/qANorm/qB (q-lora) are given, and the other way round. */
  public MlaAttention(
      Linear qProj, Linear qA, FloatBuffer qANorm, Linear qB, Linear kvA, FloatBuffer kvANorm,
      Linear kvB, Linear o, int heads, int nope, int rope, int vd, int rank, float[] invFreq,
      float ropeScale, float softmaxScale) {
    this.qProj = qProj;
    this.qA = qA;
    this.qANorm = qANorm;
    this.qB = qB;
    this.kvA = kvA;
    this.kvANorm = kvANorm;
    this.kvB = kvB;
    this.o = o;
    this.heads = heads;
    this.nope = nope;
    this.rope = rope;
    this.vd = vd;
    this.rank = rank;
    this.invFreq = DenseOps.floats(invFreq.length).put(invFreq).flip();
    this.ropeScale = ropeScale;
    this.softmaxScale = softmaxScale;
  }

  @Override
  public int cacheHeads() {
    return heads;
  }

  @Override
  public int cacheKeyDim() {
    return nope + rope;
  }

  @Override
  public int cacheValueDim() {
    return vd;
  }

  @Override
  public void forward(ForwardContext ctx, int layer, FloatBuffer x, int n, FloatBuffer out) {
    int qk = nope + rope;
    FloatBuffer qb = ctx.floats(Scratch.Slot.Q, (long) n * heads * qk);
    if (qProj != null) {
      qProj.apply(ctx.engine(), x, n, qb);
    } else {
      FloatBuffer qa = ctx.floats(Scratch.Slot.Q_LATENT, (long) n * qA.out());
      qA.apply(ctx.engine(), x, n, qa);
      DenseOps.rmsnorm(qa, n, qA.out(), qA.out(), qANorm, LATENT_EPS, qa, qA.out());
      qB.apply(ctx.engine(), qa, n, qb);
    }
    int aw = rank + rope;
    FloatBuffer ab = ctx.floats(Scratch.Slot.KV_LATENT, (long) n * aw);
    kvA.apply(ctx.engine(), x, n, ab);
    FloatBuffer c = ctx.floats(Scratch.Slot.KV_NORMED, (long) n * rank);
    DenseOps.rmsnorm(ab, n, rank, aw, kvANorm, LATENT_EPS, c, rank);
    FloatBuffer kv = ctx.floats(Scratch.Slot.KV_UP, (long) n * heads * (nope + vd));
    kvB.apply(ctx.engine(), c, n, kv);
    // RoPE: q's rope part of every head, and the single shared k_pe.
    DenseOps.rope(
        qb.slice(nope, qb.capacity() - nope), n, heads, heads * qk, qk, rope, ctx.positions(),
        invFreq, ropeScale, RopeStyle.INTERLEAVED);
    FloatBuffer pe = ab.slice(rank, ab.capacity() - rank);
    DenseOps.rope(pe, n, 1, aw, rope, rope, ctx.positions(), invFreq, ropeScale, RopeStyle.INTERLEAVED);
    FloatBuffer kb = ctx.floats(Scratch.Slot.K, (long) n * heads * qk);
    FloatBuffer vb = ctx.floats(Scratch.Slot.V, (long) n * heads * vd);
    for (int t = 0; t < n; t++) {
      for (int h = 0; h < heads; h++) {
        int src = (t * heads + h) * (nope + vd);
        int dst = (t * heads + h) * qk;
        for (int i = 0; i < nope; i++) {
          kb.put(dst + i, kv.get(src + i));
        }
        for (int i = 0; i < rope; i++) {
          kb.put(dst + nope + i, ab.get(t * aw + rank + i));
        }
        for (int i = 0; i < vd; i++) {
          vb.put((t * heads + h) * vd + i, kv.get(src + nope + i));
        }
      }
    }
    FloatBuffer att = ctx.floats(Scratch.Slot.ATTENDED, (long) n * heads * vd);
    DenseOps.attention(ctx.engine(), ctx.cache(), layer, qb, kb, vb, n, heads, softmaxScale, att);
    o.apply(ctx.engine(), att, n, out);
  }
}
