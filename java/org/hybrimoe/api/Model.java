package org.hybrimoe.api;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;
import org.hybrimoe.device.Device;
import org.hybrimoe.hybrid.HybridExecutors;
import org.hybrimoe.hybrid.HybridMoe;
import org.hybrimoe.hybrid.LayerTimeline;
import org.hybrimoe.model.CausalLm;
import org.hybrimoe.model.DenseOffload;
import org.hybrimoe.model.ExecutorStats;
import org.hybrimoe.model.LoadOptions;
import org.hybrimoe.model.LoadProgress;
import org.hybrimoe.model.ModelConfig;
import org.hybrimoe.model.ModelFormatException;
import org.hybrimoe.model.ModelRegistry;
import org.hybrimoe.policy.PolicyBundle;
import org.hybrimoe.tokenizer.Tokenizer;

/**
 * A MoE language model ready to generate: the weights of a HuggingFace model directory mapped,
 * every MoE layer behind the hybrid CPU-GPU executor with the policies of {@link ModelOptions},
 * and the directory's tokenizer when it has one.
 *
 * <pre>{@code
 * try (Model model = Model.load(Path.of("/models/Qwen1.5-MoE-A2.7B-Chat"),
 *     ModelOptions.builder().gpuMemory(8L << 30).bundle("hybrimoe").build())) {
 *   StringBuilder reply = new StringBuilder();   // or a UI widget, a socket, ...
 *   GenerationResult r = model.generate(
 *       GenerateRequest.builder().message("user", "Name three prime numbers.").maxTokens(64).build(),
 *       token -> reply.append(token.text()));      // streamed as it comes
 *   double tokensPerSecond = r.timings().tokensPerSecond();
 * }
 * }</pre>
 *
 * <p>Thread-safety: every method may be called from any thread. Requests run one forward step at a
 * time under the model's lock, so concurrent requests interleave step by step and each gets the
 * tokens (and per-request statistics) it would get alone.
 */
public final class Model implements AutoCloseable {
  private final CausalLm lm;
  private final Tokenizer tokenizer; // null: token-id prompts only
  private final Set<Integer> eos;
  private final ModelOptions options;
  private final HybridExecutors.DeviceKind device;
  private final int maxContext;
  private final ReentrantLock lock = new ReentrantLock(true);
  private boolean closed; // guarded by lock

  private Model(CausalLm lm, Tokenizer tokenizer, Set<Integer> eos, ModelOptions options,
      HybridExecutors.DeviceKind device) {
    this.lm = lm;
    this.tokenizer = tokenizer;
    this.eos = Set.copyOf(eos);
    this.options = options;
    this.device = device;
    this.maxContext = Math.min(options.maxContext(), lm.maxPositions());
  }

  /** Loads with {@link ModelOptions#defaults()}. */
  public static Model load(Path dir) throws IOException {
    return load(dir, ModelOptions.defaults());
  }

  /**
   * Loads a HuggingFace model directory: config.json, model.safetensors (or shards with
   * model.safetensors.index.json), and optionally tokenizer.json, tokenizer_config.json,
   * generation_config.json.
   *
   * @throws ModelFormatException naming the file and field that is wrong (and IOException when a file cannot be read)
   * @throws IllegalArgumentException for options the model or machine cannot take (a GPU budget
   *     that holds no expert, a CUDA device where there is none)
   */
  /** Look-ahead depth a recorded routing trace carries (the hybrimoe bundle's prefetch depth). */
  public static final int TRACE_LOOKAHEAD = 3;

  private static org.hybrimoe.model.MoeExecutorFactory recorded(org.hybrimoe.model.MoeExecutorFactory f,
      ModelOptions options) {
    return options.routing() == null ? f
        : org.hybrimoe.model.RecordingExecutor.wrap(f, options.routing(), TRACE_LOOKAHEAD);
  }

  public static Model load(Path dir, ModelOptions options) throws IOException {
    LoadProgress progress = options.progress() != null ? options.progress() : LoadProgress.NONE;
    Tokenizer tok = null;
    if (Files.isRegularFile(dir.resolve("tokenizer.json"))) {
      progress.progress("reading tokenizer", 0, 1);
      tok = Tokenizer.load(dir);
      progress.progress("reading tokenizer", 1, 1);
    }
    HybridExecutors.DeviceKind kind = HybridExecutors.resolve(options.device().kind);
    LoadOptions lo = new LoadOptions(options.threads(), null, options.groupSize())
        .withExecutors(recorded(HybridExecutors.factory(options.bundle(), options.budget(), kind, options.expertFormat()),
            options))
        .withProgress(progress)
        .withDense(denseOptions(options.dense(), kind));
    CausalLm lm = ModelRegistry.load(dir, lo);
    try {
      Set<Integer> eos = new LinkedHashSet<>();
      eos.addAll(eosIds(dir.resolve("config.json")));
      eos.addAll(eosIds(dir.resolve("generation_config.json")));
      if (tok != null) {
        eos.addAll(tok.eosIds());
        if (tok.vocabSize() > lm.vocabSize()) {
          throw new ModelFormatException(dir.resolve("tokenizer.json") + ": the tokenizer has " + tok.vocabSize()
              + " ids but the model's vocab_size is " + lm.vocabSize());
        }
      }
      return new Model(lm, tok, eos, options, kind);
    } catch (IOException | RuntimeException e) {
      lm.close();
      throw e;
    }
  }

  // The dense offload the options ask for on the resolved device: AUTO takes CUDA only.
  static DenseOffload.Options denseOptions(ModelOptions.Dense dense, HybridExecutors.DeviceKind kind) {
    if (dense == ModelOptions.Dense.CPU || kind == HybridExecutors.DeviceKind.NONE) {
      if (dense == ModelOptions.Dense.DEVICE) {
        throw new IllegalArgumentException("dense linears on the device need one, and none was found");
      }
      return null;
    }
    if (kind == HybridExecutors.DeviceKind.CUDA) {
      return new DenseOffload.Options(Device.Kind.CUDA, 0);
    }
    return dense == ModelOptions.Dense.DEVICE
        ? new DenseOffload.Options(Device.Kind.EMULATED, 0) : null;
  }

  // eos_token_id of a config file: an int, a list of ints, or absent.
  private static List<Integer> eosIds(Path file) throws IOException {
    return Files.isRegularFile(file) ? ModelConfig.read(file).intOrListOr("eos_token_id") : List.of();
  }

  /**
   * Generates to completion.
   *
   * @throws IllegalArgumentException for a prompt that does not fit the context or needs a
   *     tokenizer or chat template the model lacks
   */
  public GenerationResult generate(GenerateRequest request) {
    return generate(request, null);
  }

  /** Generates, handing each token to {@code listener} as it comes (null: none). */
  public GenerationResult generate(GenerateRequest request, TokenListener listener) {
    try (Generation g = new Generation(this, request)) {
      GeneratedToken t;
      while ((t = g.step()) != null) {
        if (listener != null) {
          listener.onToken(t);
        }
      }
      return g.result();
    }
  }

  /**
   * Generates lazily: each {@code next()} runs one forward step. Close the stream to stop early
   * (its KV cache is freed then); {@link TokenStream#result()} once it has ended.
   */
  public TokenStream stream(GenerateRequest request) {
    return new TokenStream(new Generation(this, request));
  }

  /** The tokenizer, when the model directory has a tokenizer.json. */
  public Optional<Tokenizer> tokenizer() {
    return Optional.ofNullable(tokenizer);
  }

  /** Token ids that end a generation (config.json, generation_config.json, the tokenizer's eos_token). */
  public Set<Integer> eosIds() {
    return eos;
  }

  public String modelType() {
    return lm.modelType();
  }

  public int vocabSize() {
    return lm.vocabSize();
  }

  public int numLayers() {
    return lm.numLayers();
  }

  /** The longest sequence a request may reach. */
  public int maxContext() {
    return maxContext;
  }

  /**
   * Bytes a request's KV cache takes per position (all layers, in the options' {@link
   * ModelOptions.KvCacheType}); a request allocates it for min(prompt + maxTokens - 1,
   * maxContext) positions.
   */
  public long kvCacheBytesPerPosition() {
    return lm.kvCacheFloatsPerPosition() * options.kvCache().dtype.bytes;
  }

  public ModelOptions options() {
    return options;
  }

  /**
   * Where the dense linears went at load (linears and bytes on the device and on the CPU), when a
   * dense device is in use ({@link ModelOptions#dense()}).
   */
  public Optional<DenseOffload.Placement> densePlacement() {
    return lm.denseOffload().map(DenseOffload::placement);
  }

  /** The policy bundle the MoE layers run under. */
  public PolicyBundle bundle() {
    return options.bundle();
  }

  /** The expert device actually used (AUTO resolved). */
  public HybridExecutors.DeviceKind device() {
    return device;
  }

  /** The executor's counters since load (all requests). */
  public ExecutorStats stats() {
    lock.lock();
    try {
      return lm.experts().stats();
    } finally {
      lock.unlock();
    }
  }

  /** The last MoE layers' measured and predicted timelines (up to 256), oldest first. */
  public List<LayerTimeline> recentTimelines() {
    lock.lock();
    try {
      return HybridExecutors.unwrap(lm.experts()).map(HybridMoe::recentTimelines).orElse(List.of());
    } finally {
      lock.unlock();
    }
  }

  CausalLm lm() {
    return lm;
  }

  ReentrantLock lock() {
    return lock;
  }

  /** Under the lock: throws when the model was closed. */
  void checkOpen() {
    if (closed) {
      throw new IllegalStateException("the model is closed");
    }
  }

  /** Waits for running steps, then frees the model; later requests throw IllegalStateException. */
  @Override
  public void close() throws IOException {
    lock.lock();
    try {
      if (!closed) {
        closed = true;
        lm.close();
      }
    } finally {
      lock.unlock();
    }
  }
}
