package org.hybrimoe.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.hybrimoe.device.ExpertShape;
import org.hybrimoe.model.ModelConfig;
import org.hybrimoe.weights.SafetensorsFile;

/**
 * Weight bytes one decode token reads, from a model directory's safetensors headers and
 * config.json: every tensor once (attention, norms, routers, dense and shared MLPs, LM head)
 * except the embedding table (one row) and the routed experts (top-k of each MoE layer's experts,
 * in the format they execute in). bench-decode adds the KV cache's bytes, which grow with the
 * context.
 */
record DecodeTraffic(long denseBytes, long routedBytes, int moeLayers, int topK, int experts) {
  // model.layers.L.{mlp.experts | block_sparse_moe.experts}.(N.)?name
  private static final Pattern ROUTED =
      Pattern.compile("model\\.layers\\.(\\d+)\\.(?:mlp|block_sparse_moe)\\.experts\\..*");

  long totalBytes() {
    return denseBytes + routedBytes;
  }

  /**
   * Reads dir's headers. {@code convertedExpert}: bytes of one expert after conversion at load
   * (int4/int8), or 0 to count the checkpoint's own expert bytes.
   */
  static DecodeTraffic of(Path dir, long convertedExpert) throws IOException {
    ModelConfig cfg = ModelConfig.read(dir.resolve("config.json"));
    int topK = cfg.requirePositiveInt("num_experts_per_tok");
    int experts = 0;
    for (String f : List.of("n_routed_experts", "num_local_experts", "num_experts")) {
      if (cfg.has(f)) {
        experts = cfg.requirePositiveInt(f);
        break;
      }
    }
    if (experts == 0) {
      throw cfg.bad("n_routed_experts", "none of n_routed_experts, num_local_experts, num_experts is set");
    }
    int vocab = cfg.requirePositiveInt("vocab_size");
    long dense = 0;
    TreeMap<Integer, Long> routed = new TreeMap<>(); // layer -> bytes of all its routed experts
    for (Path file : safetensors(dir)) {
      try (SafetensorsFile st = SafetensorsFile.open(file)) {
        for (SafetensorsFile.Tensor t : st.tensors().values()) {
          long bytes = t.end() - t.begin();
          Matcher m = ROUTED.matcher(t.name());
          if (m.matches()) {
            routed.merge(Integer.parseInt(m.group(1)), bytes, Long::sum);
          } else if (t.name().equals("model.embed_tokens.weight")) {
            dense += bytes / vocab;
          } else {
            dense += bytes;
          }
        }
      }
    }
    long perToken = 0;
    for (long layerBytes : routed.values()) {
      perToken += topK * (convertedExpert > 0 ? convertedExpert : layerBytes / experts);
    }
    return new DecodeTraffic(dense, perToken, routed.size(), topK, experts);
  }

  /** One expert of this model in a converted format, from config.json's sizes. */
  static long convertedExpertBytes(Path dir, ExpertShape.Format format, int groupSize) throws IOException {
    ModelConfig cfg = ModelConfig.read(dir.resolve("config.json"));
    int d = cfg.requirePositiveInt("hidden_size");
    int ff = cfg.has("moe_intermediate_size")
        ? cfg.requirePositiveInt("moe_intermediate_size")
        : cfg.requirePositiveInt("intermediate_size");
    return new ExpertShape(format, d, ff, groupSize).bytes();
  }

  private static List<Path> safetensors(Path dir) throws IOException {
    List<Path> out = new ArrayList<>();
    try (Stream<Path> s = Files.list(dir)) {
      s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().forEach(out::add);
    }
    if (out.isEmpty()) {
      throw new IOException(dir + ": no .safetensors files");
    }
    return out;
  }
}
