package org.hybrimoe.tokenizer;

/**
 * A tokenizer.json or tokenizer_config.json that cannot be used: malformed JSON, a missing or
 * ill-typed field, a component this package does not implement (a WordPiece model, say), or data
 * that contradicts itself (a merge of tokens the vocabulary lacks, two tokens with one id). The
 * message names the file and the JSON field at fault, e.g. {@code tokenizer.json: field
 * 'model.merges[17]' ...}.
 *
 * <p>Unchecked, like {@code ModelFormatException}, so that {@link Tokenizer#fromJson} (which
 * reads no file) needs no throws clause; {@link Tokenizer#load} still declares {@code IOException}
 * for files that cannot be read.
 */
public final class TokenizerFormatException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public TokenizerFormatException(String message) {
    super(message);
  }

  public TokenizerFormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
