package org.hybrimoe.tokenizer;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Incremental UTF-8 to UTF-16 decoding with lossy replacement, fed a few bytes at a time. Each
 * maximal ill-formed subsequence becomes one U+FFFD (the Unicode/WHATWG practice, which Rust's
 * {@code String::from_utf8_lossy} and JavaScript's TextDecoder follow), so decoding in pieces
 * gives exactly what decoding everything at once gives. Holds at most 3 bytes of an incomplete
 * sequence. Not thread-safe.
 */
final class Utf8Stream {
  private int cp; // code point bits so far
  private int need; // continuation bytes still expected
  private int lower = 0x80; // allowed range of the next continuation byte
  private int upper = 0xBF;

  /** Decodes bytes[from, to) into out; an incomplete trailing sequence is held. */
  void feed(byte[] bytes, int from, int to, StringBuilder out) {
    for (int i = from; i < to; i++) {
      int b = bytes[i] & 0xFF;
      if (need == 0) {
        if (b < 0x80) {
          out.append((char) b);
        } else if (b >= 0xC2 && b <= 0xDF) {
          start(b & 0x1F, 1, 0x80, 0xBF);
        } else if (b >= 0xE0 && b <= 0xEF) {
          start(b & 0x0F, 2, b == 0xE0 ? 0xA0 : 0x80, b == 0xED ? 0x9F : 0xBF);
        } else if (b >= 0xF0 && b <= 0xF4) {
          start(b & 0x07, 3, b == 0xF0 ? 0x90 : 0x80, b == 0xF4 ? 0x8F : 0xBF);
        } else {
          out.append('\uFFFD');
        }
        continue;
      }
      if (b < lower || b > upper) {
        // The pending prefix is a maximal ill-formed subsequence; b starts afresh.
        reset();
        out.append('\uFFFD');
        i--;
        continue;
      }
      lower = 0x80;
      upper = 0xBF;
      cp = (cp << 6) | (b & 0x3F);
      if (--need == 0) {
        out.appendCodePoint(cp);
        reset();
      }
    }
  }

  /** True while part of a sequence is held. */
  boolean pending() {
    return need > 0;
  }

  /** Ends the input: a held incomplete sequence becomes U+FFFD. */
  void finish(StringBuilder out) {
    if (need > 0) {
      out.append('\uFFFD');
    }
    reset();
  }

  private void start(int bits, int more, int lo, int hi) {
    cp = bits;
    need = more;
    lower = lo;
    upper = hi;
  }

  private void reset() {
    cp = 0;
    need = 0;
    lower = 0x80;
    upper = 0xBF;
  }

  /** Decodes bytes strictly: null when they are not valid UTF-8. */
  static String strict(byte[] bytes, int n) {
    try {
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes, 0, n))
          .toString();
    } catch (CharacterCodingException e) {
      return null;
    }
  }
}
