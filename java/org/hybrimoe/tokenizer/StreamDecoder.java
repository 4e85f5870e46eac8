package org.hybrimoe.tokenizer;

/**
 * Incremental detokenization for generation: feed ids one at a time and print what comes back.
 * {@link #next} returns the text this id completed, "" while it is still incomplete (a UTF-8
 * sequence split across byte-level tokens, a run of SentencePiece {@code <0xNN>} byte tokens, a
 * space the decoder may still strip). Concatenating every {@code next} result and the final
 * {@link #flush} equals {@link Tokenizer#decode} of all the ids. Not thread-safe: one per stream.
 */
public interface StreamDecoder {
  /** Adds one id; returns the text it completed (never null). */
  String next(int id);

  /** Returns whatever is still held (an incomplete byte sequence decodes to U+FFFD) and resets the decoder for a new stream. */
  String flush();
}
