package org.hybrimoe.api;

import java.util.ArrayList;
import java.util.List;
import org.hybrimoe.model.ExecutorStats;
import org.hybrimoe.model.Session;
import org.hybrimoe.tokenizer.StreamDecoder;
import org.hybrimoe.tokenizer.Tokenizer;

/**
 * One request being generated, one token per {@link #step}: the prompt's prefill and first token,
 * then one KV-cached decode step per token. Each forward pass runs under the model's lock (and
 * nothing else does), so requests interleave without sharing state: each has its own session
 * (KV cache), sampler and text. Used by one thread at a time.
 */
final class Generation implements AutoCloseable {
  private final Model model;
  private final GenerateRequest request;
  private final long t0 = System.nanoTime();
  private final int[] prompt;
  private final Session session;
  private final int seqCap; // positions the session holds
  private final Sampler sampler;
  private final StopStrings stops;
  private final StreamDecoder decoder; // null without a tokenizer
  private ExecutorStats stats; // this request's own: the sum of its steps' deltas (null: none kept)
  private final List<Integer> tokens = new ArrayList<>();
  private final StringBuilder text = new StringBuilder();
  private int released; // chars of text handed out so far
  private double ttftMs;
  private double prefillMs;
  private double decodeMs;
  private FinishReason finish;
  private int last = -1;

  Generation(Model model, GenerateRequest request) {
    this.model = model;
    this.request = request;
    Tokenizer tok = model.tokenizer().orElse(null);
    this.prompt = promptIds(model, request, tok);
    int context = model.maxContext();
    if (prompt.length >= context) {
      throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens; the context holds "
          + context + " positions and at least one must be left for a new token");
    }
    for (int id : prompt) {
      if (id < 0 || id >= model.vocabSize()) {
        throw new IllegalArgumentException("prompt token " + id + " is outside the vocabulary (0.."
            + (model.vocabSize() - 1) + ")");
      }
    }
    this.sampler = new Sampler(request.temperature(), request.topK(), request.topP(),
        request.seed().orElse(System.nanoTime() ^ 0x5DEECE66DL));
    this.stops = new StopStrings(request.stop());
    this.decoder = tok == null ? null : tok.streamDecoder(true);
    // prompt + new tokens, less the last new token (sampled, never fed back)
    int seq = (int) Math.min(context, (long) prompt.length + request.maxTokens() - 1);
    model.lock().lock();
    try {
      model.checkOpen();
      this.seqCap = Math.max(seq, prompt.length);
      this.session = model.lm().newSession(seqCap, model.options().kvCache().dtype);
    } finally {
      model.lock().unlock();
    }
  }

  private static int[] promptIds(Model model, GenerateRequest r, Tokenizer tok) {
    if (r.promptTokens() != null) {
      return r.promptTokens();
    }
    if (tok == null) {
      throw new IllegalArgumentException("this model directory has no tokenizer.json: give the prompt as "
          + "token ids (promptTokens)");
    }
    if (r.messages() != null) {
      if (!tok.hasChatTemplate()) {
        throw new IllegalArgumentException("this model's tokenizer_config.json has no chat_template: give a "
            + "text prompt instead of messages");
      }
      // The template writes BOS and the role markers itself.
      return tok.encode(tok.applyChatTemplate(r.messages(), true), false);
    }
    int[] ids = tok.encode(r.prompt(), r.addSpecialTokens());
    if (ids.length == 0) {
      throw new IllegalArgumentException("the prompt encodes to no tokens: give some text");
    }
    return ids;
  }

  /** The next token, or null once the generation has ended. */
  GeneratedToken step() {
    if (finish != null) {
      return null;
    }
    float[] logits = forward();
    int id = sampler.next(logits);
    int index = tokens.size();
    tokens.add(id);
    if (index == 0) {
      ttftMs = ms(t0);
    }
    last = id;
    boolean eos = !request.ignoreEos() && model.eosIds().contains(id);
    if (eos) {
      finish = FinishReason.EOS;
    } else {
      int before = text.length();
      if (decoder != null) {
        text.append(decoder.next(id));
      }
      int at = stops.find(text, before);
      if (at >= 0) {
        text.setLength(at);
        finish = FinishReason.STOP_STRING;
      } else if (tokens.size() >= request.maxTokens()) {
        finish = FinishReason.MAX_TOKENS;
      } else if (session.position() + 1 > seqCap) {
        finish = FinishReason.CONTEXT_LIMIT;
      }
    }
    if (finish != null && finish != FinishReason.STOP_STRING && decoder != null) {
      int before = text.length();
      text.append(decoder.flush());
      int at = stops.find(text, before);
      if (at >= 0) {
        text.setLength(at);
        finish = FinishReason.STOP_STRING;
      }
    }
    int end = finish != null ? text.length() : text.length() - stops.heldBack(text);
    String piece = "";
    if (end > released) {
      piece = text.substring(released, end);
      released = end;
    }
    if (finish != null) {
      closeSession();
    }
    return new GeneratedToken(index, id, piece);
  }

  private float[] forward() {
    model.lock().lock();
    try {
      model.checkOpen();
      ExecutorStats before = model.lm().experts().stats();
      long t = System.nanoTime();
      float[] logits = last < 0 ? session.forwardLast(prompt) : session.forwardLast(last);
      if (last < 0) {
        prefillMs = ms(t);
      } else {
        decodeMs += ms(t);
      }
      ExecutorStats after = model.lm().experts().stats();
      if (after != null && before != null) {
        ExecutorStats step = after.minus(before);
        stats = stats == null ? step : stats.plus(step);
      }
      return logits;
    } catch (RuntimeException e) {
      finish = FinishReason.CANCELLED;
      closeSession();
      throw e;
    } finally {
      model.lock().unlock();
    }
  }

  /** What was generated; the generation must have ended. */
  GenerationResult result() {
    if (finish == null) {
      throw new IllegalStateException("the generation has not ended yet");
    }
    int[] ids = tokens.stream().mapToInt(Integer::intValue).toArray();
    Timings t = new Timings(prompt.length, ttftMs, prefillMs, Math.max(0, tokens.size() - 1), decodeMs, ms(t0));
    return new GenerationResult(text.toString(), ids, finish, t, stats);
  }

  boolean finished() {
    return finish != null;
  }

  private void closeSession() {
    session.close();
  }

  /** Ends the generation early (a closed stream); idempotent. */
  @Override
  public void close() {
    if (finish == null) {
      finish = FinishReason.CANCELLED;
      closeSession();
    }
  }

  private static double ms(long since) {
    return (System.nanoTime() - since) / 1e6;
  }
}
