package org.hybrimoe.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Malformed or unsupported tokenizer files: each is a TokenizerFormatException whose message
 * names the file and the JSON field at fault; and the optional parts of tokenizer_config.json.
 */
class TokenizerFormatTest {
  static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  // {"model": {"type": "BPE", "vocab": {"a":0,"b":1,"ab":2}, "merges": ["a b"]}, "added_tokens": [<s> = 3]}
  static ObjectNode minimal() {
    ObjectNode root = JSON.createObjectNode();
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE");
    model.putObject("vocab").put("a", 0).put("b", 1).put("ab", 2);
    model.putArray("merges").add("a b");
    root.putArray("added_tokens").addObject().put("id", 3).put("content", "<s>").put("special", true);
    return root;
  }

  static TokenizerFormatException fails(ObjectNode tok, String config, String... mentions) {
    TokenizerFormatException e = assertThrows(TokenizerFormatException.class,
        () -> Tokenizer.fromJson(tok.toString(), config));
    for (String m : mentions) {
      assertTrue(e.getMessage().contains(m), "'" + m + "' missing from: " + e.getMessage());
    }
    return e;
  }

  static TokenizerFormatException fails(Consumer<ObjectNode> edit, String... mentions) {
    ObjectNode tok = minimal();
    edit.accept(tok);
    return fails(tok, null, mentions);
  }

  static ObjectNode model(ObjectNode root) {
    return (ObjectNode) root.get("model");
  }

  @Test
  void theMinimalTokenizerWorks() {
    Tokenizer t = Tokenizer.fromJson(minimal().toString(), null);
    assertArrayEquals(new int[] {2, 0, 3, 2}, t.encode("aba<s>ab", false));
    assertEquals(4, t.vocabSize());
    assertEquals("ab a <s>", t.decode(new int[] {2, 0, 3}, false), "no decoder: tokens joined by spaces");
  }

  @Test
  void missingModel() {
    fails(t -> t.remove("model"), "tokenizer.json", "'model'", "missing");
  }

  @Test
  void unsupportedModelTypesAreNamed() {
    fails(t -> model(t).put("type", "WordPiece"), "tokenizer.json", "model.type", "WordPiece", "not supported");
    fails(t -> model(t).put("type", "Unigram"), "tokenizer.json", "model.type", "Unigram", "not supported");
  }

  @Test
  void mergeOfATokenNotInTheVocabulary() {
    fails(t -> ((ArrayNode) model(t).get("merges")).add("a c"), "tokenizer.json", "model.merges[1]", "'c'", "model.vocab");
    fails(t -> ((ArrayNode) model(t).get("merges")).add("b a"), "model.merges[1]", "'ba'");
    fails(t -> ((ArrayNode) model(t).get("merges")).add("ab"), "model.merges[1]", "two tokens");
    fails(t -> ((ArrayNode) model(t).get("merges")).add(7), "model.merges[1]");
  }

  @Test
  void mergesMayBePairs() {
    ObjectNode t = minimal();
    model(t).putArray("merges").addArray().add("a").add("b");
    assertArrayEquals(new int[] {2}, Tokenizer.fromJson(t.toString(), null).encode("ab", false));
  }

  @Test
  void badVocabularyIds() {
    fails(t -> ((ObjectNode) model(t).get("vocab")).put("c", -1), "tokenizer.json", "model.vocab.c", "negative");
    fails(t -> ((ObjectNode) model(t).get("vocab")).put("c", 1), "model.vocab.c", "reuses id 1", "'b'");
    fails(t -> ((ObjectNode) model(t).get("vocab")).put("c", "x"), "model.vocab.c", "integer");
    fails(t -> ((ArrayNode) t.get("added_tokens")).addObject().put("id", -4).put("content", "<x>"),
        "added_tokens[1].id", "negative");
    fails(t -> ((ArrayNode) t.get("added_tokens")).addObject().put("id", 3).put("content", "<y>"),
        "added_tokens[1].id", "reuses id 3");
    // Ids no table should be sized by: INT_MAX (maxId + 1 overflowed), and ids past 2^30 - 1; each
    // is named. Large sparse ids below that cost a map entry, not an array of their size.
    fails(t -> ((ArrayNode) t.get("added_tokens")).addObject().put("id", Integer.MAX_VALUE).put("content", "<big>"),
        "added_tokens[1].id", "2147483647", "'<big>'", "past what");
    fails(t -> ((ObjectNode) model(t).get("vocab")).put("c", 1 << 30), "model.vocab.c", "past what");
    ObjectNode far = minimal();
    ((ArrayNode) far.get("added_tokens")).addObject().put("id", (1 << 30) - 1).put("content", "<far>");
    Tokenizer tf = Tokenizer.fromJson(far.toString(), null);
    assertEquals(1 << 30, tf.vocabSize());
    assertEquals("<far>", tf.token((1 << 30) - 1));
    assertArrayEquals(new int[] {2, (1 << 30) - 1}, tf.encode("ab<far>", false));
    ObjectNode holes = minimal();
    ((ArrayNode) holes.get("added_tokens")).addObject().put("id", 40).put("content", "<pad>").put("special", true);
    assertEquals(41, Tokenizer.fromJson(holes.toString(), null).vocabSize());
  }

  @Test
  void truncatedOrDuplicatedJson() {
    String s = minimal().toString();
    TokenizerFormatException e = assertThrows(TokenizerFormatException.class,
        () -> Tokenizer.fromJson(s.substring(0, s.length() / 2), null));
    assertTrue(e.getMessage().startsWith("tokenizer.json: not valid JSON"), e.getMessage());
    e = assertThrows(TokenizerFormatException.class,
        () -> Tokenizer.fromJson("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"a\": 1}}}", null));
    assertTrue(e.getMessage().contains("not valid JSON") && e.getMessage().contains("Duplicate"), e.getMessage());
    e = assertThrows(TokenizerFormatException.class, () -> Tokenizer.fromJson(minimal().toString(), "{\"eos_token\": "));
    assertTrue(e.getMessage().startsWith("tokenizer_config.json: not valid JSON"), e.getMessage());
    e = assertThrows(TokenizerFormatException.class, () -> Tokenizer.fromJson("[1, 2]", null));
    assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("object"), e.getMessage());
  }

  @Test
  void unsupportedComponentsNameTheirField() {
    fails(t -> t.putObject("pre_tokenizer").put("type", "BertPreTokenizer"), "pre_tokenizer.type", "BertPreTokenizer");
    fails(t -> {
      ArrayNode seq = t.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
      seq.addObject().put("type", "Digits");
      seq.addObject().put("type", "UnicodeScripts");
    }, "pre_tokenizer.pretokenizers[1].type", "UnicodeScripts");
    fails(t -> t.putObject("normalizer").put("type", "Precompiled"), "normalizer.type", "Precompiled");
    fails(t -> t.putObject("decoder").put("type", "WordPiece"), "decoder.type", "WordPiece");
    fails(t -> t.putObject("post_processor").put("type", "BertLike"), "post_processor.type", "BertLike");
    fails(t -> t.putObject("decoder").put("type", "Sequence").putArray("decoders")
        .add(JSON.createObjectNode().put("type", "Fuse")).add(JSON.createObjectNode().put("type", "ByteFallback")),
        "decoder.decoders[1]", "ByteFallback after Fuse");
  }

  @Test
  void aRegexThatDoesNotCompileNamesItsField() {
    fails(t -> {
      ObjectNode split = t.putObject("pre_tokenizer").put("type", "Split").put("behavior", "Isolated");
      split.putObject("pattern").put("Regex", "(unclosed");
    }, "tokenizer.json", "pre_tokenizer.pattern.Regex", "(unclosed");
    fails(t -> {
      ObjectNode split = t.putObject("pre_tokenizer").put("type", "Split").put("behavior", "Sideways");
      split.putObject("pattern").put("String", " ");
    }, "pre_tokenizer.behavior", "Sideways");
    fails(t -> t.putObject("pre_tokenizer").put("type", "Split").put("behavior", "Isolated").putObject("pattern").put("Glob", "*"),
        "pre_tokenizer.pattern");
  }

  @Test
  void postProcessorTemplates() {
    ObjectNode t = minimal();
    ObjectNode pp = t.putObject("post_processor").put("type", "TemplateProcessing");
    ArrayNode single = pp.putArray("single");
    single.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
    single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
    single.addObject().putObject("SpecialToken").put("id", "b").put("type_id", 0);
    pp.putObject("special_tokens").putObject("<s>").put("id", "<s>").putArray("ids").add(3);
    Tokenizer tok = Tokenizer.fromJson(t.toString(), null);
    assertArrayEquals(new int[] {3, 2, 1}, tok.encode("ab", true), "<s> from special_tokens, b from the vocabulary");
    assertArrayEquals(new int[] {2}, tok.encode("ab", false));

    ((ObjectNode) single.get(2).get("SpecialToken")).put("id", "<nope>");
    fails(t, null, "post_processor.single[2].SpecialToken.id", "<nope>");
  }

  @Test
  void configSpecialTokensAndSwitches() {
    String tok = minimal().toString();
    Tokenizer t = Tokenizer.fromJson(tok, "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": \"b\","
        + " \"add_bos_token\": true, \"add_eos_token\": true}");
    assertEquals(3, t.bosId().getAsInt());
    assertEquals(java.util.Set.of(1), t.eosIds());
    assertArrayEquals(new int[] {3, 0, 1}, t.encode("a", true));
    assertArrayEquals(new int[] {0}, t.encode("a", false));

    TokenizerFormatException e = assertThrows(TokenizerFormatException.class,
        () -> Tokenizer.fromJson(tok, "{\"eos_token\": \"</s>\"}"));
    assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("'eos_token'")
        && e.getMessage().contains("</s>"), e.getMessage());
    e = assertThrows(TokenizerFormatException.class, () -> Tokenizer.fromJson(tok, "{\"bos_token\": 5}"));
    assertTrue(e.getMessage().contains("'bos_token'") && e.getMessage().contains("string"), e.getMessage());
    e = assertThrows(TokenizerFormatException.class, () -> Tokenizer.fromJson(tok, "{\"add_bos_token\": true}"));
    assertTrue(e.getMessage().contains("'add_bos_token'"), e.getMessage());
    e = assertThrows(TokenizerFormatException.class, () -> Tokenizer.fromJson(tok, "{\"add_eos_token\": \"yes\"}"));
    assertTrue(e.getMessage().contains("'add_eos_token'"), e.getMessage());
  }

  @Test
  void chatTemplateAsAListUsesDefault() {
    String tok = minimal().toString();
    Tokenizer t = Tokenizer.fromJson(tok,
        "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}]}");
    assertTrue(t.hasChatTemplate());
    assertEquals("D", t.chatTemplateSource());
    Tokenizer none = Tokenizer.fromJson(tok, "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}]}");
    assertFalse(none.hasChatTemplate());
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> none.applyChatTemplate(List.of(ChatMessage.user("hi")), false));
    assertTrue(e.getMessage().contains("tool_use") && e.getMessage().contains("default"), e.getMessage());
    TokenizerFormatException f = assertThrows(TokenizerFormatException.class,
        () -> Tokenizer.fromJson(tok, "{\"chat_template\": 3}"));
    assertTrue(f.getMessage().contains("'chat_template'"), f.getMessage());
    assertThrows(NullPointerException.class, () -> new ChatMessage(null, "x"));
  }

  @Test
  void loadNamesThePathAndReadsChatTemplateJinja() throws IOException {
    assertThrows(NoSuchFileException.class, () -> Tokenizer.load(tmp));
    Files.writeString(tmp.resolve("tokenizer.json"), minimal().toString());
    Tokenizer t = Tokenizer.load(tmp);
    assertFalse(t.hasChatTemplate());
    Files.writeString(tmp.resolve("chat_template.jinja"), "{{ messages }}");
    assertEquals("{{ messages }}", Tokenizer.load(tmp).chatTemplateSource());
    Files.writeString(tmp.resolve("tokenizer_config.json"), "{\"eos_token\": 7}");
    TokenizerFormatException e = assertThrows(TokenizerFormatException.class, () -> Tokenizer.load(tmp));
    assertTrue(e.getMessage().startsWith(tmp.resolve("tokenizer_config.json").toString()), e.getMessage());
  }

  @Test
  void aCharacterTheVocabularyCannotExpressIsAClearError() {
    Tokenizer t = Tokenizer.fromJson(minimal().toString(), null);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.encode("abz", false));
    assertTrue(e.getMessage().contains("U+007A"), e.getMessage());
  }
}
