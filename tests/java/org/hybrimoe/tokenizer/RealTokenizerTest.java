package org.hybrimoe.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Real tokenizers (Qwen2.5 and DeepSeek-V3 byte-level BPE, Llama 2 SentencePiece BPE with byte
 * fallback, structured as Mixtral's), pruned to what the test corpus needs, against the
 * encodings and decodings HuggingFace tokenizers (Rust) produced on the full files
 * (tests/data/tokenizer, made by tests/tokenizer-oracle/generate.mjs; see
 * tests/data/tokenizer/PROVENANCE.md).
 */
class RealTokenizerTest {
  static final ObjectMapper JSON = new ObjectMapper();

  record Case(String text, int[] ids, int[] idsWithSpecial, String decoded, String decodedSkipSpecial) {}

  record DecodeCase(int[] ids, String text, String textSkipSpecial) {}

  record Expected(List<Case> cases, List<DecodeCase> decodes) {}

  static Path dir(String name) {
    try {
      return Path.of(RealTokenizerTest.class.getResource("/tokenizer/" + name).toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  static Tokenizer load(String name) throws IOException {
    return Tokenizer.load(dir(name));
  }

  static Expected expected(String name) throws IOException {
    JsonNode root = JSON.readTree(dir(name).resolve("expected.json").toFile());
    List<Case> cases = new ArrayList<>();
    for (JsonNode c : root.get("cases")) {
      cases.add(new Case(c.get("text").asText(), ints(c.get("ids")), ints(c.get("idsWithSpecial")),
          c.get("decoded").asText(), c.get("decodedSkipSpecial").asText()));
    }
    List<DecodeCase> decodes = new ArrayList<>();
    for (JsonNode d : root.get("decodes")) {
      decodes.add(new DecodeCase(ints(d.get("ids")), d.get("text").asText(), d.get("textSkipSpecial").asText()));
    }
    return new Expected(cases, decodes);
  }

  static int[] ints(JsonNode a) {
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = a.get(i).asInt();
    }
    return out;
  }

  static String show(String s) {
    StringBuilder b = new StringBuilder("\"");
    s.codePoints().forEach(c -> {
      if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0) || c == 0xFFFD || Character.getType(c) == Character.FORMAT) {
        b.append(String.format("\\u%04X", c));
      } else {
        b.appendCodePoint(c);
      }
    });
    return b.append('"').toString();
  }

  @ParameterizedTest
  @ValueSource(strings = {"qwen2_5", "deepseek_v3", "llama2"})
  void encodeMatchesHuggingFace(String name) throws IOException {
    checkEncode(name);
  }

  static void checkEncode(String name) throws IOException {
    Tokenizer t = load(name);
    List<String> bad = new ArrayList<>();
    for (Case c : expected(name).cases()) {
      int[] plain = t.encode(c.text(), false);
      int[] special = t.encode(c.text(), true);
      if (!java.util.Arrays.equals(plain, c.ids())) {
        bad.add(show(c.text()) + "\n   want " + java.util.Arrays.toString(c.ids()) + "\n   got  " + java.util.Arrays.toString(plain));
      }
      if (!java.util.Arrays.equals(special, c.idsWithSpecial())) {
        bad.add(show(c.text()) + " (special)\n   want " + java.util.Arrays.toString(c.idsWithSpecial())
            + "\n   got  " + java.util.Arrays.toString(special));
      }
    }
    assertTrue(bad.isEmpty(), name + ": " + bad.size() + " encodings differ:\n" + String.join("\n", bad));
  }

  @ParameterizedTest
  @ValueSource(strings = {"qwen2_5", "deepseek_v3", "llama2"})
  void decodeMatchesHuggingFace(String name) throws IOException {
    checkDecode(name);
  }

  static void checkDecode(String name) throws IOException {
    Tokenizer t = load(name);
    Expected e = expected(name);
    List<String> bad = new ArrayList<>();
    for (Case c : e.cases()) {
      check(bad, c.idsWithSpecial(), c.decoded(), t.decode(c.idsWithSpecial(), false));
      check(bad, c.idsWithSpecial(), c.decodedSkipSpecial(), t.decode(c.idsWithSpecial(), true));
    }
    for (DecodeCase d : e.decodes()) {
      check(bad, d.ids(), d.text(), t.decode(d.ids(), false));
      check(bad, d.ids(), d.textSkipSpecial(), t.decode(d.ids(), true));
    }
    assertTrue(bad.isEmpty(), name + ": " + bad.size() + " decodings differ:\n" + String.join("\n", bad));
  }

  private static void check(List<String> bad, int[] ids, String want, String got) {
    if (!want.equals(got)) {
      bad.add(java.util.Arrays.toString(ids) + "\n   want " + show(want) + "\n   got  " + show(got));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"qwen2_5", "deepseek_v3", "llama2"})
  void streamDecoderConcatenatesToDecodeAndEmitsWholeCharacters(String name) throws IOException {
    checkStream(name);
  }

  static void checkStream(String name) throws IOException {
    Tokenizer t = load(name);
    Expected e = expected(name);
    List<int[]> all = new ArrayList<>();
    e.cases().forEach(c -> all.add(c.idsWithSpecial()));
    e.decodes().forEach(d -> all.add(d.ids()));
    for (int[] ids : all) {
      for (boolean skip : new boolean[] {false, true}) {
        String whole = t.decode(ids, skip);
        StreamDecoder s = t.streamDecoder(skip);
        StringBuilder got = new StringBuilder();
        for (int id : ids) {
          String piece = s.next(id);
          assertFalse(!piece.isEmpty() && Character.isHighSurrogate(piece.charAt(piece.length() - 1)),
              "half a surrogate pair emitted for " + java.util.Arrays.toString(ids));
          if (!whole.contains("\uFFFD")) {
            assertFalse(piece.contains("\uFFFD"), "an incomplete character was emitted for " + java.util.Arrays.toString(ids));
          }
          got.append(piece);
        }
        got.append(s.flush());
        assertEquals(whole, got.toString(), "stream vs decode for " + java.util.Arrays.toString(ids));
        // After flush the decoder starts afresh.
        StringBuilder again = new StringBuilder();
        for (int id : ids) {
          again.append(s.next(id));
        }
        again.append(s.flush());
        assertEquals(whole, again.toString());
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"qwen2_5", "deepseek_v3"})
  void byteLevelEncodeOfDecodeRoundTrips(String name) throws IOException {
    Tokenizer t = load(name);
    for (Case c : expected(name).cases()) {
      assertArrayEquals(c.ids(), t.encode(t.decode(c.ids(), false), false), show(c.text()));
    }
  }

  @Test
  void qwenSpecialTokensInTextBecomeTheirIds() throws IOException {
    Tokenizer t = load("qwen2_5");
    int start = t.tokenId("<|im_start|>").getAsInt();
    int end = t.tokenId("<|im_end|>").getAsInt();
    assertEquals(151644, start);
    assertEquals(151645, end);
    int[] ids = t.encode("<|im_start|>user\nhi<|im_end|>", true);
    assertEquals(start, ids[0]);
    assertEquals(end, ids[ids.length - 1]);
    assertTrue(t.isSpecial(start));
    assertFalse(t.isSpecial(ids[1]));
    assertEquals("user\nhi", t.decode(ids, true));
    assertEquals(OptionalInt.empty(), t.bosId());
    assertEquals(Set.of(end), t.eosIds());
    assertEquals(0, t.specialAffixes()[0].length, "Qwen adds no BOS");
  }

  @Test
  void deepSeekAddsBosFromItsConfigAndMatchesNormalizedAddedTokens() throws IOException {
    Tokenizer t = load("deepseek_v3");
    assertEquals(OptionalInt.of(0), t.bosId());
    assertEquals(Set.of(1), t.eosIds());
    int[] ids = t.encode("hi", true);
    assertEquals(0, ids[0], "add_bos_token: true in tokenizer_config.json");
    assertEquals(ids.length - 1, t.encode("hi", false).length);
    // <｜User｜> is a normalized, non-special added token: matched, but kept when skipping specials.
    int user = t.tokenId("<｜User｜>").getAsInt();
    int[] chat = t.encode("<｜User｜>hello", false);
    assertEquals(user, chat[0]);
    assertFalse(t.isSpecial(user));
    assertEquals("<｜User｜>hello", t.decode(chat, true));
  }

  @Test
  void llamaAddsBosAndFallsBackToBytes() throws IOException {
    Tokenizer t = load("llama2");
    assertEquals(OptionalInt.of(1), t.bosId());
    assertEquals(Set.of(2), t.eosIds());
    int[] ids = t.encode("𝔘", true);
    assertEquals(1, ids[0]);
    // U+1D518 is not in the vocabulary: "▁" then its four UTF-8 bytes as <0xNN> tokens.
    assertEquals(List.of("▁", "<0xF0>", "<0x9D>", "<0x94>", "<0x98>"),
        java.util.Arrays.stream(ids).skip(1).mapToObj(t::token).toList());
    assertEquals("𝔘", t.decode(ids, true));
    StreamDecoder s = t.streamDecoder(true);
    StringBuilder seen = new StringBuilder();
    for (int id : ids) {
      String piece = s.next(id);
      assertFalse(piece.contains("\uFFFD"));
      seen.append(piece);
    }
    assertEquals("", seen.toString(), "a byte run is held until it ends");
    assertEquals("𝔘", s.flush());
  }

  @Test
  void idsAreSparseAndVocabSizeIsMaxIdPlusOne() throws IOException {
    Tokenizer t = load("qwen2_5");
    // The pruned vocabulary keeps the original ids: most ids below the largest have no token.
    assertEquals(151665, t.vocabSize());
    assertEquals("<|im_end|>", t.token(151645));
    int gap = -1;
    for (int id = 300; id < 151643 && gap < 0; id++) {
      try {
        t.token(id);
      } catch (IllegalArgumentException e) {
        gap = id;
      }
    }
    assertTrue(gap > 0);
    int g = gap;
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.token(g));
    assertTrue(e.getMessage().contains(Integer.toString(g)), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> t.token(-1));
    assertThrows(IllegalArgumentException.class, () -> t.token(t.vocabSize()));
    // decode skips ids without a token (unused embedding rows), as HuggingFace does.
    int hi = t.encode("hi", false)[0];
    assertEquals("hihi", t.decode(new int[] {hi, gap, hi, t.vocabSize() + 5}, false));
    assertEquals(OptionalInt.empty(), t.tokenId("no such token here"));
  }

  @Test
  void chatTemplateContextCarriesMessagesAndSpecialTokens() throws IOException {
    Tokenizer q = load("qwen2_5");
    assertTrue(q.hasChatTemplate());
    assertTrue(q.chatTemplateSource().contains("<|im_start|>"));
    Map<String, Object> ctx = q.chatContext(List.of(ChatMessage.system("be brief"), ChatMessage.user("hi")), true);
    assertEquals(List.of(Map.of("role", "system", "content", "be brief"), Map.of("role", "user", "content", "hi")),
        ctx.get("messages"));
    assertEquals(Boolean.TRUE, ctx.get("add_generation_prompt"));
    assertEquals("", ctx.get("bos_token"), "Qwen has no BOS");
    assertEquals("<|im_end|>", ctx.get("eos_token"));

    Tokenizer d = load("deepseek_v3");
    Map<String, Object> dctx = d.chatContext(List.of(ChatMessage.user("x")), false);
    assertEquals("<｜begin▁of▁sentence｜>", dctx.get("bos_token"));
    assertEquals(Boolean.FALSE, dctx.get("add_generation_prompt"));

    Tokenizer l = load("llama2");
    assertFalse(l.hasChatTemplate());
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> l.applyChatTemplate(List.of(ChatMessage.user("hi")), true));
    assertTrue(e.getMessage().contains("chat_template"), e.getMessage());
  }
}
