package org.hybrimoe.api;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import org.hybrimoe.tokenizer.ChatMessage;

/**
 * One generation request: the prompt (text, chat messages or token ids) and how to sample.
 * Immutable; build with {@link #builder()}:
 *
 * <pre>{@code
 * GenerateRequest r = GenerateRequest.builder().prompt("Once upon a time").maxTokens(64)
 *     .temperature(0.7).topP(0.9).seed(42).stop("\n\n").build();
 * }</pre>
 *
 * <p>Temperature 0 (the default) is greedy decoding; topK 0 and topP 1 switch those filters off.
 */
public final class GenerateRequest {
  private final String prompt;
  private final List<ChatMessage> messages;
  private final int[] promptTokens;
  private final int maxTokens;
  private final double temperature;
  private final int topK;
  private final double topP;
  private final Long seed;
  private final List<String> stop;
  private final boolean ignoreEos;
  private final boolean addSpecialTokens;

  private GenerateRequest(Builder b) {
    int kinds = (b.prompt != null ? 1 : 0) + (b.messages != null ? 1 : 0) + (b.promptTokens != null ? 1 : 0);
    if (kinds != 1) {
      throw new IllegalArgumentException("a request needs exactly one of prompt(text), messages(...) or "
          + "promptTokens(...), got " + kinds);
    }
    if (b.promptTokens != null && b.promptTokens.length == 0) {
      throw new IllegalArgumentException("promptTokens is empty: a generation needs at least one prompt token");
    }
    if (b.messages != null && b.messages.isEmpty()) {
      throw new IllegalArgumentException("messages is empty");
    }
    if (b.maxTokens < 1) {
      throw new IllegalArgumentException("maxTokens must be >= 1, got " + b.maxTokens);
    }
    if (!(b.temperature >= 0) || Double.isInfinite(b.temperature)) {
      throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + b.temperature);
    }
    if (b.topK < 0) {
      throw new IllegalArgumentException("topK must be >= 0 (0: off), got " + b.topK);
    }
    if (!(b.topP > 0 && b.topP <= 1)) {
      throw new IllegalArgumentException("topP must be in (0, 1] (1: off), got " + b.topP);
    }
    for (String s : b.stop) {
      if (s == null || s.isEmpty()) {
        throw new IllegalArgumentException("stop strings must be non-empty");
      }
    }
    this.prompt = b.prompt;
    this.messages = b.messages == null ? null : List.copyOf(b.messages);
    this.promptTokens = b.promptTokens == null ? null : b.promptTokens.clone();
    this.maxTokens = b.maxTokens;
    this.temperature = b.temperature;
    this.topK = b.topK;
    this.topP = b.topP;
    this.seed = b.seed;
    this.stop = List.copyOf(b.stop);
    this.ignoreEos = b.ignoreEos;
    this.addSpecialTokens = b.addSpecialTokens;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The text prompt, or null. */
  public String prompt() {
    return prompt;
  }

  /** The chat messages (rendered with the model's chat template), or null. */
  public List<ChatMessage> messages() {
    return messages;
  }

  /** The prompt as token ids, or null. */
  public int[] promptTokens() {
    return promptTokens == null ? null : promptTokens.clone();
  }

  public int maxTokens() {
    return maxTokens;
  }

  public double temperature() {
    return temperature;
  }

  public int topK() {
    return topK;
  }

  public double topP() {
    return topP;
  }

  /** The sampling seed; empty: a fresh one per request. */
  public OptionalLong seed() {
    return seed == null ? OptionalLong.empty() : OptionalLong.of(seed);
  }

  public List<String> stop() {
    return stop;
  }

  /** Whether EOS tokens are treated as ordinary tokens (generation runs to maxTokens). */
  public boolean ignoreEos() {
    return ignoreEos;
  }

  /** Whether a text prompt gets the tokenizer's special tokens (BOS); default true. */
  public boolean addSpecialTokens() {
    return addSpecialTokens;
  }

  /** Builds a {@link GenerateRequest}. */
  public static final class Builder {
    private String prompt;
    private List<ChatMessage> messages;
    private int[] promptTokens;
    private int maxTokens = 128;
    private double temperature;
    private int topK;
    private double topP = 1;
    private Long seed;
    private final List<String> stop = new ArrayList<>();
    private boolean ignoreEos;
    private boolean addSpecialTokens = true;

    private Builder() {}

    /** A text prompt, encoded with the model's tokenizer. */
    public Builder prompt(String text) {
      this.prompt = text;
      return this;
    }

    /** A conversation, rendered with the model's chat template (generation prompt added). */
    public Builder messages(List<ChatMessage> messages) {
      this.messages = messages;
      return this;
    }

    /** Adds one chat message (role "system", "user" or "assistant"). */
    public Builder message(String role, String content) {
      if (messages == null) {
        messages = new ArrayList<>();
      } else if (!(messages instanceof ArrayList)) {
        messages = new ArrayList<>(messages);
      }
      messages.add(new ChatMessage(role, content));
      return this;
    }

    /** The prompt as token ids (no tokenizer needed). */
    public Builder promptTokens(int... ids) {
      this.promptTokens = ids.clone();
      return this;
    }

    public Builder maxTokens(int n) {
      this.maxTokens = n;
      return this;
    }

    /** 0: greedy (the default). */
    public Builder temperature(double t) {
      this.temperature = t;
      return this;
    }

    /** Sample among the k most likely tokens only (0: off). */
    public Builder topK(int k) {
      this.topK = k;
      return this;
    }

    /** Nucleus sampling: the smallest set of tokens whose probability reaches p (1: off). */
    public Builder topP(double p) {
      this.topP = p;
      return this;
    }

    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /** Ends generation when the text contains one of these (the text is cut before it). */
    public Builder stop(String... strings) {
      stop.addAll(List.of(strings));
      return this;
    }

    public Builder ignoreEos(boolean ignore) {
      this.ignoreEos = ignore;
      return this;
    }

    public Builder addSpecialTokens(boolean add) {
      this.addSpecialTokens = add;
      return this;
    }

    /** @throws IllegalArgumentException naming the option that is out of range */
    public GenerateRequest build() {
      return new GenerateRequest(this);
    }
  }
}
