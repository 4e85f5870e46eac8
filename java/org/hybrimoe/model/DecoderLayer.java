package org.hybrimoe.model;

import java.nio.FloatBuffer;

/**
 * One pre-norm decoder layer: h += attn(rmsnorm(h, norm1)); h += ffn(rmsnorm(h, norm2)).
 *
 * @param norm1 [d] input_layernorm weight (f32)
 * @param norm2 [d] post_attention_layernorm weight (f32)
 */
public record DecoderLayer(FloatBuffer norm1, Attention attention, FloatBuffer norm2, FeedForward ffn) {}
