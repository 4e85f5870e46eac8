package org.hybrimoe.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.RopeStyle;

/**
 * DeepSeek-V2 multi-head latent attention in its absorbed form: the cache holds the compressed
 * latent (one shared "KV head" per position), not per-head keys and values.
 *
 * <pre>
 *   q       = q_proj(x)  or  q_b_proj(rmsnorm(q_a_proj(x)))         [n, H, nope + rope]
 *   [c|pe]  = kv_a_proj_with_mqa(x);  c = rmsnorm(c), pe = rope(pe)  [n, rank + rope]
 *   cache   key = [c | pe] (rank + rope), 1 head per position; value = c = key[:rank] (shared)
 *   q'_h    = [W_uk_h^T q_nope_h | rope(q_pe_h)]                     [n, H, rank + rope]
 *   o'_h    = softmax(q'_h . key * scale) value                      [n, H, rank]  (MQA)
 *   out     = o_proj(concat_h W_uv_h o'_h)                           scale = (nope+rope)^-0.5 * m^2
 * </pre>
 *
 * kv_b_proj [H*(nope+vd), rank] holds per head W_uk_h (nope rows) then W_uv_h (vd rows). Since
 * q'_h . key = q_nope_h . (W_uk_h c) + q_pe_h . pe, the scores equal the expanded form's
 * (k_nope = W_uk_h c, v = W_uv_h c) exactly in real arithmetic, and W_uv_h moves out of the
 * attention sum by linearity. W_uv_h is read in place (a slice of kv_b_proj); W_uk_h^T [rank,
 * nope] is transposed once at load, in the checkpoint's dtype: H*nope*rank elements per layer
 * (the size of kv_b_proj's key half; 2 MiB per layer in bf16 for V2-Lite). The per-head products
 * are H linears each way per step (heads do not share a weight), batched over the step's tokens.
 *
 * <p>The cache is key-only ({@link org.hybrimoe.ops.KvCache#createSharedKv}): the value is read
 * from the key's first rank floats, so c is stored once: (rank + rope) floats per position per
 * layer instead of H*(nope + rope + vd). For V2-Lite (H 16, nope 128, rope 64, vd 128, rank 512)
 * that is 576 floats (2304 bytes in f32) instead of 5120, and instead of the 1088 (2*rank + rope)
 * that storing c as both key and value took.
 *
 * <p>The two latent norms use eps 1e-6 (as DeepSeek's code constructs them). With YaRN, cos/sin
 * carry YaRN's mscale ratio and the softmax scale its mscale_all_dim factor squared (see {@link
 * Yarn}).
 */
public final class MlaAttention implements Attention {
  static final float LATENT_EPS = 1e-6f;

  private final Linear qProj; // [H*(nope+rope), d], or null with q-lora
  private final Linear qA; // [qRank, d]
  private final FloatBuffer qANorm; // [qRank]
  private final Linear qB; // [H*(nope+rope), qRank]
  private final Linear kvA; // [rank + rope, d]
  private final FloatBuffer kvANorm; // [rank]
  private final Linear[] ukT; // per head W_uk_h^T [rank, nope], transposed copies
  private final Linear[] uv; // per head W_uv_h [vd, rank], slices of kv_b_proj
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
    if (kvB.out() != heads * (nope + vd) || kvB.in() != rank || kvB.bias() != null) {
      throw new IllegalArgumentException(
          "kv_b_proj must be [" + heads * (nope + vd) + ", " + rank + "] without bias, got ["
              + kvB.out() + ", " + kvB.in() + "]");
    }
    this.qProj = qProj;
    this.qA = qA;
    this.qANorm = qANorm;
    this.qB = qB;
    this.kvA = kvA;
    this.kvANorm = kvANorm;
    this.o = o;
    this.heads = heads;
    this.nope = nope;
    this.rope = rope;
    this.vd = vd;
    this.rank = rank;
    this.invFreq = DenseOps.floats(invFreq.length).put(invFreq).flip();
    this.ropeScale = ropeScale;
    this.softmaxScale = softmaxScale;
    this.ukT = new Linear[heads];
    this.uv = new Linear[heads];
    splitKvB(kvB);
  }

  /** Per head: W_uv_h as a slice of kv_b_proj, W_uk_h^T as a transposed copy (same dtype). */
  private void splitKvB(Linear kvB) {
    int es = kvB.type().bytes();
    ByteBuffer w = kvB.weight();
    int base = w.position();
    ByteBuffer all =
        ByteBuffer.allocateDirect(Math.multiplyExact(Math.multiplyExact(heads, rank * nope), es))
            .order(ByteOrder.nativeOrder());
    byte[] row = new byte[rank * es];
    byte[] t = new byte[rank * nope * es];
    for (int h = 0; h < heads; h++) {
      int rows = h * (nope + vd);
      // W_uk_h [nope, rank] -> [rank, nope]: element (i, r) -> (r, i), es bytes each.
      for (int i = 0; i < nope; i++) {
        w.get(base + (rows + i) * rank * es, row);
        for (int r = 0; r < rank; r++) {
          System.arraycopy(row, r * es, t, (r * nope + i) * es, es);
        }
      }
      int off = h * rank * nope * es;
      all.put(off, t);
      ukT[h] = new Linear(all.slice(off, rank * nope * es), kvB.type(), rank, nope, null);
      uv[h] =
          new Linear(
              w.slice(base + (rows + nope) * rank * es, vd * rank * es), kvB.type(), vd, rank, null);
    }
  }

  /** One shared latent head per position. */
  @Override
  public int cacheHeads() {
    return 1;
  }

  /** [c | pe]: kv_lora_rank + qk_rope_head_dim. */
  @Override
  public int cacheKeyDim() {
    return rank + rope;
  }

  /** c: kv_lora_rank. */
  @Override
  public int cacheValueDim() {
    return rank;
  }

  /** The value c is the key's first rank floats: stored once. */
  @Override
  public boolean cacheValueSharesKey() {
    return true;
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
    // key [n, 1, rank + rope] = [rmsnorm(c) | rope(pe)], built in place; the value is its c part.
    FloatBuffer key = ctx.floats(Scratch.Slot.KV_LATENT, (long) n * aw);
    kvA.apply(ctx.engine(), x, n, key);
    DenseOps.rmsnorm(key, n, rank, aw, kvANorm, LATENT_EPS, key, aw);
    DenseOps.rope(
        key.slice(rank, key.capacity() - rank), n, 1, aw, rope, rope, ctx.positions(), invFreq,
        ropeScale, RopeStyle.INTERLEAVED);
    DenseOps.rope(
        qb.slice(nope, qb.capacity() - nope), n, heads, heads * qk, qk, rope, ctx.positions(),
        invFreq, ropeScale, RopeStyle.INTERLEAVED);
    // q'[n, H, rank + rope]: W_uk_h^T q_nope_h, then the rotated q_pe_h.
    FloatBuffer qa = ctx.floats(Scratch.Slot.Q_ABSORBED, (long) n * heads * aw);
    FloatBuffer hx = ctx.floats(Scratch.Slot.HEAD_X, (long) n * Math.max(nope, rank));
    FloatBuffer hy = ctx.floats(Scratch.Slot.HEAD_Y, (long) n * Math.max(rank, vd));
    for (int h = 0; h < heads; h++) {
      perHead(ctx, ukT[h], qb, h * qk, heads * qk, qa, h * aw, heads * aw, n, hx, hy);
      for (int t = 0; t < n; t++) {
        qa.put((t * heads + h) * aw + rank, qb, (t * heads + h) * qk + nope, rope);
      }
    }
    FloatBuffer lat = ctx.floats(Scratch.Slot.LATENT_OUT, (long) n * heads * rank);
    DenseOps.attention(ctx.engine(), ctx.cache(), layer, qa, key, null, n, heads, softmaxScale, lat);
    FloatBuffer att = ctx.floats(Scratch.Slot.ATTENDED, (long) n * heads * vd);
    for (int h = 0; h < heads; h++) {
      perHead(ctx, uv[h], lat, h * rank, heads * rank, att, h * vd, heads * vd, n, hx, hy);
    }
    o.apply(ctx.engine(), att, n, out);
  }

  /**
   * Row t of dst at dstOff + t*dstStride = w applied to row t of src at srcOff + t*srcStride, for
   * t < n. One token reads and writes in place; more are gathered into hx and scattered from hy
   * (bulk copies) so that one linear covers all n rows.
   */
  private static void perHead(
      ForwardContext ctx, Linear w, FloatBuffer src, int srcOff, int srcStride, FloatBuffer dst,
      int dstOff, int dstStride, int n, FloatBuffer hx, FloatBuffer hy) {
    if (n == 1) {
      w.apply(ctx.engine(), src.slice(srcOff, w.in()), 1, dst.slice(dstOff, w.out()));
      return;
    }
    for (int t = 0; t < n; t++) {
      hx.put(t * w.in(), src, srcOff + t * srcStride, w.in());
    }
    w.apply(ctx.engine(), hx, n, hy);
    for (int t = 0; t < n; t++) {
      dst.put(dstOff + t * dstStride, hy, t * w.out(), w.out());
    }
  }
}
