package org.hybrimoe.model;

/**
 * A MoE layer's shared expert as the model offers it to its executor
 * ({@link MoeExecutorFactory#create(org.hybrimoe.nativeapi.Engine, java.util.Map, java.util.Map,
 * LoadOptions)}): the SwiGLU MLP every token goes through (DeepSeek's n_shared_experts merged into
 * one), and Qwen2-MoE's per-token gate, whose sigmoid scales the MLP's output.
 *
 * @param mlp the shared expert, weights borrowed from the checkpoint
 * @param gate [1, d] shared_expert_gate, or null (added as is)
 */
public record SharedExpert(DenseMlp mlp, Linear gate) {}
