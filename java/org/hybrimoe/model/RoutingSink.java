package org.hybrimoe.model;

/**
 * Receives every MoE layer call's routing as the model makes it, for recording (generate --trace):
 * the experts chosen, their weights, every expert's routing probability, and what the model's
 * look-ahead predicted for the next MoE layers from this layer's router input. Calls come on the
 * thread running the model, in forward order.
 */
public interface RoutingSink {
  /**
   * The model's MoE shape, once, when the executor is created.
   *
   * @param moeDecoderLayers the decoder layer index of each MoE layer, ascending
   */
  void model(int[] moeDecoderLayers, int experts, int dModel, int dFf, int sharedExperts);

  /**
   * One MoE layer call over nTokens tokens.
   *
   * @param moeLayer index into moeDecoderLayers
   * @param ids [nTokens * topK] chosen experts
   * @param weights [nTokens * topK] their routing weights
   * @param scores [nTokens * experts] routing probabilities, or null when the model gave none
   * @param predicted [depth][nTokens * topK]: row d-1 the experts the look-ahead predicts for MoE
   *     layer moeLayer + d from this call's input; null rows past the last MoE layer or without a
   *     look-ahead
   */
  void layer(int moeLayer, int nTokens, int topK, int[] ids, float[] weights, float[] scores, int[][] predicted);
}
