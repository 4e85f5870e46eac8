package org.hybrimoe.tokenizer;

import java.io.IOException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Small hand-written tokenizers for the components the real files do not use (Metaspace with
 * prepend_scheme "first" and the legacy add_prefix_space, added tokens with lstrip, rstrip,
 * single_word and normalized, fuse_unk, ignore_merges, Digits, ByteLevel with its regex and
 * prefix space, every Split behaviour and invert, NFKC/NFD/StripAccents/Lowercase/Replace/Strip/
 * Prepend normalizers, RobertaProcessing, Strip and Replace decoders after Fuse, no decoder),
 * against HuggingFace tokenizers (Rust); see tests/data/tokenizer/PROVENANCE.md.
 */
class SyntheticTokenizerTest {
  @ParameterizedTest
  @ValueSource(strings = {"synthetic_metaspace", "synthetic_gpt2", "synthetic_splits", "synthetic_bytefallback"})
  void encodeMatchesHuggingFace(String name) throws IOException {
    RealTokenizerTest.checkEncode(name);
  }

  @ParameterizedTest
  @ValueSource(strings = {"synthetic_metaspace", "synthetic_gpt2", "synthetic_splits", "synthetic_bytefallback"})
  void decodeMatchesHuggingFace(String name) throws IOException {
    RealTokenizerTest.checkDecode(name);
  }

  @ParameterizedTest
  @ValueSource(strings = {"synthetic_metaspace", "synthetic_gpt2", "synthetic_splits", "synthetic_bytefallback"})
  void streamDecoderConcatenatesToDecode(String name) throws IOException {
    RealTokenizerTest.checkStream(name);
  }
}
