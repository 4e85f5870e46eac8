package org.hybrimoe.sim;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.hybrimoe.model.RoutingSink;

/**
 * Records a model's routing as it runs (generate --trace) and writes it as a moe-routing-trace/1
 * directory (ALGORITHMS.md section 6) that {@link TraceReader} and simulate read: for every token
 * and MoE layer the chosen experts in rank order, their weights, every expert's routing
 * probability, and the look-ahead's predictions for the next {@code depth} MoE layers (where a
 * later layer exists; past the last the prediction repeats the true routing of the source layer,
 * never read by the simulator, which looks ahead within a token only). Tokens are appended per
 * forward step (a prompt, then one step per generated token); {@link #beginSequence} starts a new
 * sequence (one per request). Not thread-safe: one model's thread.
 */
public final class TraceRecorder implements RoutingSink {
  private final String model;
  private final int depth;
  private int[] moeLayers;
  private int experts;
  private int dModel;
  private int dFf;
  private int shared;
  private int topK;
  // One forward step being assembled: per MoE layer its call's arrays (null until called).
  private int stepTokens;
  private int[][] stepIds;
  private float[][] stepWeights;
  private float[][] stepScores;
  private int[][][] stepPredicted;
  // Finished tokens: per token, per layer, flattened in trace order.
  private final List<int[]> ids = new ArrayList<>(); // [layers * topK] per token
  private final List<float[]> weights = new ArrayList<>();
  private final List<float[]> scores = new ArrayList<>(); // [layers * experts] per token, or none
  private final List<int[]> predicted = new ArrayList<>(); // [layers * depth * topK] per token
  private boolean allScores = true;
  private final List<Trace.Sequence> sequences = new ArrayList<>();
  private int sequenceStart = 0;

  /** @param depth look-ahead depth recorded (the executor's, {@code RecordingExecutor}) */
  public TraceRecorder(String model, int depth) {
    if (depth < 0) {
      throw new IllegalArgumentException("look-ahead depth must be >= 0, got " + depth);
    }
    this.model = model;
    this.depth = depth;
  }

  @Override
  public void model(int[] moeDecoderLayers, int experts, int dModel, int dFf, int sharedExperts) {
    if (moeDecoderLayers.length == 0) {
      throw new IllegalArgumentException("a routing trace needs at least one MoE layer");
    }
    if (experts > 65536) {
      throw new IllegalArgumentException("a routing trace holds ids up to 65535; this model has " + experts + " experts");
    }
    this.moeLayers = moeDecoderLayers.clone();
    this.experts = experts;
    this.dModel = dModel;
    this.dFf = dFf;
    this.shared = sharedExperts;
    int l = moeLayers.length;
    stepIds = new int[l][];
    stepWeights = new float[l][];
    stepScores = new float[l][];
    stepPredicted = new int[l][][];
  }

  @Override
  public void layer(int moeLayer, int nTokens, int topK, int[] ids, float[] weights, float[] scores, int[][] pred) {
    if (moeLayers == null) {
      throw new IllegalStateException("model() was not called");
    }
    if (this.topK == 0) {
      this.topK = topK;
    } else if (topK != this.topK) {
      throw new IllegalArgumentException("top-k changed from " + this.topK + " to " + topK);
    }
    if (moeLayer == 0) {
      finishStep();
      stepTokens = nTokens;
    } else if (nTokens != stepTokens || stepIds[moeLayer - 1] == null) {
      throw new IllegalStateException("MoE layer " + moeLayer + " called out of forward order (" + nTokens
          + " tokens, step of " + stepTokens + ")");
    }
    stepIds[moeLayer] = ids;
    stepWeights[moeLayer] = weights;
    stepScores[moeLayer] = scores;
    stepPredicted[moeLayer] = pred;
  }

  /** Ends the current sequence (request) and starts another; empty sequences are dropped. */
  public void beginSequence() {
    finishStep();
    if (ids.size() > sequenceStart) {
      sequences.add(new Trace.Sequence(sequenceStart, ids.size() - sequenceStart));
    }
    sequenceStart = ids.size();
  }

  // Moves a complete step's tokens into the finished lists; an incomplete one is dropped (a
  // forward pass that failed midway).
  private void finishStep() {
    if (moeLayers == null || stepTokens == 0) {
      return;
    }
    int l = moeLayers.length;
    boolean complete = true;
    for (int m = 0; m < l; m++) {
      complete &= stepIds[m] != null;
    }
    if (complete) {
      for (int t = 0; t < stepTokens; t++) {
        int[] id = new int[l * topK];
        float[] w = new float[l * topK];
        float[] sc = new float[l * experts];
        int[] p = new int[l * depth * topK];
        for (int m = 0; m < l; m++) {
          System.arraycopy(stepIds[m], t * topK, id, m * topK, topK);
          System.arraycopy(stepWeights[m], t * topK, w, m * topK, topK);
          if (stepScores[m] != null) {
            System.arraycopy(stepScores[m], t * experts, sc, m * experts, experts);
          } else {
            allScores = false;
          }
          for (int d = 0; d < depth; d++) {
            int[] row = stepPredicted[m] == null || d >= stepPredicted[m].length ? null : stepPredicted[m][d];
            for (int k = 0; k < topK; k++) {
              // past the last MoE layer (or no look-ahead): the source layer's own choice, a filler
              p[(m * depth + d) * topK + k] = row != null ? row[t * topK + k] : stepIds[m][t * topK + k];
            }
          }
        }
        ids.add(id);
        weights.add(w);
        scores.add(sc);
        predicted.add(p);
      }
    }
    java.util.Arrays.fill(stepIds, null);
    java.util.Arrays.fill(stepWeights, null);
    java.util.Arrays.fill(stepScores, null);
    java.util.Arrays.fill(stepPredicted, null);
    stepTokens = 0;
  }

  /** Tokens recorded so far (complete forward steps). */
  public int tokens() {
    finishStep();
    return ids.size();
  }

  /** The trace so far, in memory. */
  public Trace trace() {
    beginSequence();
    int n = ids.size();
    if (n == 0) {
      throw new IllegalStateException("no token was routed: nothing to write");
    }
    int l = moeLayers.length;
    int idBytes = experts <= 256 ? 1 : 2;
    ByteBuffer idBuf = ByteBuffer.allocate(n * l * topK * idBytes).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer wBuf = ByteBuffer.allocate(n * l * topK * 4).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer sBuf = allScores ? ByteBuffer.allocate(n * l * experts * 4).order(ByteOrder.LITTLE_ENDIAN) : null;
    ByteBuffer pBuf = depth > 0 ? ByteBuffer.allocate(n * l * depth * topK * idBytes).order(ByteOrder.LITTLE_ENDIAN)
        : null;
    for (int t = 0; t < n; t++) {
      for (int v : ids.get(t)) {
        putId(idBuf, v, idBytes);
      }
      for (float v : weights.get(t)) {
        wBuf.putFloat(v);
      }
      if (sBuf != null) {
        for (float v : scores.get(t)) {
          sBuf.putFloat(v);
        }
      }
      if (pBuf != null) {
        for (int v : predicted.get(t)) {
          putId(pBuf, v, idBytes);
        }
      }
    }
    return new Trace(model, l, moeLayers[0], experts, shared, topK, dModel, dFf, n, Trace.SlotOrder.RANK, idBytes,
        idBuf.flip(), wBuf.flip(), sBuf == null ? null : sBuf.flip(), pBuf == null ? null : pBuf.flip(),
        depth, sequences.toArray(new Trace.Sequence[0]));
  }

  private static void putId(ByteBuffer b, int v, int bytes) {
    if (v < 0 || v >= 1 << (8 * bytes)) {
      throw new IllegalArgumentException("expert id " + v + " does not fit the trace's ids");
    }
    if (bytes == 1) {
      b.put((byte) v);
    } else {
      b.putShort((short) v);
    }
  }

  /** Writes the trace so far into dir (trace.json and its arrays). */
  public void write(Path dir) throws IOException {
    TraceWriter.write(trace(), dir);
  }
}
