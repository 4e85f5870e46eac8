package org.hybrimoe.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.List;
import org.hybrimoe.nativeapi.Engine;

/**
 * The model's {@link Lookahead}: each MoE block's gate and {@link Router}, applied on the engine to
 * whatever router input the executor passes. Logits go to a direct buffer of its own (the
 * session's scratch is live while the executor calls this); not thread-safe, like the forward
 * pass it serves.
 */
final class RouterLookahead implements Lookahead {
  private final Engine engine;
  private final MoeBlock[] blocks; // per decoder layer, null for dense layers
  private FloatBuffer logits = FloatBuffer.allocate(0); // direct once used
  private FloatBuffer weights = FloatBuffer.allocate(0);

  RouterLookahead(Engine engine, List<DecoderLayer> layers) {
    this.engine = engine;
    this.blocks = new MoeBlock[layers.size()];
    for (int l = 0; l < blocks.length; l++) {
      if (layers.get(l).ffn() instanceof MoeBlock b) {
        blocks[l] = b;
      }
    }
  }

  @Override
  public int topK(int decoderLayer) {
    return block(decoderLayer).routing().topK();
  }

  @Override
  public void predict(int decoderLayer, FloatBuffer x, int nTokens, int[] ids) {
    MoeBlock b = block(decoderLayer);
    Router r = b.routing();
    int k = r.topK();
    if (nTokens < 1 || ids.length < (long) nTokens * k) {
      throw new IllegalArgumentException("need n >= 1 and ids of n * top-k = " + (long) nTokens * k
          + " for layer " + decoderLayer + ", got n " + nTokens + ", ids " + ids.length);
    }
    int e = r.nExperts();
    if (logits.capacity() < (long) nTokens * e) {
      logits = ByteBuffer.allocateDirect(Math.multiplyExact(4 * nTokens, e)).order(ByteOrder.nativeOrder())
          .asFloatBuffer();
    }
    if (weights.capacity() < nTokens * k) {
      weights = FloatBuffer.allocate(nTokens * k);
    }
    FloatBuffer lg = logits.duplicate().limit(nTokens * e);
    b.gate().apply(engine, x, nTokens, lg);
    r.route(lg, nTokens, IntBuffer.wrap(ids, 0, nTokens * k), weights, null);
  }

  private MoeBlock block(int decoderLayer) {
    if (decoderLayer < 0 || decoderLayer >= blocks.length || blocks[decoderLayer] == null) {
      throw new IllegalArgumentException("decoder layer " + decoderLayer + " is not a MoE layer of this model ("
          + blocks.length + " layers)");
    }
    return blocks[decoderLayer];
  }
}
