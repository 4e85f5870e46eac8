package org.hybrimoe.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * GPT-2's byte-to-character alphabet: each of the 256 byte values is written as one printable
 * character (printable Latin-1 bytes as themselves, the rest as U+0100 upward), so byte-level
 * BPE tokens are strings of these characters. Static tables, thread-safe.
 */
final class ByteLevel {
  private ByteLevel() {}

  /** byte value -> its character. */
  static final char[] BYTE_TO_CHAR = new char[256];
  /** character -> byte value, -1 when the character is not in the alphabet (index < 512). */
  private static final short[] CHAR_TO_BYTE = new short[512];

  static {
    java.util.Arrays.fill(CHAR_TO_BYTE, (short) -1);
    int extra = 0;
    for (int b = 0; b < 256; b++) {
      boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char c = printable ? (char) b : (char) (256 + extra++);
      BYTE_TO_CHAR[b] = c;
      CHAR_TO_BYTE[c] = (short) b;
    }
  }

  /** The byte a character stands for, or -1. */
  static int byteOf(int ch) {
    return ch >= 0 && ch < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[ch] : -1;
  }

  /** Writes the UTF-8 bytes of s in the byte alphabet. */
  static String encode(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    char[] out = new char[b.length];
    for (int i = 0; i < b.length; i++) {
      out[i] = BYTE_TO_CHAR[b[i] & 0xFF];
    }
    return new String(out);
  }

  /**
   * The bytes a token stands for: each character's byte, or, when some character is outside the
   * alphabet (an added token such as DeepSeek's full-width markers), the token's own UTF-8 bytes
   * (what HuggingFace's ByteLevel decoder does).
   */
  static byte[] bytesOf(String token) {
    byte[] out = new byte[token.length()];
    for (int i = 0; i < token.length(); i++) {
      int b = byteOf(token.charAt(i));
      if (b < 0) {
        return token.getBytes(StandardCharsets.UTF_8);
      }
      out[i] = (byte) b;
    }
    return out;
  }
}
