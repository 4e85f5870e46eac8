package org.hybrimoe.model;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.Arrays;
import java.util.Map;
import org.hybrimoe.expert.ExpertLayerWeights;
import org.hybrimoe.nativeapi.Engine;

/**
 * A {@link MoeLayerExecutor} that hands every call's routing to a {@link RoutingSink} (with the
 * look-ahead's predictions for the next {@code depth} MoE layers, computed here from the call's
 * input) and then runs the call on the executor it wraps, unchanged: what the model computes does
 * not depend on whether it is recorded.
 */
public final class RecordingExecutor implements MoeLayerExecutor {
  private final MoeLayerExecutor inner;
  private final RoutingSink sink;
  private final int depth;
  private final int[] moeDecoderLayers;
  private final int[] moeOf; // decoder layer -> MoE layer index, -1
  private final int experts;
  private Lookahead lookahead;

  /** A factory wrapping another's executors, recording into sink with look-ahead depth {@code depth}. */
  public static MoeExecutorFactory wrap(MoeExecutorFactory factory, RoutingSink sink, int depth) {
    return new MoeExecutorFactory() {
      @Override
      public MoeLayerExecutor create(Engine engine, Map<Integer, ExpertLayerWeights> layers, LoadOptions options) {
        return new RecordingExecutor(factory.create(engine, layers, options), layers, 0, sink, depth);
      }

      @Override
      public MoeLayerExecutor create(Engine engine, Map<Integer, ExpertLayerWeights> layers,
          Map<Integer, SharedExpert> shared, LoadOptions options) {
        return new RecordingExecutor(factory.create(engine, layers, shared, options), layers, shared.size() > 0
            ? shared.values().iterator().next().mlp().ff() : 0, sink, depth);
      }
    };
  }

  private RecordingExecutor(MoeLayerExecutor inner, Map<Integer, ExpertLayerWeights> layers, int sharedFf,
      RoutingSink sink, int depth) {
    if (depth < 0) {
      throw new IllegalArgumentException("look-ahead depth must be >= 0, got " + depth);
    }
    this.inner = inner;
    this.sink = sink;
    this.depth = depth;
    this.moeDecoderLayers = layers.keySet().stream().mapToInt(Integer::intValue).sorted().toArray();
    int maxLayer = moeDecoderLayers.length == 0 ? -1 : moeDecoderLayers[moeDecoderLayers.length - 1];
    this.moeOf = new int[maxLayer + 1];
    Arrays.fill(moeOf, -1);
    for (int i = 0; i < moeDecoderLayers.length; i++) {
      moeOf[moeDecoderLayers[i]] = i;
    }
    ExpertLayerWeights first = layers.get(moeDecoderLayers[0]);
    this.experts = first.nExperts();
    // Shared experts in routed-expert units (DeepSeek keeps its n shared experts as one MLP of n x ff).
    int sharedPieces = sharedFf == 0 ? 0 : (int) ((sharedFf + first.dFf() - 1) / first.dFf());
    sink.model(moeDecoderLayers.clone(), experts, (int) first.dModel(), (int) first.dFf(), sharedPieces);
  }

  @Override
  public void run(int layer, FloatBuffer x, int nTokens, int topK, IntBuffer ids, FloatBuffer weights, FloatBuffer out) {
    run(layer, x, nTokens, topK, ids, weights, null, out);
  }

  @Override
  public void run(int layer, FloatBuffer x, int nTokens, int topK, IntBuffer ids, FloatBuffer weights, FloatBuffer scores,
      FloatBuffer out) {
    int m = layer >= 0 && layer < moeOf.length ? moeOf[layer] : -1;
    if (m < 0) {
      throw new IllegalArgumentException("decoder layer " + layer + " is not a MoE layer of this model");
    }
    int[] id = new int[nTokens * topK];
    ids.get(ids.position(), id);
    float[] w = new float[nTokens * topK];
    weights.get(weights.position(), w);
    float[] sc = null;
    if (scores != null) {
      sc = new float[nTokens * experts];
      scores.get(scores.position(), sc);
    }
    int[][] predicted = new int[depth][];
    for (int d = 1; d <= depth && lookahead != null; d++) {
      if (m + d < moeDecoderLayers.length) {
        int target = moeDecoderLayers[m + d];
        predicted[d - 1] = new int[nTokens * lookahead.topK(target)];
        lookahead.predict(target, x, nTokens, predicted[d - 1]);
      }
    }
    sink.layer(m, nTokens, topK, id, w, sc, predicted);
    inner.run(layer, x, nTokens, topK, ids, weights, scores, out);
  }

  @Override
  public void setLookahead(Lookahead lookahead) {
    this.lookahead = lookahead;
    inner.setLookahead(lookahead);
  }

  @Override
  public boolean runsSharedExpert(int layer) {
    return inner.runsSharedExpert(layer);
  }

  @Override
  public ExecutorStats stats() {
    return inner.stats();
  }

  @Override
  public void resetStats() {
    inner.resetStats();
  }

  @Override
  public void close() {
    inner.close();
  }
}
