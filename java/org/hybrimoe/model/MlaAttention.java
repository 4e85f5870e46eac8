package org.hybrimoe.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.List;
import org.hybrimoe.device.DenseDevice;
import org.hybrimoe.ops.DenseOps.RopeStyle;
import org.hybrimoe.ops.DenseOps;

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
 * (heads do not share a weight) are one native call each way per step, all heads and tokens in
 * one pass over the engine's pool ({@link DenseOps#linearHeads}); as H calls of one small matrix
 * each they ran single-threaded below the pool's threshold and paid a JNI crossing per head.
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
  private final ByteBuffer ukT; // [H, rank, nope]: per head W_uk_h^T, transposed copies
  private final ByteBuffer uv; // kv_b_proj from head 0's W_uv: W_uv_h [vd, rank] every (nope+vd)*rank elements
  private final ByteBuffer kvB; // kv_b_proj whole [H*(nope+vd), rank] (what a dense device takes)
  private final DenseOps.WeightType kvType;
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
    this.kvType = kvB.type();
    this.ukT = transposedUk(kvB);
    int es = kvB.type().bytes();
    ByteBuffer w = kvB.weight();
    this.kvB = w.slice();
    this.uv = w.slice(w.position() + nope * rank * es, heads * (nope + vd) * rank * es - nope * rank * es);
  }

  /** Per head W_uk_h^T [rank, nope] (same dtype), heads one after the other. */
  private ByteBuffer transposedUk(Linear kvB) {
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
      all.put(h * rank * nope * es, t);
    }
    return all;
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

  /**
   * The projections of whole weights (the per-head absorbed products, W_uk and W_uv, go to a
   * device with the whole sublayer: {@link #placeOn}).
   */
  @Override
  public List<Linear> linears() {
    return qProj != null ? List.of(qProj, kvA, o) : List.of(qA, qB, kvA, o);
  }

  /**
   * On the device: the whole-weight projections placed as linears, and W_uk^T and kv_b_proj
   * uploaded here (2 and 4 MiB a layer in bf16 for V2-Lite).
   */
  @Override
  public DenseDevice.Attention placeOn(DenseOffload dense) {
    DenseDevice.Weight wq = qProj == null ? null : dense.weightOf(qProj);
    DenseDevice.Weight wqa = qA == null ? null : dense.weightOf(qA);
    DenseDevice.Weight wqb = qB == null ? null : dense.weightOf(qB);
    DenseDevice.Weight wkva = dense.weightOf(kvA);
    DenseDevice.Weight wo = dense.weightOf(o);
    if ((qProj != null ? wq == null : wqa == null || wqb == null) || wkva == null || wo == null) {
      return null;
    }
    DenseDevice.Weight uk = dense.uploadExtra(ukT, kvType, heads * rank, nope);
    DenseDevice.Weight kvb = uk == null ? null : dense.uploadExtra(kvB, kvType, heads * (nope + vd), rank);
    if (kvb == null) {
      return null;
    }
    return dense.device().addMla(wq, wqa, qANorm, wqb, wkva, kvANorm, uk, kvb, wo, heads, nope, rope, vd, rank,
        LATENT_EPS, invFreq, ropeScale, softmaxScale);
  }

  /** The value c is the key's first rank floats: stored once. */
  @Override
  public boolean cacheValueSharesKey() {
    return true;
  }

  @Override
  public void forward(ForwardContext ctx, int layer, FloatBuffer x, int n, FloatBuffer out) {
    int qk = nope + rope;
    int aw = rank + rope;
    // The query's first projection and kv_a_proj_with_mqa share x: one buffer, one device call.
    // key [n, 1, rank + rope] = [rmsnorm(c) | rope(pe)], built in place; the value is its c part.
    FloatBuffer qb;
    FloatBuffer key;
    if (qProj != null) {
      FloatBuffer both = ctx.floats(Scratch.Slot.Q, (long) n * (heads * qk + aw));
      ctx.linears(x, n, both, qProj, kvA);
      qb = both.slice(0, n * heads * qk);
      key = both.slice(n * heads * qk, n * aw);
    } else {
      FloatBuffer both = ctx.floats(Scratch.Slot.Q_LATENT, (long) n * (qA.out() + aw));
      ctx.linears(x, n, both, qA, kvA);
      FloatBuffer qa = both.slice(0, n * qA.out());
      key = both.slice(n * qA.out(), n * aw);
      DenseOps.rmsnorm(qa, n, qA.out(), qA.out(), qANorm, LATENT_EPS, qa, qA.out());
      qb = ctx.floats(Scratch.Slot.Q, (long) n * heads * qk);
      ctx.linear(qB, qa, n, qb);
    }
    DenseOps.rmsnorm(key, n, rank, aw, kvANorm, LATENT_EPS, key, aw);
    DenseOps.rope(
        key.slice(rank, key.capacity() - rank), n, 1, aw, rope, rope, ctx.positions(), invFreq,
        ropeScale, RopeStyle.INTERLEAVED);
    DenseOps.rope(
        qb.slice(nope, qb.capacity() - nope), n, heads, heads * qk, qk, rope, ctx.positions(),
        invFreq, ropeScale, RopeStyle.INTERLEAVED);
    // q'[n, H, rank + rope]: W_uk_h^T q_nope_h, then the rotated q_pe_h.
    FloatBuffer qa = ctx.floats(Scratch.Slot.Q_ABSORBED, (long) n * heads * aw);
    DenseOps.linearHeads(ctx.engine(), qb, n, heads, nope, heads * qk, qk, ukT, kvType, (long) rank * nope, rank,
        qa, heads * aw, aw);
    for (int t = 0; t < n * heads; t++) {
      qa.put(t * aw + rank, qb, t * qk + nope, rope);
    }
    FloatBuffer lat = ctx.floats(Scratch.Slot.LATENT_OUT, (long) n * heads * rank);
    DenseOps.attention(ctx.engine(), ctx.cache(), layer, qa, key, null, n, heads, softmaxScale, lat);
    FloatBuffer att = ctx.floats(Scratch.Slot.ATTENDED, (long) n * heads * vd);
    DenseOps.linearHeads(ctx.engine(), lat, n, heads, rank, heads * rank, rank, uv, kvType, (long) (nope + vd) * rank,
        vd, att, heads * vd, vd);
    ctx.linear(o, att, n, out);
  }
}
