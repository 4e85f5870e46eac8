package org.hybrimoe.api;

/** Why a generation ended. */
public enum FinishReason {
  /** The model produced an end-of-sequence token (included in the ids, not in the text). */
  EOS,
  /** The text reached one of the request's stop strings (cut before it). */
  STOP_STRING,
  /** The request's maximum number of new tokens was generated. */
  MAX_TOKENS,
  /** The sequence filled the model's context (the request's or the model's limit). */
  CONTEXT_LIMIT,
  /** The caller closed a {@link TokenStream} before it ended. */
  CANCELLED
}
