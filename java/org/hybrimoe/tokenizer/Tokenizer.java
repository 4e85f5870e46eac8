package org.hybrimoe.tokenizer;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.Set;
import java.util.function.UnaryOperator;
import org.hybrimoe.chat.ChatTemplate;
import org.hybrimoe.tokenizer.AddedTokens.Segment;
import org.hybrimoe.tokenizer.PreTokenizers.Piece;
import org.hybrimoe.tokenizer.PreTokenizers.PreTokenizer;

/**
 * A HuggingFace tokenizer (tokenizer.json, plus tokenizer_config.json when present) that encodes
 * and decodes exactly as HuggingFace tokenizers does for the BPE tokenizers of the models this
 * project runs: byte-level BPE (Qwen, DeepSeek: regex Split + ByteLevel pre-tokenizers) and
 * SentencePiece-style BPE with byte fallback (Mixtral, Mistral, Llama 2: Prepend/Replace
 * normalizer or Metaspace, {@code <0xNN>} tokens).
 *
 * <p>Encoding: added tokens are cut out of the raw text first (longest match), the rest is
 * normalized, split by the pre-tokenizer, and each word is BPE-merged; with
 * {@code addSpecialTokens} the post-processor's BOS/EOS are added. Decoding runs the decoder
 * chain; {@link #streamDecoder} does the same one id at a time.
 *
 * <p>Ids may be sparse; {@link #vocabSize()} is the largest id plus one. Immutable and
 * thread-safe (a concurrent word cache inside); the stream decoders it makes are not.
 *
 * <p>Not implemented: WordPiece/Unigram/WordLevel models, truncation, padding, sequence pairs,
 * offsets, BPE dropout (ignored: inference is deterministic), and transformers'
 * clean_up_tokenization_spaces (never applied; the Qwen2.5, DeepSeek-V3 and Llama 2 configs set
 * it false; a config that sets it true is logged).
 */
public final class Tokenizer {
  private static final System.Logger LOG = System.getLogger(Tokenizer.class.getName());
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  private final BpeModel model;
  private final UnaryOperator<String> normalizer; // null: identity
  private final PreTokenizer preTokenizer; // null: the whole text is one word
  private final AddedTokens added;
  private final Decoders.Chain decoder;
  private final int[] prefix; // ids the post-processor puts before the text
  private final int[] suffix; // and after it
  private final IdTable ids; // id -> token, added, special
  private final Map<String, Integer> addedByContent;
  private final OptionalInt bos;
  private final Set<Integer> eos;
  private final String bosToken; // "" when none
  private final String eosToken;
  private final String chatTemplate; // null when none
  private final String chatTemplateProblem; // why there is none, for the exception
  private volatile ChatTemplate compiledTemplate;

  private Tokenizer(Field tok, Field cfg, String templateFile) {
    Field root = tok.requireObject();
    this.model = BpeModel.parse(root.get("model").require());
    this.normalizer = Normalizers.parse(root.get("normalizer"));
    this.preTokenizer = PreTokenizers.parse(root.get("pre_tokenizer"));
    this.decoder = Decoders.parse(root.get("decoder"));

    // Added tokens and the id -> token table.
    List<AddedTokens.Token> addedList = new ArrayList<>();
    Field at = root.get("added_tokens");
    // The id table's arrays are sized by what the file's own tokens account for, never by an id
    // (IdTable keeps the few sparse high ids in a map); ids past IdTable.MAX_ID are malformed.
    long entries = model.vocab.size() + (at.present() ? at.list().size() : 0);
    int denseLimit = (int) Math.min(IdTable.MAX_ID + 1L, 2 * entries + 256);
    for (Map.Entry<String, Integer> e : model.vocab.entrySet()) {
      if (e.getValue() > IdTable.MAX_ID) {
        throw root.get("model").get("vocab").get(e.getKey()).bad("is id " + e.getValue()
            + ", past what a vocabulary can hold (ids up to " + IdTable.MAX_ID + ")");
      }
    }
    if (at.present()) {
      for (Field t : at.list()) {
        t.requireObject();
        int id = t.get("id").integer();
        if (id < 0) {
          throw t.get("id").bad("is a negative id (" + id + ")");
        }
        if (id > IdTable.MAX_ID) {
          throw t.get("id").bad("is id " + id + " for added token '" + t.get("content").string()
              + "', past what a vocabulary can hold (ids up to " + IdTable.MAX_ID + ")");
        }
        boolean special = t.get("special").boolOr(false);
        String content = t.get("content").string();
        // A token the model vocabulary already has keeps its vocabulary id, whatever the file
        // says (HF tokenizers does the same; in well-formed files the two agree).
        id = model.vocab.getOrDefault(content, id);
        addedList.add(new AddedTokens.Token(id, content, t.get("single_word").boolOr(false),
            t.get("lstrip").boolOr(false), t.get("rstrip").boolOr(false), t.get("normalized").boolOr(!special),
            special));
      }
    }
    this.added = new AddedTokens(addedList, normalizer);
    this.ids = new IdTable(denseLimit);
    model.vocab.forEach((s, id) -> ids.put(id, s, false, false));
    Map<String, Integer> byContent = new HashMap<>();
    Map<Integer, String> addedById = new HashMap<>();
    for (int i = 0; i < addedList.size(); i++) {
      AddedTokens.Token t = addedList.get(i);
      String other = addedById.putIfAbsent(t.id(), t.content());
      if (other != null && !other.equals(t.content())) {
        throw at.at(i).get("id").bad("reuses id " + t.id() + ", already the id of added token '" + other + "'");
      }
      ids.put(t.id(), t.content(), true, t.special());
      byContent.putIfAbsent(t.content(), t.id());
    }
    this.addedByContent = byContent;

    // tokenizer_config.json: special tokens, BOS/EOS switches, chat template.
    cfg = cfg == null ? null : cfg.requireObject();
    String bosName = cfg == null ? null : specialToken(cfg.get("bos_token"));
    String eosName = cfg == null ? null : specialToken(cfg.get("eos_token"));
    this.bosToken = bosName == null ? "" : bosName;
    this.eosToken = eosName == null ? "" : eosName;
    this.bos = bosName == null ? OptionalInt.empty() : OptionalInt.of(requireId(cfg.get("bos_token"), bosName));
    this.eos = eosName == null ? Set.of() : Set.of(requireId(cfg.get("eos_token"), eosName));

    int[][] pp = postProcessor(root.get("post_processor"));
    int[] pre = pp[0];
    int[] post = pp[1];
    if (cfg != null && (cfg.get("add_bos_token").present() || cfg.get("add_eos_token").present())) {
      // transformers' LlamaTokenizerFast.update_post_processor: these switches decide BOS/EOS.
      pre = bosEos(cfg.get("add_bos_token"), bos, pre);
      post = bosEos(cfg.get("add_eos_token"), eos.isEmpty() ? OptionalInt.empty() : OptionalInt.of(eos.iterator().next()), post);
    }
    this.prefix = pre;
    this.suffix = post;

    if (cfg != null && cfg.get("clean_up_tokenization_spaces").boolOr(false)) {
      LOG.log(System.Logger.Level.WARNING, cfg.file + " sets clean_up_tokenization_spaces, which is not applied:"
          + " decoded text keeps spaces before punctuation that transformers would remove");
    }
    String template = null;
    String problem = "tokenizer_config.json has no chat_template";
    if (cfg != null && cfg.get("chat_template").present()) {
      Field ct = cfg.get("chat_template");
      if (ct.node.isTextual()) {
        template = ct.string();
      } else if (ct.node.isArray()) {
        List<String> names = new ArrayList<>();
        for (Field e : ct.list()) {
          String name = e.requireObject().get("name").string();
          names.add(name);
          if (name.equals("default")) {
            template = e.get("template").string();
          }
        }
        problem = ct.file + ": chat_template lists " + names + " but no \"default\"";
      } else {
        throw ct.bad("must be a string or a list of {name, template}, got " + Field.brief(ct.node));
      }
    }
    if (template == null && templateFile != null) {
      template = templateFile;
    }
    this.chatTemplate = template;
    this.chatTemplateProblem = problem;
  }

  /**
   * Loads dir/tokenizer.json (required) and dir/tokenizer_config.json (optional; a chat template
   * may also come from dir/chat_template.jinja). Unreadable files are IOExceptions; malformed or
   * unsupported content is a {@link TokenizerFormatException} naming the file and field.
   */
  public static Tokenizer load(Path dir) throws IOException {
    Path tok = dir.resolve("tokenizer.json");
    if (!Files.isRegularFile(tok)) {
      throw new NoSuchFileException(tok.toString(), null, "no tokenizer.json in " + dir);
    }
    Path cfg = dir.resolve("tokenizer_config.json");
    Path jinja = dir.resolve("chat_template.jinja");
    String template = Files.isRegularFile(jinja) ? Files.readString(jinja, StandardCharsets.UTF_8) : null;
    return new Tokenizer(parse(Files.readString(tok, StandardCharsets.UTF_8), tok.toString()),
        Files.isRegularFile(cfg) ? parse(Files.readString(cfg, StandardCharsets.UTF_8), cfg.toString()) : null,
        template);
  }

  /**
   * A tokenizer from the contents of tokenizer.json and tokenizer_config.json (null when there is
   * none); errors name the files "tokenizer.json" and "tokenizer_config.json".
   */
  public static Tokenizer fromJson(String tokenizerJson, String tokenizerConfigJson) {
    Objects.requireNonNull(tokenizerJson, "tokenizerJson");
    return new Tokenizer(parse(tokenizerJson, "tokenizer.json"),
        tokenizerConfigJson == null ? null : parse(tokenizerConfigJson, "tokenizer_config.json"), null);
  }

  private static Field parse(String json, String file) {
    try {
      JsonNode n = JSON.readTree(json);
      if (n == null || n.isMissingNode()) {
        throw new TokenizerFormatException(file + ": empty file");
      }
      return Field.root(file, n);
    } catch (JsonProcessingException e) {
      String why = e.getOriginalMessage();
      int noise = why.indexOf(" (start marker at");
      throw new TokenizerFormatException(file + ": not valid JSON: " + (noise > 0 ? why.substring(0, noise) : why)
          + (e.getLocation() != null ? " (line " + e.getLocation().getLineNr() + ", column "
          + e.getLocation().getColumnNr() + ")" : ""), e);
    }
  }

  // bos_token / eos_token: a string, {"content": ...}, or null.
  private static String specialToken(Field f) {
    if (!f.present()) {
      return null;
    }
    if (f.node.isTextual()) {
      return f.string();
    }
    if (f.node.isObject()) {
      return f.get("content").string();
    }
    throw f.bad("must be a string or {\"content\": ...}, got " + Field.brief(f.node));
  }

  private int requireId(Field f, String token) {
    OptionalInt id = tokenId(token);
    if (id.isEmpty()) {
      throw f.bad("names '" + token + "', which is neither in model.vocab nor in added_tokens of tokenizer.json");
    }
    return id.getAsInt();
  }

  private static int[] bosEos(Field flag, OptionalInt id, int[] fromTemplate) {
    if (!flag.present()) {
      return fromTemplate;
    }
    if (!flag.boolOr(false)) {
      return new int[0];
    }
    if (id.isEmpty()) {
      throw flag.bad("is true but the config names no such token (" + flag.path.replace("add_", "") + ")");
    }
    return new int[] {id.getAsInt()};
  }

  // {prefix ids, suffix ids} of the post_processor for a single sequence.
  private int[][] postProcessor(Field f) {
    if (!f.present()) {
      return new int[][] {new int[0], new int[0]};
    }
    String type = f.type();
    switch (type) {
      case "ByteLevel":
        return new int[][] {new int[0], new int[0]};
      case "TemplateProcessing": {
        IntList pre = new IntList(2);
        IntList post = new IntList(2);
        boolean seenA = false;
        Field special = f.get("special_tokens");
        for (Field item : f.get("single").list()) {
          item.requireObject();
          if (item.get("Sequence").present()) {
            String which = item.get("Sequence").get("id").stringOr("A");
            if (!which.equals("A")) {
              throw item.get("Sequence").get("id").bad("must be A in a single-sequence template, got " + which);
            }
            seenA = true;
          } else if (item.get("SpecialToken").present()) {
            String name = item.get("SpecialToken").get("id").string();
            Field entry = special.get(name);
            IntList target = seenA ? post : pre;
            if (entry.present()) {
              for (Field id : entry.get("ids").list()) {
                target.add(checkId(id, id.integer()));
              }
            } else {
              OptionalInt id = tokenId(name);
              if (id.isEmpty()) {
                throw item.get("SpecialToken").get("id").bad("names '" + name + "', which is in neither special_tokens nor the vocabulary");
              }
              target.add(id.getAsInt());
            }
          } else {
            throw item.bad("must be {\"Sequence\": ..} or {\"SpecialToken\": ..}");
          }
        }
        if (!seenA) {
          throw f.get("single").bad("has no {\"Sequence\": {\"id\": \"A\"}}");
        }
        return new int[][] {pre.toArray(), post.toArray()};
      }
      case "RobertaProcessing":
      case "BertProcessing": {
        return new int[][] {{pairId(f.get("cls"))}, {pairId(f.get("sep"))}};
      }
      case "Sequence": {
        int[] pre = new int[0];
        int[] post = new int[0];
        for (Field p : f.get("processors").list()) {
          int[][] pp = postProcessor(p.require());
          pre = concat(pp[0], pre);
          post = concat(post, pp[1]);
        }
        return new int[][] {pre, post};
      }
      default:
        throw f.unsupported("post-processor", type, "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence");
    }
  }

  // A ["token", id] pair of RobertaProcessing/BertProcessing.
  private int pairId(Field f) {
    List<Field> pair = f.list();
    if (pair.size() != 2) {
      throw f.bad("must be [token, id], got " + Field.brief(f.node));
    }
    return checkId(pair.get(1), pair.get(1).integer());
  }

  private int checkId(Field f, int id) {
    if (ids.token(id) == null) {
      throw f.bad("is id " + id + ", which no token has");
    }
    return id;
  }

  private static int[] concat(int[] a, int[] b) {
    int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  /**
   * The ids of text. Added tokens written in the text (e.g. {@code <|im_start|>}) always become
   * their ids; addSpecialTokens adds what the post-processor adds (BOS for Mixtral and DeepSeek,
   * nothing for Qwen).
   *
   * @throws IllegalArgumentException for a character the vocabulary cannot express (only possible
   *     without byte-level BPE, byte_fallback or unk_token)
   */
  public int[] encode(String text, boolean addSpecialTokens) {
    Objects.requireNonNull(text, "text");
    IntList out = new IntList(text.length() / 3 + 8);
    if (addSpecialTokens) {
      out.addAll(prefix);
    }
    for (Segment seg : added.splitRaw(text)) {
      if (seg.id() >= 0) {
        out.add(seg.id());
        continue;
      }
      if (seg.text().isEmpty()) {
        continue;
      }
      String norm = normalizer == null ? seg.text() : normalizer.apply(seg.text());
      for (Segment sub : added.splitNormalized(norm)) {
        if (sub.id() >= 0) {
          out.add(sub.id());
        } else if (!sub.text().isEmpty()) {
          Piece whole = new Piece(sub.text(), seg.start() == 0 && sub.start() == 0);
          List<Piece> words = preTokenizer == null ? List.of(whole) : preTokenizer.apply(List.of(whole));
          for (Piece w : words) {
            model.encodeWord(w.text(), out);
          }
        }
      }
    }
    if (addSpecialTokens) {
      out.addAll(suffix);
    }
    return out.toArray();
  }

  /**
   * The text of ids. skipSpecialTokens drops special added tokens (BOS, EOS, {@code <|im_end|>}).
   * Ids that no token has (unused embedding rows of a model whose vocabulary is smaller than its
   * embedding) are skipped, as HuggingFace does.
   */
  public String decode(int[] ids, boolean skipSpecialTokens) {
    Stream s = new Stream(skipSpecialTokens);
    StringBuilder out = new StringBuilder(ids.length * 4);
    for (int id : ids) {
      out.append(s.next(id));
    }
    out.append(s.flush());
    return out.toString();
  }

  /** An incremental decoder; see {@link StreamDecoder}. */
  public StreamDecoder streamDecoder(boolean skipSpecialTokens) {
    return new Stream(skipSpecialTokens);
  }

  private final class Stream implements StreamDecoder {
    private final boolean skipSpecial;
    private final StringBuilder out = new StringBuilder();
    private Decoders.Stage head;

    Stream(boolean skipSpecial) {
      this.skipSpecial = skipSpecial;
      this.head = decoder.start(out);
    }

    @Override
    public String next(int id) {
      if (ids.token(id) == null || (skipSpecial && ids.special(id))) {
        return "";
      }
      head.token(ids.token(id), ids.added(id));
      return drain();
    }

    @Override
    public String flush() {
      head.finish();
      String s = drain();
      head = decoder.start(out);
      return s;
    }

    private String drain() {
      if (out.length() == 0) {
        return "";
      }
      String s = out.toString();
      out.setLength(0);
      return s;
    }
  }

  /** The largest token id plus one (ids may be sparse below it). */
  public int vocabSize() {
    return ids.size();
  }

  /** The id of tokenizer_config.json's bos_token, if it names one. */
  public OptionalInt bosId() {
    return bos;
  }

  /** The id of tokenizer_config.json's eos_token; empty when it names none. */
  public Set<Integer> eosIds() {
    return eos;
  }

  /** The id of a token string: an added token, else a vocabulary entry. */
  public OptionalInt tokenId(String token) {
    Integer id = addedByContent.get(token);
    if (id == null) {
      id = model.vocab.get(token);
    }
    return id == null ? OptionalInt.empty() : OptionalInt.of(id);
  }

  /** The token string of an id (byte-level tokens in their byte alphabet, e.g. "Ġthe"). */
  public String token(int id) {
    String t = ids.token(id);
    if (t == null) {
      throw new IllegalArgumentException("token id " + id + " is not in the vocabulary (size " + ids.size() + ")");
    }
    return t;
  }

  /** True for special added tokens (BOS, EOS, chat markers). */
  public boolean isSpecial(int id) {
    return ids.special(id);
  }

  public boolean hasChatTemplate() {
    return chatTemplate != null;
  }

  /**
   * Renders the chat template (org.hybrimoe.chat) with {@code messages} (role, content),
   * {@code add_generation_prompt}, {@code bos_token} and {@code eos_token} ("" when absent).
   *
   * @throws IllegalStateException when the tokenizer has no chat template
   * @throws org.hybrimoe.chat.ChatTemplateException when the template cannot be parsed or rendered
   */
  public String applyChatTemplate(List<ChatMessage> messages, boolean addGenerationPrompt) {
    if (chatTemplate == null) {
      throw new IllegalStateException("no chat template: " + chatTemplateProblem);
    }
    ChatTemplate t = compiledTemplate;
    if (t == null) {
      t = ChatTemplate.compile(chatTemplate);
      compiledTemplate = t; // a race compiles twice, harmlessly
    }
    return t.render(chatContext(messages, addGenerationPrompt));
  }

  /** The variables applyChatTemplate renders with (package-private for tests). */
  Map<String, Object> chatContext(List<ChatMessage> messages, boolean addGenerationPrompt) {
    List<Object> msgs = new ArrayList<>(messages.size());
    for (ChatMessage m : messages) {
      Map<String, Object> e = new LinkedHashMap<>();
      e.put("role", m.role());
      e.put("content", m.content());
      msgs.add(Collections.unmodifiableMap(e));
    }
    Map<String, Object> ctx = new HashMap<>();
    ctx.put("messages", Collections.unmodifiableList(msgs));
    ctx.put("add_generation_prompt", addGenerationPrompt);
    ctx.put("bos_token", bosToken);
    ctx.put("eos_token", eosToken);
    return ctx;
  }

  /** The chat template source, or null (package-private for tests). */
  String chatTemplateSource() {
    return chatTemplate;
  }

  /** The ids encode adds before and after the text with addSpecialTokens (for tests). */
  int[][] specialAffixes() {
    return new int[][] {prefix.clone(), suffix.clone()};
  }

  @Override
  public String toString() {
    Set<String> parts = new LinkedHashSet<>();
    parts.add("vocab " + ids.size());
    parts.add(added.tokens.size() + " added tokens");
    bos.ifPresent(b -> parts.add("bos " + ids.token(b)));
    if (!eos.isEmpty()) {
      parts.add("eos " + ids.token(eos.iterator().next()));
    }
    return "Tokenizer(" + String.join(", ", parts) + ")";
  }
}
