package org.hybrimoe.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.List;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.DenseOps;
import org.hybrimoe.ops.DenseOps.WeightType;

/**
 * A loaded decoder-only MoE language model: embeddings, decoder layers, final RMSNorm and LM
 * head, with the weights borrowed from the mapped checkpoint and the routed experts behind a
 * {@link MoeLayerExecutor}, which is handed a {@link Lookahead} onto the model's routers when the
 * model is assembled. Run it through {@link #newSession}. Closing it closes the executor,
 * the checkpoint files and, when it owns it, the engine.
 *
 * <p>Thread-safety: sessions of one model must not run concurrently (they share the engine and
 * the executor).
 */
public final class CausalLm implements AutoCloseable {
  private final String modelType;
  private final Engine engine;
  private final boolean ownsEngine;
  private final ModelWeights weights;
  private final MoeLayerExecutor experts;
  private final ByteBuffer embedding; // [vocab, d]
  private final WeightType embeddingType;
  private final List<DecoderLayer> layers;
  private final FloatBuffer finalNorm; // [d]
  private final Linear lmHead; // [vocab, d]
  private final float eps;
  private final int maxPositions;
  private final Lookahead lookahead;
  private final DenseOffload dense; // null: every dense linear on the CPU

  /** Assembles a model (architectures call this; see {@link ModelRegistry}). */
  public CausalLm(
      String modelType, Engine engine, boolean ownsEngine, ModelWeights weights,
      MoeLayerExecutor experts, ByteBuffer embedding, WeightType embeddingType,
      List<DecoderLayer> layers, FloatBuffer finalNorm, Linear lmHead, float eps, int maxPositions,
      DenseOffload dense) {
    this.modelType = modelType;
    this.engine = engine;
    this.ownsEngine = ownsEngine;
    this.weights = weights;
    this.experts = experts;
    this.embedding = embedding;
    this.embeddingType = embeddingType;
    this.layers = List.copyOf(layers);
    this.finalNorm = finalNorm;
    this.lmHead = lmHead;
    this.eps = eps;
    this.maxPositions = maxPositions;
    this.dense = dense;
    this.lookahead = new RouterLookahead(engine, this.layers);
    experts.setLookahead(lookahead); // when this throws, Layers.assemble closes the executor and the offload
  }

  /** The config's model_type. */
  public String modelType() {
    return modelType;
  }

  public int vocabSize() {
    return lmHead.out();
  }

  public int hiddenSize() {
    return lmHead.in();
  }

  public int numLayers() {
    return layers.size();
  }

  /** The config's max_position_embeddings: the longest sequence a session accepts by default. */
  public int maxPositions() {
    return maxPositions;
  }

  /** The executor the MoE layers run on. */
  public MoeLayerExecutor experts() {
    return experts;
  }

  /**
   * The look-ahead onto this model's routers (what its executor was given): any MoE layer's gate
   * and top-k rule on another layer's router input.
   */
  public Lookahead lookahead() {
    return lookahead;
  }

  Engine engine() {
    return engine;
  }

  /** Where the dense linears run besides the CPU, when anywhere ({@link LoadOptions#dense}). */
  public java.util.Optional<DenseOffload> denseOffload() {
    return java.util.Optional.ofNullable(dense);
  }

  DenseOffload dense() {
    return dense;
  }

  /**
   * Floats a session's KV cache holds per position, over all layers: heads x (key + value) for
   * GQA, heads x key for a key-only cache (MLA's latent).
   */
  public long kvCacheFloatsPerPosition() {
    Attention a = layers().get(0).attention();
    return (long) numLayers() * a.cacheHeads() * (a.cacheKeyDim() + (a.cacheValueSharesKey() ? 0 : a.cacheValueDim()));
  }

  List<DecoderLayer> layers() {
    return layers;
  }

  /** A new sequence with a KV cache of {@code maxSeq} positions. Close it when done. */
  public Session newSession(int maxSeq) {
    return new Session(this, maxSeq, org.hybrimoe.ops.KvCache.Dtype.F32);
  }

  /**
   * A session whose KV cache stores kvType elements: BF16 halves the cache's memory and the
   * attention's reads at long contexts, rounding keys and values (F32 is exact).
   */
  public Session newSession(int maxSeq, org.hybrimoe.ops.KvCache.Dtype kvType) {
    return new Session(this, maxSeq, kvType);
  }

  /** Embeddings of tokens [n] as f32 rows [n, d]; throws for an id outside the vocabulary. */
  FloatBuffer embed(int[] tokens, Scratch scratch) {
    int d = hiddenSize();
    FloatBuffer h = scratch.floats(Scratch.Slot.HIDDEN, (long) tokens.length * d);
    int rowBytes = d * embeddingType.bytes();
    for (int t = 0; t < tokens.length; t++) {
      int id = tokens[t];
      if (id < 0 || id >= vocabSize()) {
        throw new IllegalArgumentException(
            "token id " + id + " at index " + t + " is outside the vocabulary (0.." + (vocabSize() - 1) + ")");
      }
      ModelWeights.toF32(embedding.slice(id * rowBytes, rowBytes), embeddingType, d, h.slice(t * d, d));
    }
    return h;
  }

  /** Final norm and LM head: logits [n, vocab] from hidden states [n, d]. */
  FloatBuffer head(ForwardContext ctx, FloatBuffer h, int n) {
    int d = hiddenSize();
    FloatBuffer x = ctx.floats(Scratch.Slot.HEAD_IN, (long) n * d);
    DenseOps.rmsnorm(h, n, d, d, finalNorm, eps, x, d);
    FloatBuffer logits = ctx.floats(Scratch.Slot.LOGITS, (long) n * vocabSize());
    ctx.linear(lmHead, x, n, logits);
    return logits;
  }

  float eps() {
    return eps;
  }

  @Override
  public void close() throws IOException {
    try {
      experts.close();
    } finally {
      try {
        if (dense != null) {
          dense.close();
        }
        weights.close();
      } finally {
        if (ownsEngine) {
          engine.close();
        }
      }
    }
  }
}
