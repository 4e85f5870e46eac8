package org.hybrimoe.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalInt;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The byte-level tokenizer written for random-weight models (make-model). */
class TokenizerMakerTest {
  @TempDir Path tmp;

  Tokenizer make(int vocabSize) throws IOException {
    Path dir = tmp.resolve("v" + vocabSize);
    TokenizerMaker.writeByteLevel(dir, vocabSize);
    return Tokenizer.load(dir);
  }

  @Test
  void specialTokensSitAtTheTopAndEosIsImEnd() throws IOException {
    Tokenizer t = make(4096);
    assertEquals(4096, t.vocabSize());
    assertEquals(OptionalInt.of(4093), t.tokenId("<|endoftext|>"));
    assertEquals(OptionalInt.of(4094), t.tokenId("<|im_start|>"));
    assertEquals(OptionalInt.of(4095), t.tokenId("<|im_end|>"));
    assertTrue(t.isSpecial(4095));
    assertEquals(Set.of(4095), t.eosIds());
    assertEquals(OptionalInt.empty(), t.bosId());
    assertTrue(t.hasChatTemplate());
    assertEquals(TokenizerMaker.CHATML_TEMPLATE, t.chatTemplateSource());
    int[] ids = t.encode("<|im_start|>user\nhi<|im_end|>", true);
    assertEquals(4094, ids[0], "no BOS, and the marker is one token");
    assertEquals(4095, ids[ids.length - 1]);
    assertEquals("user\nhi", t.decode(ids, true));
  }

  @Test
  void anyTextRoundTripsExactlyWithIdsBelowVocabSize() throws IOException {
    for (int vocab : new int[] {259, 1000, 32000}) {
      Tokenizer t = make(vocab);
      Random r = new Random(7 + vocab);
      for (int n = 0; n < 300; n++) {
        String s = randomText(r);
        int[] ids = t.encode(s, false);
        for (int id : ids) {
          assertTrue(id >= 0 && id < vocab, "id " + id + " of vocab " + vocab);
        }
        assertEquals(s, t.decode(ids, false));
        StreamDecoder sd = t.streamDecoder(false);
        StringBuilder b = new StringBuilder();
        for (int id : ids) {
          b.append(sd.next(id));
        }
        assertEquals(s, b.append(sd.flush()).toString());
      }
    }
  }

  // Random code points from every plane (no lone surrogates), spaces, newlines and markers.
  static String randomText(Random r) {
    StringBuilder b = new StringBuilder();
    int n = r.nextInt(30);
    for (int i = 0; i < n; i++) {
      switch (r.nextInt(8)) {
        case 0 -> b.append(' ');
        case 1 -> b.append(r.nextBoolean() ? "\n" : "\t");
        case 2 -> b.append("the ");
        case 3 -> b.append(r.nextBoolean() ? "<|im_end|>" : "<|im_start|>");
        case 4 -> b.append((char) ('a' + r.nextInt(26)));
        default -> {
          int cp;
          do {
            cp = r.nextInt(3) == 0 ? r.nextInt(0x110000) : r.nextInt(0x3000);
          } while (cp >= 0xD800 && cp <= 0xDFFF);
          b.appendCodePoint(cp);
        }
      }
    }
    return b.toString();
  }

  @Test
  void mergesAreLearnedFromEnglish() throws IOException {
    Tokenizer t = make(4096);
    assertEquals(1, t.encode("the", false).length);
    assertEquals(1, t.encode(" model", false).length);
    assertTrue(t.encode("The model writes one word after another.", false).length <= 10);
    // 259: bytes only.
    Tokenizer bytes = make(259);
    assertEquals(3, bytes.encode("abc", false).length);
    assertEquals(4, bytes.encode("🤖", false).length);
  }

  @Test
  void aLargeVocabularyLeavesUnusedIdsBelowTheSpecials() throws IOException {
    Path dir = tmp.resolve("big");
    TokenizerMaker.writeByteLevel(dir, 32000);
    JsonNode vocab = new ObjectMapper().readTree(dir.resolve("tokenizer.json").toFile()).get("model").get("vocab");
    int max = 0;
    for (JsonNode id : vocab) {
      max = Math.max(max, id.asInt());
    }
    assertEquals(vocab.size() - 1, max, "learned ids are dense from 0");
    assertTrue(vocab.size() > 256 && vocab.size() < 32000 - 3, "the built-in text cannot fill 32000: " + vocab.size());
    assertEquals(32000, Tokenizer.load(dir).vocabSize());
  }

  @Test
  void outputIsDeterministic() throws IOException {
    TokenizerMaker.writeByteLevel(tmp.resolve("a"), 2000);
    TokenizerMaker.writeByteLevel(tmp.resolve("b"), 2000);
    for (String f : new String[] {"tokenizer.json", "tokenizer_config.json"}) {
      assertArrayEquals(Files.readAllBytes(tmp.resolve("a").resolve(f)), Files.readAllBytes(tmp.resolve("b").resolve(f)), f);
    }
  }

  @Test
  void vocabularyBelow259IsRejected() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TokenizerMaker.writeByteLevel(tmp.resolve("x"), 258));
    assertTrue(e.getMessage().contains("259") && e.getMessage().contains("258"), e.getMessage());
  }
}
