package org.hybrimoe.model;

import java.nio.IntBuffer;
import org.hybrimoe.nativeapi.Engine;
import org.hybrimoe.ops.KvCache;

/**
 * What a forward step's sublayers share: the engine, the session's KV cache, the MoE executor
 * and the absolute positions [n] of the step's tokens.
 */
public record ForwardContext(Engine engine, KvCache cache, MoeLayerExecutor experts, IntBuffer positions) {}
