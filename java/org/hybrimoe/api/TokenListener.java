package org.hybrimoe.api;

/**
 * Receives a generation's tokens as they are produced (on the calling thread, outside the model's
 * lock, so it may be slow or start another request). {@code text} is the text this token
 * completes: empty while a multi-byte character is incomplete or while it could be the start of a
 * stop string; the pieces concatenate to the result's text.
 */
@FunctionalInterface
public interface TokenListener {
  void onToken(GeneratedToken token);
}
