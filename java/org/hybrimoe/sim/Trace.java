package org.hybrimoe.sim;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * A routing trace (ALGORITHMS.md section 6) held in memory or mapped from disk: the top-k expert
 * ids every MoE layer chose for every token, plus the optional routing weights, scores and
 * look-ahead predictions. Immutable; built by {@link TraceReader} or {@link SyntheticTraceGenerator}.
 *
 * <p>Shapes (C order): ids [tokens, layers, topK] of uint8 or uint16; weights [tokens, layers,
 * topK] f32; scores [tokens, layers, experts] f32; predicted [tokens, layers, depth, topK] of the
 * ids dtype. Multi-byte values are little-endian.
 */
public final class Trace {
  /** Whether the k slots of a token are ordered by routing rank or carry no order. */
  public enum SlotOrder {
    RANK,
    UNORDERED
  }

  /** One prompt of the trace: tokens [offset, offset + tokens). */
  public record Sequence(int offset, int tokens) {}

  private final String model;
  private final int layers;
  private final int firstMoeLayer;
  private final int experts;
  private final int sharedExperts;
  private final int topK;
  private final int hiddenSize;
  private final int moeIntermediateSize;
  private final int tokens;
  private final SlotOrder slotOrder;
  private final int idBytes; // 1 (uint8) or 2 (uint16)
  private final ByteBuffer ids; // [tokens, layers, topK], little-endian
  private final ByteBuffer weights; // [tokens, layers, topK] f32, or null
  private final ByteBuffer scores; // [tokens, layers, experts] f32, or null
  private final ByteBuffer predicted; // [tokens, layers, depth, topK], or null
  private final int predictedDepth;
  private final Sequence[] sequences;

  /** Everything a trace holds; validation is the caller's (the reader's or generator's). */
  Trace(
      String model,
      int layers,
      int firstMoeLayer,
      int experts,
      int sharedExperts,
      int topK,
      int hiddenSize,
      int moeIntermediateSize,
      int tokens,
      SlotOrder slotOrder,
      int idBytes,
      ByteBuffer ids,
      ByteBuffer weights,
      ByteBuffer scores,
      ByteBuffer predicted,
      int predictedDepth,
      Sequence[] sequences) {
    this.model = Objects.requireNonNull(model);
    this.layers = layers;
    this.firstMoeLayer = firstMoeLayer;
    this.experts = experts;
    this.sharedExperts = sharedExperts;
    this.topK = topK;
    this.hiddenSize = hiddenSize;
    this.moeIntermediateSize = moeIntermediateSize;
    this.tokens = tokens;
    this.slotOrder = slotOrder;
    this.idBytes = idBytes;
    this.ids = ids.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    this.weights = weights == null ? null : weights.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    this.scores = scores == null ? null : scores.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    this.predicted = predicted == null ? null : predicted.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    this.predictedDepth = predictedDepth;
    this.sequences = sequences.clone();
  }

  public String model() {
    return model;
  }

  /** Number of MoE layers in the trace. */
  public int layers() {
    return layers;
  }

  public int firstMoeLayer() {
    return firstMoeLayer;
  }

  /** Routed experts per layer. */
  public int experts() {
    return experts;
  }

  public int sharedExperts() {
    return sharedExperts;
  }

  public int topK() {
    return topK;
  }

  public int hiddenSize() {
    return hiddenSize;
  }

  public int moeIntermediateSize() {
    return moeIntermediateSize;
  }

  public int tokens() {
    return tokens;
  }

  public SlotOrder slotOrder() {
    return slotOrder;
  }

  /** 1 for uint8 ids, 2 for uint16. */
  public int idBytes() {
    return idBytes;
  }

  /** The expert chosen by token t at MoE layer l in slot k. */
  public int id(int t, int l, int k) {
    int i = (t * layers + l) * topK + k;
    return idBytes == 1 ? ids.get(i) & 0xff : ids.getShort(2 * i) & 0xffff;
  }

  /** Copies token t's top-k ids at layer l into out[off, off + topK). */
  public void ids(int t, int l, int[] out, int off) {
    int base = (t * layers + l) * topK;
    for (int k = 0; k < topK; k++) {
      int i = base + k;
      out[off + k] = idBytes == 1 ? ids.get(i) & 0xff : ids.getShort(2 * i) & 0xffff;
    }
  }

  public boolean hasWeights() {
    return weights != null;
  }

  public boolean hasScores() {
    return scores != null;
  }

  public boolean hasPredicted() {
    return predicted != null;
  }

  /** Look-ahead depth of the predicted array (0 when absent). */
  public int predictedDepth() {
    return predictedDepth;
  }

  /**
   * The routing weight of slot k; where the trace has none, 1/topK (every chosen expert weighted
   * equally: the approximation ALGORITHMS.md section 6 allows, stated here).
   */
  public float weight(int t, int l, int k) {
    if (weights == null) {
      return 1f / topK;
    }
    return weights.getFloat(4 * ((t * layers + l) * topK + k));
  }

  /**
   * The routing probability of expert e at (t, l); where the trace has no scores, the chosen
   * experts' routing weights (a trace with real gate weights, such as the Mixtral one), else 1/topK
   * on the chosen experts, and 0 elsewhere (the approximations MRS uses on traces without scores).
   */
  public float score(int t, int l, int e) {
    if (scores != null) {
      return scores.getFloat(4 * ((t * layers + l) * experts + e));
    }
    int base = (t * layers + l) * topK;
    for (int k = 0; k < topK; k++) {
      int i = base + k;
      int id = idBytes == 1 ? ids.get(i) & 0xff : ids.getShort(2 * i) & 0xffff;
      if (id == e) {
        return weights != null ? weights.getFloat(4 * i) : 1f / topK;
      }
    }
    return 0f;
  }

  /** The id predicted at layer l for layer l + d (d in 1..depth), slot k. */
  public int predicted(int t, int l, int d, int k) {
    if (predicted == null) {
      throw new IllegalStateException("trace has no predicted array");
    }
    int i = ((t * layers + l) * predictedDepth + (d - 1)) * topK + k;
    return idBytes == 1 ? predicted.get(i) & 0xff : predicted.getShort(2 * i) & 0xffff;
  }

  public int sequenceCount() {
    return sequences.length;
  }

  public Sequence sequence(int i) {
    return sequences[i];
  }

  /** Raw ids (read-only view), for the writer. */
  ByteBuffer idsBuffer() {
    return ids.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN).position(0);
  }

  ByteBuffer weightsBuffer() {
    return weights == null ? null : weights.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  ByteBuffer scoresBuffer() {
    return scores == null ? null : scores.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  ByteBuffer predictedBuffer() {
    return predicted == null ? null : predicted.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  @Override
  public String toString() {
    return String.format(
        "Trace[%s: %d tokens, %d layers, %d experts, top-%d, %d sequences]",
        model, tokens, layers, experts, topK, sequences.length);
  }
}
