package org.hybrimoe.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.hybrimoe.tokenizer.PreTokenizers.Piece;

/**
 * Writes a small, valid byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json, the
 * Qwen2 layout) for random-weight test and demo models: the 256 byte tokens (ids 0..255), merges
 * learned by a deterministic BPE training on a built-in English text (maker-corpus.txt), and three
 * special tokens at the top ids: {@code <|endoftext|>} = vocabSize-3, {@code <|im_start|>} =
 * vocabSize-2, {@code <|im_end|>} = vocabSize-1 (the EOS). No BOS; a ChatML chat template.
 *
 * <p>The built-in text yields a few thousand merges; when vocabSize asks for more, training stops
 * when no pair is left, so the vocabulary has fewer entries than vocabSize and the ids between
 * the last merge and the special tokens are unused (a model's embedding just has unused rows).
 * Every id is below vocabSize. Any text round-trips exactly (no normalizer; every byte has a token).
 * Stateless; thread-safe.
 */
public final class TokenizerMaker {
  private TokenizerMaker() {}

  /** Qwen's ChatML template. */
  public static final String CHATML_TEMPLATE = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'"
      + " + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
      + "{{ '<|im_start|>assistant\\n' }}{% endif %}";

  static final List<String> SPECIALS = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>");

  // Qwen2's pre-tokenizer pattern: words, single digits, punctuation runs, newlines, spaces.
  static final String SPLIT_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
      + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

  /**
   * Writes dir/tokenizer.json and dir/tokenizer_config.json (creating dir).
   *
   * @throws IllegalArgumentException when vocabSize is below 259 (256 bytes + 3 special tokens)
   */
  public static void writeByteLevel(Path dir, int vocabSize) throws IOException {
    if (vocabSize < 256 + SPECIALS.size()) {
      throw new IllegalArgumentException("vocabSize must be at least " + (256 + SPECIALS.size())
          + " (256 byte tokens and " + SPECIALS.size() + " special tokens), got " + vocabSize);
    }
    ObjectNode preTokenizer = preTokenizer();
    Trained t = train(corpus(), preTokenizer, vocabSize - SPECIALS.size());
    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("tokenizer.json"),
        json.writeValueAsString(tokenizerJson(t, preTokenizer, vocabSize)) + "\n", StandardCharsets.UTF_8);
    Files.writeString(dir.resolve("tokenizer_config.json"),
        json.writeValueAsString(configJson()) + "\n", StandardCharsets.UTF_8);
  }

  static String corpus() {
    try (InputStream in = TokenizerMaker.class.getResourceAsStream("maker-corpus.txt")) {
      if (in == null) {
        throw new IllegalStateException("maker-corpus.txt is missing from the classpath (org/hybrimoe/tokenizer)");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static final JsonNodeFactory F = JsonNodeFactory.instance;

  private static ObjectNode preTokenizer() {
    ObjectNode split = F.objectNode().put("type", "Split");
    split.putObject("pattern").put("Regex", SPLIT_REGEX);
    split.put("behavior", "Isolated").put("invert", false);
    ObjectNode byteLevel = F.objectNode().put("type", "ByteLevel").put("add_prefix_space", false)
        .put("trim_offsets", false).put("use_regex", false);
    ObjectNode seq = F.objectNode().put("type", "Sequence");
    seq.putArray("pretokenizers").add(split).add(byteLevel);
    return seq;
  }

  /** The learned vocabulary (id order) and merges (rank order). */
  record Trained(List<String> tokens, List<String> merges) {}

  /**
   * Classic BPE training: count the words of the text (as the pre-tokenizer splits it), then
   * repeatedly merge the most frequent adjacent pair (ties: lowest left id, then lowest right
   * id), keeping pair counts and the words each pair occurs in up to date incrementally, so a
   * merge costs the length of the words it touches plus one scan of the pair table.
   */
  static Trained train(String text, ObjectNode preTokenizerJson, int maxTokens) {
    PreTokenizers.PreTokenizer pre = PreTokenizers.parse(Field.root("TokenizerMaker", preTokenizerJson));
    Map<String, Integer> wordCounts = new LinkedHashMap<>();
    for (Piece p : pre.apply(List.of(new Piece(text, true)))) {
      wordCounts.merge(p.text(), 1, Integer::sum);
    }
    List<String> tokens = new ArrayList<>(maxTokens);
    Map<String, Integer> ids = new HashMap<>();
    for (int b = 0; b < 256; b++) {
      String s = String.valueOf(ByteLevel.BYTE_TO_CHAR[b]);
      ids.put(s, tokens.size());
      tokens.add(s);
    }
    int nWords = wordCounts.size();
    int[][] words = new int[nWords][];
    int[] lens = new int[nWords];
    int[] counts = new int[nWords];
    int w = 0;
    for (Map.Entry<String, Integer> e : wordCounts.entrySet()) {
      String s = e.getKey();
      words[w] = new int[s.length()];
      for (int i = 0; i < s.length(); i++) {
        words[w][i] = ids.get(String.valueOf(s.charAt(i)));
      }
      lens[w] = s.length();
      counts[w] = e.getValue();
      w++;
    }
    Map<Long, Long> pairCounts = new HashMap<>();
    Map<Long, Set<Integer>> pairWords = new HashMap<>();
    for (int i = 0; i < nWords; i++) {
      addPairs(i, words, lens, counts, pairCounts, pairWords, +1);
    }
    List<String> merges = new ArrayList<>();
    Set<Long> recorded = new HashSet<>();
    while (tokens.size() < maxTokens) {
      long best = -1;
      long bestCount = 0;
      for (Map.Entry<Long, Long> e : pairCounts.entrySet()) {
        long c = e.getValue();
        if (c > bestCount || (c == bestCount && c > 0 && Long.compareUnsigned(e.getKey(), best) < 0)) {
          best = e.getKey();
          bestCount = c;
        }
      }
      if (bestCount == 0) {
        break; // every word is one token
      }
      int a = (int) (best >>> 32);
      int b = (int) best;
      String merged = tokens.get(a) + tokens.get(b);
      Integer id = ids.get(merged);
      if (id == null) {
        id = tokens.size();
        ids.put(merged, id);
        tokens.add(merged);
      }
      if (recorded.add(best)) { // a pair can recur when its merged string already had an id
        merges.add(tokens.get(a) + " " + tokens.get(b));
      }
      for (int i : new ArrayList<>(pairWords.getOrDefault(best, Set.of()))) {
        addPairs(i, words, lens, counts, pairCounts, pairWords, -1);
        lens[i] = mergeInWord(words[i], lens[i], a, b, id);
        addPairs(i, words, lens, counts, pairCounts, pairWords, +1);
      }
    }
    return new Trained(tokens, merges);
  }

  private static long pair(int a, int b) {
    return ((long) a << 32) | (b & 0xFFFFFFFFL);
  }

  private static void addPairs(int i, int[][] words, int[] lens, int[] counts, Map<Long, Long> pairCounts,
      Map<Long, Set<Integer>> pairWords, int sign) {
    int[] s = words[i];
    for (int j = 0; j + 1 < lens[i]; j++) {
      long p = pair(s[j], s[j + 1]);
      long c = pairCounts.getOrDefault(p, 0L) + (long) sign * counts[i];
      if (c == 0) {
        pairCounts.remove(p);
      } else {
        pairCounts.put(p, c);
      }
      if (sign > 0) {
        pairWords.computeIfAbsent(p, k -> new HashSet<>()).add(i);
      } else {
        Set<Integer> ws = pairWords.get(p);
        if (ws != null) {
          ws.remove(i);
          if (ws.isEmpty()) {
            pairWords.remove(p);
          }
        }
      }
    }
  }

  // Replaces each non-overlapping (a, b), left to right, by id; returns the new length.
  private static int mergeInWord(int[] s, int len, int a, int b, int id) {
    int out = 0;
    for (int j = 0; j < len; j++) {
      if (j + 1 < len && s[j] == a && s[j + 1] == b) {
        s[out++] = id;
        j++;
      } else {
        s[out++] = s[j];
      }
    }
    return out;
  }

  private static ObjectNode tokenizerJson(Trained t, ObjectNode preTokenizer, int vocabSize) {
    ObjectNode root = F.objectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    for (int i = 0; i < SPECIALS.size(); i++) {
      added.addObject().put("id", vocabSize - SPECIALS.size() + i).put("content", SPECIALS.get(i))
          .put("single_word", false).put("lstrip", false).put("rstrip", false)
          .put("normalized", false).put("special", true);
    }
    root.putNull("normalizer");
    root.set("pre_tokenizer", preTokenizer);
    root.set("post_processor", F.objectNode().put("type", "ByteLevel").put("add_prefix_space", false)
        .put("trim_offsets", false).put("use_regex", false));
    root.set("decoder", F.objectNode().put("type", "ByteLevel").put("add_prefix_space", false)
        .put("trim_offsets", false).put("use_regex", false));
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE").putNull("dropout").putNull("unk_token").put("continuing_subword_prefix", "")
        .put("end_of_word_suffix", "").put("fuse_unk", false).put("byte_fallback", false)
        .put("ignore_merges", false);
    ObjectNode vocab = model.putObject("vocab");
    for (int i = 0; i < t.tokens().size(); i++) {
      vocab.put(t.tokens().get(i), i);
    }
    ArrayNode merges = model.putArray("merges");
    t.merges().forEach(merges::add);
    return root;
  }

  private static ObjectNode configJson() {
    ObjectNode c = F.objectNode();
    c.put("_generator", "hybrimoe TokenizerMaker.writeByteLevel");
    c.put("tokenizer_class", "Qwen2Tokenizer");
    c.put("add_bos_token", false);
    c.putNull("bos_token");
    c.put("eos_token", "<|im_end|>");
    c.put("pad_token", "<|endoftext|>");
    c.putNull("unk_token");
    c.put("clean_up_tokenization_spaces", false);
    c.put("chat_template", CHATML_TEMPLATE);
    return c;
  }
}
